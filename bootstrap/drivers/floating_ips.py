"""floating_ips: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class FloatingIPDriver(Driver):
    kind = "floating_ips"
    key_fields = ("project", "server")
    references = {"project": "projects", "server": "servers", "network": "networks"}
    updatable = frozenset({"description"})
    immutable = frozenset({"network", "address"})
