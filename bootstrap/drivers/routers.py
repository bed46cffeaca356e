"""routers: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class RouterDriver(Driver):
    kind = "routers"
    key_fields = ("project", "name")
    references = {
        "project": "projects",
        "external_gateway.network": "networks",
        "interfaces[]": "subnets",
    }
    updatable = frozenset({"description", "admin_state_up", "external_gateway", "interfaces"})
    immutable = frozenset()
