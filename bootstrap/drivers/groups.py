"""groups: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class GroupDriver(Driver):
    kind = "groups"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "members[]": "users"}
    updatable = frozenset({"description", "members"})
    immutable = frozenset()
