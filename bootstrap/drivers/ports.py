"""ports: Neutron ports made ahead of the servers (or services) that use them.

Read with ONE list call (every port the credentials see: servers', routers' and DHCP
ports too, which the manifest does not name and match never picks). Normalised as
Neutron stores them, so a converged port plans no change:

- fixed_ips: a set of {subnet, ip_address}; an item without `ip_address` matches any
  one address on that subnet (Neutron picks it), and an update keeps the addresses
  already there for such items;
- allowed_address_pairs: a set; a /32 (/128) prefix is the bare address, a pair without
  `mac_address` is the port's own MAC (Neutron fills it in);
- security_groups left out are not managed (Neutron gives a new port its project's
  default group); `[]` means none;
- port_security_enabled left out is not managed (a new port takes its network's);
- vnic_type is Neutron's binding:vnic_type (default normal); mac_address lower case;
- tags: the manifest's own, the tool's marker tags set aside.

Deleting a project deletes the tool's ports in it; a port made by someone else without
a device (no server, router or DHCP agent using it) makes the plan refuse the project's
deletion, before any write; ports a device owns go with their device.

The network, the MAC and the vnic type cannot change in place (a replace). A changed
fixed IP is an in-place update that takes an address away from whatever uses the port:
destructive, so it needs --allow-destroy.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from bootstrap.drivers._neutron import (
    MARKER_TAG,
    STACK_TAG_PREFIX,
    TAGS,
    NeutronDriver,
    change_tags,
    completing,
    ip,
    is_managed,
    stack_of,
    text,
)
from bootstrap.model import Manifest, Ref
from bootstrap.plan import Observed, contains_pending

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

SDK_ATTRS = {
    "network": "network_id",
    "admin_state_up": "is_admin_state_up",
    "port_security_enabled": "is_port_security_enabled",
    "vnic_type": "binding_vnic_type",
    "security_groups": "security_group_ids",
}
# The patch key of the manifest's own tags, kept apart from the marker's TAGS delta.
USER_TAGS = "user_tags"


def own_tags(tags: Any) -> list[str]:
    """The tags a manifest manages: all but the tool's ownership marker and stack tag."""
    return sorted(
        {t for t in tags or [] if t != MARKER_TAG and not t.startswith(STACK_TAG_PREFIX)}
    )


