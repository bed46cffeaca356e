"""regions: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class RegionDriver(Driver):
    kind = "regions"
    key_fields = ("id",)
    references = {"parent": "regions"}
    updatable = frozenset({"description"})
    immutable = frozenset({"parent"})
