"""subnets: Neutron subnets. Network, cidr and IP version are fixed at creation."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bootstrap.drivers._neutron import (
    NeutronDriver,
    cidr,
    ip,
    is_managed,
    stack_of,
    subnets_by_network,
    text,
)
from bootstrap.export import ALWAYS
from bootstrap.model import Address, Manifest, ref_paths
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

# Manifest field -> openstacksdk attribute (the rest have the same name).
SDK_ATTRS = {"enable_dhcp": "is_dhcp_enabled", "network": "network_id"}


def pools(value):
    """Allocation pools are a set of ranges: order-free, one spelling per address."""
    items = [{"start": ip(p["start"]), "end": ip(p["end"])} for p in value or []]
    return sorted(items, key=lambda p: _ip_sort(p["start"]))


def routes(value):
    """Host routes are a set: order-free."""
    items = [
        {"destination": cidr(r["destination"]), "nexthop": ip(r["nexthop"])} for r in value or []
    ]
    return sorted(items, key=lambda r: (r["destination"], r["nexthop"]))


def _ip_sort(value):
    try:
        a = ipaddress.ip_address(value)
        return (a.version, int(a))
    except ValueError:
        return (9, 0)


class SubnetDriver(NeutronDriver):
    kind = "subnets"
    references = {"project": "projects", "network": "networks"}
    updatable = frozenset(
        {
            "description",
            "gateway_ip",
            "enable_dhcp",
            "dns_nameservers",
            "allocation_pools",
            "host_routes",
        }
    )
    immutable = frozenset({"network", "cidr", "ip_version"})
    sdk_attrs = SDK_ATTRS
    noun = "subnet"
    position = 150
    required_for_create = frozenset({"network", "cidr"})
    # ip_version follows from the CIDR; gateway and pools only when not Neutron's choice.
    export_fields = {
        "network": ALWAYS,
        "cidr": ALWAYS,
        "description": "",
        "gateway_ip": ALWAYS,
        "enable_dhcp": True,
        "dns_nameservers": [],
        "allocation_pools": ALWAYS,
        "host_routes": [],
    }

    def export(self, observed, names):
        spec = super().export(observed, names)
        if spec is None:
            return None
        net = ipaddress.ip_network(observed.fields["cidr"])
        hosts = net.hosts()
        first = next(hosts, None)
        if spec.get("gateway_ip") == (str(first) if first else None):
            spec.pop("gateway_ip")
            last = net.broadcast_address - (1 if net.version == 4 else 0)
            whole = [{"start": str(first + 1), "end": str(last)}]
            if spec.get("allocation_pools") == whole:
                spec.pop("allocation_pools")
        return spec

    @classmethod
    def implicit_dependencies(cls, manifest: Manifest) -> Iterator[tuple[Address, Address, str]]:
        # A port on a network needs an address: whatever attaches to a network (server
        # NICs, router gateways, floating IPs) waits for the network's subnets.
        subnets_of = subnets_by_network(manifest)
        for r in manifest:
            if r.kind == cls.kind:
                continue
            for path, ref in ref_paths(r.spec):
                for s in subnets_of.get(ref.address, []):
                    if r.absent or not s.absent:
                        yield s.address, r.address, f"{path} (subnet of {ref.address})"

    @classmethod
    def check(cls, c: Checker) -> None:
        s = c.spec
        if not c.ok(("cidr",)):
            return
        net = ipaddress.ip_network(s["cidr"])
        if c.ok(("ip_version",)) and s["ip_version"] != net.version:
            c.error(
                ("ip_version",),
                f"ip_version {s['ip_version']} does not match cidr {net} (IPv{net.version})",
            )
        gateway = None
        if "gateway_ip" in s and c.ok(("gateway_ip",)):
            gateway = ipaddress.ip_address(s["gateway_ip"])
            if gateway not in net:
                c.error(("gateway_ip",), f"gateway_ip {gateway} is outside cidr {net}")
            elif (
                net.version == 4
                and net.prefixlen < 31
                and gateway
                in (
                    net.network_address,
                    net.broadcast_address,
                )
            ):
                c.error(("gateway_ip",), f"gateway_ip {gateway} is not a host address of {net}")
        elif "gateway_ip" not in s and net.num_addresses > 2:
            gateway = net.network_address + 1  # Neutron's default gateway
        pools: list[tuple[Any, Any, int]] = []
        for i, pool in enumerate(s.get("allocation_pools") or []):
            if not (
                c.ok(("allocation_pools", i, "start")) and c.ok(("allocation_pools", i, "end"))
            ):
                continue
            start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
            where = ("allocation_pools", i)
            if start not in net or end not in net:
                c.error(where, f"allocation pool {start}-{end} is outside cidr {net}")
                continue
            if start > end:
                c.error(where, f"allocation pool starts after it ends ({start} > {end})")
                continue
            if gateway is not None and start <= gateway <= end:
                if "gateway_ip" in s:
                    text = f"allocation pool {start}-{end} contains gateway_ip {gateway}"
                else:
                    text = (
                        f"allocation pool {start}-{end} contains {gateway}, Neutron's default "
                        "gateway when gateway_ip is not set; set gateway_ip or move the pool"
                    )
                c.error(where, text)
            for ostart, oend, j in pools:
                if start <= oend and ostart <= end:
                    c.error(where, f"allocation pool {start}-{end} overlaps pool {j + 1}")
            pools.append((start, end, i))
        for i, route in enumerate(s.get("host_routes") or []):
            p = ("host_routes", i)
            if c.ok(p + ("destination",)) and c.ok(p + ("nexthop",)):
                dest = ipaddress.ip_network(route["destination"])
                hop = ipaddress.ip_address(route["nexthop"])
                if dest.version != hop.version:
                    c.error(p, f"host route to {dest} has an IPv{hop.version} nexthop")

    def observe(self, s) -> Observed:
        fields = {
            "name": s.name,
            "project_id": s.project_id,
            "network": s.network_id,
            "cidr": cidr(s.cidr),
            "ip_version": s.ip_version,
            "gateway_ip": ip(s.gateway_ip),
            "enable_dhcp": s.is_dhcp_enabled,
            "dns_nameservers": [ip(d) for d in s.dns_nameservers or []],
            "allocation_pools": pools(s.allocation_pools),
            "host_routes": routes(s.host_routes),
            "description": text(s.description),
        }
        return Observed(s.id, fields, s, is_managed(s), stack_of(s))

    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "cidr":
            return cidr(value)
        if field_name == "gateway_ip":
            return ip(value)  # null stays null: no gateway
        if field_name == "dns_nameservers":
            # Order is kept: DHCP hands the servers out in this order.
            return [ip(d) for d in value or []]
        if field_name == "allocation_pools":
            return pools(value)
        if field_name == "host_routes":
            return routes(value)
        if field_name == "ip_version" and value is not None:
            return int(value)
        return value

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        if "ip_version" not in args and desired.get("cidr"):
            args["ip_version"] = ipaddress.ip_network(desired["cidr"], strict=False).version
        return args

    # -- I/O -------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.subnet import Subnet

        return Subnet

