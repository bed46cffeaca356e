"""subnets: Neutron subnets. Network, cidr and IP version are fixed at creation."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from bootstrap.drivers._neutron import cidr, ip, is_managed, mark, subnets_by_network, text
from bootstrap.drivers._neutron import project_scoped_address as _scoped_address
from bootstrap.drivers.base import Driver
from bootstrap.model import Address, Manifest, ref_paths
from bootstrap.plan import Observed

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


class SubnetDriver(Driver):
    kind = "subnets"
    key_fields = ("project", "name")
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
    ownership = "tags"
    position = 150
    required_for_create = frozenset({"network", "cidr"})

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
        return Observed(s.id, fields, s, is_managed(s))

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

    def address_of_observed(self, observed):
        return _scoped_address(self.kind, observed)

    def read_all(self, cloud, resources):
        return [self.observe(s) for s in cloud.network.subnets()]

    def _attrs(self, fields):
        return {SDK_ATTRS.get(f, f): v for f, v in fields.items()}

    def create(self, cloud, resource, desired, resolver):
        attrs = self._attrs(desired)
        attrs["name"] = resource.spec["name"]
        attrs["project_id"] = resolver.id(resource.spec["project"].address)
        if "ip_version" not in attrs and desired.get("cidr"):
            attrs["ip_version"] = ipaddress.ip_network(desired["cidr"], strict=False).version
        s = cloud.network.create_subnet(**attrs)
        mark(cloud, s)
        return self.observe(s)

    def update(self, cloud, resource, observed, changed, resolver):
        attrs = self._attrs({f: v for f, v in changed.items() if f in self.updatable})
        if attrs:
            cloud.network.update_subnet(observed.id, **attrs)

    def delete(self, cloud, observed):
        cloud.network.delete_subnet(observed.id, ignore_missing=False)
