"""services: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class ServiceDriver(Driver):
    kind = "services"
    key_fields = ("name",)
    references = {}
    updatable = frozenset({"type", "description", "enabled"})
    immutable = frozenset()
