"""projects: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class ProjectDriver(Driver):
    kind = "projects"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "parent": "projects"}
    updatable = frozenset({"description", "enabled", "tags"})
    immutable = frozenset({"parent"})
