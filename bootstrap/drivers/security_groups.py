"""security_groups: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class SecurityGroupDriver(Driver):
    kind = "security_groups"
    key_fields = ("project", "name")
    references = {"project": "projects", "rules[].remote_group": "security_groups"}
    field_shorthand = {"rules[].port": ("port_range_min", "port_range_max")}
    item_defaults = {"rules[]": {"direction": "ingress", "ethertype": "IPv4"}}
    updatable = frozenset({"description", "rules", "stateful"})
    immutable = frozenset()
