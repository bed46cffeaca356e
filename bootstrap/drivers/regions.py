"""regions: Keystone regions (catalog), keyed by their id."""

from __future__ import annotations

from bootstrap.drivers._keystone import attr, is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import UNKNOWN, Observed


class RegionDriver(Driver):
    kind = "regions"
    key_fields = ("id",)
    references = {"parent": "regions"}
    updatable = frozenset({"description"})
    immutable = frozenset({"parent"})
    ownership = "extra"
    position = 70
    needs_admin = True

    def observe(self, r) -> Observed:
        fields = {
            "name": r.id,
            "description": text(attr(r, "description", None)),
            "parent": attr(r, "parent_region_id", None),
        }
        return Observed(r.id, fields, r, is_managed(r))

    def identity(self, resource, resolver):
        return {"name": resource.spec["id"]}

    def normalise(self, field_name, value):
        return text(value) if field_name == "description" else value

    def equal(self, field_name, desired, observed):
        if field_name == "parent" and desired is UNKNOWN:
            return False
        return super().equal(field_name, desired, observed)

    def read_all(self, cloud, resources):
        return [self.observe(r) for r in cloud.keystone.regions.list()]

    def address_of_observed(self, observed):
        return Address(self.kind, (observed.id,))

    def create(self, cloud, resource, desired, resolver):
        r = cloud.keystone.regions.create(
            id=resource.spec["id"],
            description=desired.get("description"),
            parent_region=desired.get("parent"),
            **marker(),
        )
        return self.observe(r)

    def update(self, cloud, resource, observed, changed, resolver):
        cloud.keystone.regions.update(observed.id, **changed)

    def delete(self, cloud, observed):
        cloud.keystone.regions.delete(observed.id)
