"""domains: Keystone domains (identity v3)."""

from __future__ import annotations

from bootstrap.cloud import classify
from bootstrap.drivers._keystone import is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.errors import Forbidden
from bootstrap.plan import Observed


class DomainDriver(Driver):
    kind = "domains"
    key_fields = ("name",)
    references = {}
    updatable = frozenset({"description", "enabled"})
    immutable = frozenset()
    ownership = "extra"
    position = 10
    needs_admin = True
    needs_default_domain = True

    def observe(self, d) -> Observed:
        fields = {"name": d.name, "description": text(d.description), "enabled": d.enabled}
        return Observed(d.id, fields, d, is_managed(d))

    def normalise(self, field_name, value):
        return text(value) if field_name == "description" else value

    def read_all(self, cloud, resources):
        try:
            return [self.observe(d) for d in cloud.keystone.domains.list()]
        except Exception as exc:
            # A non-admin may not list domains; it needs them only to know the Default
            # domain's id, which the engine then assumes is "default".
            if resources or not isinstance(classify(exc), Forbidden):
                raise
            return []

    def create(self, cloud, resource, desired, resolver):
        d = cloud.keystone.domains.create(
            resource.spec["name"],
            description=desired.get("description"),
            enabled=desired.get("enabled", True),
            **marker(),
        )
        return self.observe(d)

    def update(self, cloud, resource, observed, changed, resolver):
        cloud.keystone.domains.update(observed.id, **changed)

    def delete(self, cloud, observed):
        # Keystone deletes only disabled domains.
        if observed.fields.get("enabled", True):
            cloud.keystone.domains.update(observed.id, enabled=False)
        cloud.keystone.domains.delete(observed.id)
