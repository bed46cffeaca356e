"""projects: Keystone projects (the seed's "tenants"), nested through `parent`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bootstrap.cloud import classify
from bootstrap.drivers._keystone import attr, is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.errors import Forbidden
from bootstrap.model import Address
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker


class ProjectDriver(Driver):
    kind = "projects"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "parent": "projects"}
    updatable = frozenset({"description", "enabled", "tags"})
    immutable = frozenset({"parent"})
    ownership = "extra"
    position = 20
    needs_admin = True
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
        return Observed(p.id, fields, p, is_managed(p))

    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "tags":
            return sorted(value or [])
        return value

    def read_all(self, cloud, resources):
        try:
            projects = cloud.keystone.projects.list()
        except Exception as exc:
            if not isinstance(classify(exc), Forbidden):
                raise
            # A non-admin may not list projects but may list its own.
            projects = cloud.keystone.projects.list(user=cloud.user_id)
            self.partial_read = True
        return [self.observe(p) for p in projects]

    def address_of_observed(self, observed):
        return Address(self.kind, (observed.fields["name"],))

    def create(self, cloud, resource, desired, resolver):
        domain = (
            resolver.id(resource.spec["domain"].address)
            if "domain" in resource.spec
            else (resolver.id(Address("domains", ("Default",))))
        )
        kwargs = {
            "description": desired.get("description"),
            "enabled": desired.get("enabled", True),
            "parent": desired.get("parent"),
        }
        if "tags" in desired:
            kwargs["tags"] = desired["tags"]
        p = cloud.keystone.projects.create(
            resource.spec["name"],
            domain,
            **{k: v for k, v in kwargs.items() if v is not None},
            **marker(),
        )
        return self.observe(p)

    def update(self, cloud, resource, observed, changed, resolver):
        cloud.keystone.projects.update(observed.id, **changed)

    def delete(self, cloud, observed):
        cloud.keystone.projects.delete(observed.id)
