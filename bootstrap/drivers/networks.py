"""networks: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class NetworkDriver(Driver):
    kind = "networks"
    key_fields = ("project", "name")
    references = {"project": "projects"}
    updatable = frozenset(
        {"description", "admin_state_up", "shared", "external", "mtu", "port_security_enabled"}
    )
    immutable = frozenset({"provider"})