def pair_address(value: Any) -> Any:
    """A host prefix is its bare address; a network keeps its CIDR (host bits dropped)."""
    if not isinstance(value, str):
        return value
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def mac(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def pairs(value: Any, own_mac: str | None = None) -> list[dict[str, str]]:
    """Allowed address pairs as a set; a pair on the port's own MAC shows without it."""
    out = []
    for p in value or []:
        item = {"ip_address": pair_address(p.get("ip_address"))}
        m = mac(p.get("mac_address"))
        if m and m != mac(own_mac):
            item["mac_address"] = m
        out.append(item)
    unique = {(p["ip_address"], p.get("mac_address", "")): p for p in out}
    return [unique[k] for k in sorted(unique)]


def fixed_ips(value: Any) -> list[dict[str, Any]]:
    """Fixed IPs as a sorted list of {subnet, ip_address?} (ip_address one spelling)."""
    out = []
    for f in value or []:
        subnet = f.get("subnet", f.get("subnet_id"))
        item: dict[str, Any] = {"subnet": subnet}
        if f.get("ip_address"):
            item["ip_address"] = ip(f["ip_address"])
        out.append(item)
    return sorted(out, key=lambda f: (str(f["subnet"]), f.get("ip_address", "")))


def match_fixed_ips(desired: list[dict], observed: list[dict]) -> list[dict] | None:
    """The observed items the desired ones stand for (None: they do not match).

    Items pinning an address first, so a bare item cannot take a pinned one's address.
    """
    if len(desired) != len(observed):
        return None
    free = list(observed)
    taken = []
    for d in sorted(desired, key=lambda d: "ip_address" not in d):
        found = next(
            (
                o
                for o in free
                if o["subnet"] == d["subnet"]
                and ("ip_address" not in d or d["ip_address"] == o.get("ip_address"))
            ),
            None,
        )
        if found is None:
            return None
        free.remove(found)
        taken.append(found)
    return taken


class PortDriver(NeutronDriver):
    kind = "ports"
    references = {
        "project": "projects",
        "network": "networks",
        "fixed_ips[].subnet": "subnets",
        "security_groups[]": "security_groups",
    }
    updatable = frozenset(
        {
            "description",
            "admin_state_up",
            "fixed_ips",
            "security_groups",
            "port_security_enabled",
            "allowed_address_pairs",
            "tags",
        }
    )
    immutable = frozenset({"network", "vnic_type", "mac_address"})
    destructive_fields = frozenset({"fixed_ips"})
    set_fields = frozenset({"security_groups", "tags"})
    # Neutron takes tags only after creation (like the marker).
    set_after_create = frozenset({"tags"})
    sdk_attrs = SDK_ATTRS
    noun = "port"
    position = 165
    required_for_create = frozenset({"network"})

    @classmethod
    def check(cls, c: Checker) -> None:
        net = c.get(("network",))
        if not isinstance(net, Ref):
            return  # an unknown network is reported where it is named
        for i, item in enumerate(c.spec.get("fixed_ips") or []):
            sub = c.target(item.get("subnet")) if isinstance(item, dict) else None
            if sub is None:
                continue
            sub_net = sub.spec.get("network")
            if isinstance(sub_net, Ref) and sub_net.address != net.address:
                c.error(
                    ("fixed_ips", i, "subnet"),
                    f"{sub.address} is on {sub_net.address}, not on the port's {net.address}",
                )
            cidr = sub.spec.get("cidr")
            addr = item.get("ip_address")
            if (
                cidr
                and addr
                and c.ok(("fixed_ips", i, "ip_address"))
                and ipaddress.ip_address(addr) not in ipaddress.ip_network(cidr, strict=False)
            ):
                c.error(("fixed_ips", i, "ip_address"), f"{addr} is outside {cidr}")

    def project_of(self, observed):
        """Deleting a project deletes the tool's ports in it first; a port someone else
        made with no device stops the delete (seen at plan time). Ports a device owns
        (DHCP, router interfaces and gateways, a server's own NICs) go with that device,
        whose own deletion or refusal is planned: not counted here."""
        if not observed.managed and observed.fields.get("device_owner"):
            return None
        return super().project_of(observed)

    def update_reason(self, fields):
        return "a new fixed IP takes the port's address away from whatever uses it"

    def observe(self, p) -> Observed:
        fields = {
            "name": p.name,
            "project_id": p.project_id,
            "network": p.network_id,
            "description": text(p.description),
            "admin_state_up": p.is_admin_state_up,
            "fixed_ips": fixed_ips(p.fixed_ips),
            "security_groups": sorted(p.security_group_ids or []),
            "port_security_enabled": p.is_port_security_enabled,
            "allowed_address_pairs": pairs(p.allowed_address_pairs, p.mac_address),
            "vnic_type": p.binding_vnic_type or "normal",
            "mac_address": mac(p.mac_address),
            "tags": own_tags(p.tags),
            # Not compared: what uses the port (a server's NIC, a router, DHCP).
            "device_id": p.device_id or None,
            "device_owner": p.device_owner or None,
        }
        return Observed(p.id, fields, p, is_managed(p), stack_of(p))

    # -- pure ------------------------------------------------------------------------
    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "fixed_ips":
            return fixed_ips(value)
        if field_name == "security_groups":
            return sorted(set(value or []), key=str)
        if field_name == "allowed_address_pairs":
            return pairs(value)
        if field_name == "tags":
            return sorted(set(value or []))
        if field_name == "mac_address":
            return mac(value)
        return value

    def comparable(self, resource, observed, desired, facts):
        # A pair written with the port's own MAC is the same pair as one without it
        # (the diff's own copy of the desired values, brought to the observed form).
        if "allowed_address_pairs" in desired:
            own = observed.fields.get("mac_address")
            desired["allowed_address_pairs"] = pairs(desired["allowed_address_pairs"], own)
        return observed

    def equal(self, field_name, desired, observed):
        if field_name == "fixed_ips":
            if contains_pending(desired):
                return False
            return match_fixed_ips(desired, observed or []) is not None
        return super().equal(field_name, desired, observed)

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        if "fixed_ips" in args:
            args["fixed_ips"] = [api_fixed_ip(f) for f in args["fixed_ips"]]
        return args

    def update_patch(self, resource, observed, desired, fields):
        patch = super().update_patch(resource, observed, desired, fields)
        if "tags" in patch:
            patch[USER_TAGS] = patch.pop("tags")
        if "fixed_ips" in patch:
            patch["fixed_ips"] = [api_fixed_ip(f) for f in kept_fixed_ips(desired, observed)]
        return patch

    def completion(self, resource, desired, resolver):
        patch = super().completion(resource, desired, resolver)
        if "tags" in patch:
            patch[USER_TAGS] = patch.pop("tags")
        return patch

    # -- I/O -------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.port import Port

        return Port

    def update(self, cloud, observed, patch, ctx):
        """Tags (marker and the manifest's), then ONE PUT of the rest: Neutron takes a
        port's security groups only as a whole list, built here from the planned delta."""
        attrs = {k: v for k, v in patch.items() if k not in (TAGS, USER_TAGS)}
        groups = attrs.pop("security_groups", None)
        if groups is not None:
            have = list(observed.fields.get("security_groups") or [])
            attrs["security_group_ids"] = [g for g in have if g not in groups.remove] + [
                g for g in groups.add if g not in have
            ]

        def run() -> None:
            if TAGS in patch:
                change_tags(cloud, self.sdk_class(), observed.id, patch[TAGS])
            if patch.get(USER_TAGS):
                change_tags(cloud, self.sdk_class(), observed.id, patch[USER_TAGS])
            if attrs:
                cloud.network.update_port(observed.id, **attrs)

        completing("port", observed.id, patch, run)


def port_nic(item: dict[str, Any], resolver: Any) -> dict[str, Any]:
    """A server's NIC given as `{port: X}`, as a server's listing can show it: the port's
    network by name, and its first pinned address (Nova's addresses name no port)."""
    port = resolver.resource(item["port"].address)
    spec = port.spec if port is not None else {}
    net = spec.get("network")
    out: dict[str, Any] = {"network": net.address.name if isinstance(net, Ref) else None}
    pinned = [f["ip_address"] for f in spec.get("fixed_ips") or [] if f.get("ip_address")]
    if pinned:
        out["fixed_ip"] = ip(pinned[0])
    return out


def port_network(manifest: Manifest, item: Any) -> Ref | None:
    """The network a server's NIC item is on: its `network`, or its port's."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("port"), Ref):
        port = manifest.get(item["port"].address)
        net = port.spec.get("network") if port is not None else None
        return net if isinstance(net, Ref) else None
    net = item.get("network")
    return net if isinstance(net, Ref) else None


def api_fixed_ip(item: dict[str, Any]) -> dict[str, Any]:
    out = {"subnet_id": item["subnet"]}
    if item.get("ip_address"):
        out["ip_address"] = item["ip_address"]
    return out


def kept_fixed_ips(desired: dict[str, Any], observed: Observed | None) -> list[dict[str, Any]]:
    """The fixed IPs an update sends: an item without an address keeps one the port
    already has on that subnet (else Neutron would hand out a new one)."""
    want = desired["fixed_ips"]
    if observed is None:
        return want
    free = [
        o
        for o in observed.fields.get("fixed_ips") or []
        if not any(o == d for d in want if "ip_address" in d)
    ]
    out = []
    for d in want:
        if "ip_address" in d:
            out.append(d)
            continue
        keep = next((o for o in free if o["subnet"] == d["subnet"]), None)
        if keep is not None:
            free.remove(keep)
            out.append(keep)
        else:
            out.append(d)
    return out

