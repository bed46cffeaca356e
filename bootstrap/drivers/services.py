"""services: catalog services (name + type)."""

from __future__ import annotations

from bootstrap.drivers._keystone import attr, is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.plan import Observed


class ServiceDriver(Driver):
    kind = "services"
    key_fields = ("name",)
    references = {}
    updatable = frozenset({"type", "description", "enabled"})
    immutable = frozenset()
    ownership = "extra"
    position = 80
    needs_admin = True
    required_for_create = frozenset({"type"})

    def observe(self, s) -> Observed:
        fields = {
            "name": attr(s, "name", None),
            "type": s.type,
            "description": text(attr(s, "description", None)),
            "enabled": attr(s, "enabled", True),
        }
        return Observed(s.id, fields, s, is_managed(s))

    def normalise(self, field_name, value):
        return text(value) if field_name == "description" else value

    def read_all(self, cloud, resources):
        return [self.observe(s) for s in cloud.keystone.services.list()]

    def create(self, cloud, resource, desired, resolver):
        s = cloud.keystone.services.create(
            resource.spec["name"],
            type=resource.spec["type"],
            description=desired.get("description"),
            enabled=desired.get("enabled", True),
            **marker(),
        )
        return self.observe(s)

    def update(self, cloud, resource, observed, changed, resolver):
        cloud.keystone.services.update(observed.id, **changed)

    def delete(self, cloud, observed):
        cloud.keystone.services.delete(observed.id)
