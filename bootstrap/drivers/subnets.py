"""subnets: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


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
