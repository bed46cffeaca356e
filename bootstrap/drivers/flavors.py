"""flavors: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class FlavorDriver(Driver):
    kind = "flavors"
    key_fields = ("name",)
    references = {"access[]": "projects"}
    updatable = frozenset({"extra_specs", "access", "description"})
    immutable = frozenset({"id", "vcpus", "ram", "disk", "ephemeral", "swap", "is_public"})
