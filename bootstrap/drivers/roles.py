"""roles: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class RoleDriver(Driver):
    kind = "roles"
    key_fields = ("domain", "name")
    references = {"domain": "domains"}
    updatable = frozenset({"description"})
    immutable = frozenset()
