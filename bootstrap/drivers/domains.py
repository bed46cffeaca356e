"""domains: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class DomainDriver(Driver):
    kind = "domains"
    key_fields = ("name",)
    references = {}
    updatable = frozenset({"description", "enabled"})
    immutable = frozenset()
