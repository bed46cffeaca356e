"""projects: Keystone projects (the seed's "tenants"), nested through `parent`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bootstrap.cloud import classify
from bootstrap.drivers._keystone import (
    KeystoneDriver,
    attr,
    is_managed,
    my_projects,
    stack_of,
    text,
    with_marker,
)
from bootstrap.errors import Forbidden
from bootstrap.plan import Listing, Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker


class ProjectDriver(KeystoneDriver):
    kind = "projects"
    manager = "projects"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "parent": "projects"}
    updatable = frozenset({"description", "enabled", "tags"})
    immutable = frozenset({"parent"})
    export_fields = {"description": "", "enabled": True, "parent": None, "tags": []}
    position = 20
    create_before_destroy_impossible = "Keystone project names are unique in their domain"
    needs_default_domain = True

    @classmethod
    def check(cls, c: Checker) -> None:
        parent = c.target(c.spec.get("parent"))
        if parent is None:
            return
        mine = c.scope(c.spec.get("domain"), "domain")
        theirs = c.scope(parent.spec.get("domain"), "domain")
        if mine is not None and theirs is not None and mine != theirs:
            c.error(
                ("parent",),
                f"parent {parent.address} is in domain '{theirs.name}', not '{mine.name}'; "
                "Keystone needs a parent in the same domain",
            )

    def observe(self, p) -> Observed:
        parent = attr(p, "parent_id", None)
        fields = {
            "name": p.name,
            "domain_id": p.domain_id,
            "description": text(attr(p, "description", None)),
            "enabled": attr(p, "enabled", True),
            # A top-level project's parent is its domain: that is "no parent" here.
            "parent": None if parent in (None, p.domain_id) else parent,
            "tags": sorted(attr(p, "tags", None) or []),
        }
        return Observed(p.id, fields, p, is_managed(p), stack_of(p))

    def normalise(self, field_name, value):
        if field_name == "tags":
            return sorted(value or [])
        return super().normalise(field_name, value)

    def read_all(self, cloud, resources, known=None):
        try:
            return super().read_all(cloud, resources)
        except Exception as exc:
            if not isinstance(classify(exc), Forbidden):
                raise
        # A non-admin may not list projects but may list its own: a partial view.
        return Listing.of((self.observe(p) for p in my_projects(cloud)), partial=True)

    def create(self, cloud, args, ctx):
        a = with_marker(args)
        return self.observe(self.api(cloud).create(a.pop("name"), a.pop("domain"), **a))
