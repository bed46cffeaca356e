"""regions: Keystone regions (catalog), keyed by their id."""

from __future__ import annotations

from bootstrap.drivers._keystone import (
    KeystoneDriver,
    attr,
    is_managed,
    stack_of,
    text,
    with_marker,
)
from bootstrap.model import Address
from bootstrap.plan import Observed


class RegionDriver(KeystoneDriver):
    kind = "regions"
    manager = "regions"
    key_fields = ("id",)
    references = {"parent": "regions"}
    updatable = frozenset({"description"})
    immutable = frozenset({"parent"})
    position = 70
    create_before_destroy_impossible = "region ids are unique"

    def observe(self, r) -> Observed:
        fields = {
            "name": r.id,
            "description": text(attr(r, "description", None)),
            "parent": attr(r, "parent_region_id", None),
        }
        return Observed(r.id, fields, r, is_managed(r), stack_of(r))

    def identity(self, resource, resolver):
        return {"name": resource.spec["id"]}

    def address_of_observed(self, observed):
        return Address(self.kind, (observed.id,))

    def create_args(self, resource, desired, resolver):
        args = {"id": resource.spec["id"], "description": desired.get("description")}
        if "parent" in desired:
            args["parent_region"] = desired["parent"]
        return args

    def create(self, cloud, args, ctx):
        return self.observe(self.api(cloud).create(**with_marker(args)))
