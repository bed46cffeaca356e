"""services: catalog services (name + type)."""

from __future__ import annotations

from bootstrap.drivers._keystone import (
    KeystoneDriver,
    attr,
    is_managed,
    stack_of,
    text,
    with_marker,
)
from bootstrap.plan import Observed


class ServiceDriver(KeystoneDriver):
    kind = "services"
    manager = "services"
    key_fields = ("name",)
    references = {}
    updatable = frozenset({"type", "description", "enabled"})
    immutable = frozenset()
    position = 80
    required_for_create = frozenset({"type"})

    def observe(self, s) -> Observed:
        fields = {
            "name": attr(s, "name", None),
            "type": s.type,
            "description": text(attr(s, "description", None)),
            "enabled": attr(s, "enabled", True),
        }
        return Observed(s.id, fields, s, is_managed(s), stack_of(s))

    def create(self, cloud, args, ctx):
        a = with_marker(args)
        return self.observe(self.api(cloud).create(a.pop("name"), **a))
