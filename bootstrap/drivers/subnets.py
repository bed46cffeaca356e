"""subnets: Neutron subnets. Network, cidr and IP version are fixed at creation."""

from __future__ import annotations

import ipaddress

from bootstrap.drivers._neutron import (
    NeutronDriver,
    cidr,
    ip,
    is_managed,
    text,
)
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

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        if "ip_version" not in args and desired.get("cidr"):
            args["ip_version"] = ipaddress.ip_network(desired["cidr"], strict=False).version
        return args

    # -- I/O -------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.subnet import Subnet

        return Subnet

