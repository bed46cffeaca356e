"""roles: Keystone roles, global or domain-specific."""

from __future__ import annotations

from bootstrap.drivers._keystone import (
    KeystoneDriver,
    attr,
    is_managed,
    list_all,
    stack_of,
    text,
    with_marker,
)
from bootstrap.plan import Observed


class RoleDriver(KeystoneDriver):
    kind = "roles"
    manager = "roles"
    reads_alone = False  # its read_all looks at the manifest's resources
    key_fields = ("domain", "name")
    references = {"domain": "domains"}
    updatable = frozenset({"description"})
    immutable = frozenset()
    export_fields = {"description": ""}
    position = 30
    create_before_destroy_impossible = "Keystone role names are unique"
    needs_default_domain = True

    def observe(self, r) -> Observed:
        fields = {
            "name": r.name,
            "domain_id": attr(r, "domain_id", None),
            "description": text(attr(r, "description", None)),
        }
        return Observed(r.id, fields, r, is_managed(r), stack_of(r))

    def identity(self, resource, resolver):
        # Unlike other domain-scoped kinds, a role without a domain is global.
        domain = resource.spec.get("domain")
        if domain is None:
            return {"name": resource.spec["name"], "domain_id": None}
        domain_id = resolver.live(domain.address)
        if domain_id is None:
            return None
        return {"name": resource.spec["name"], "domain_id": domain_id}

    def create_args(self, resource, desired, resolver):
        domain = resource.spec.get("domain")
        return {
            "name": resource.spec["name"],
            "domain": resolver.id(domain.address) if domain is not None else None,
            **desired,
        }

    def read_all(self, cloud, resources, known=None):
        roles = list_all(cloud, "/roles")
        # Domain-specific roles are only listed per domain: pay for that only when used.
        if any(r.spec.get("domain") is not None for r in resources):
            for d in list_all(cloud, "/domains"):
                roles.extend(list_all(cloud, "/roles", domain_id=d.id))
        return [self.observe(r) for r in roles]

    def create(self, cloud, args, ctx):
        a = with_marker(args)
        return self.observe(self.api(cloud).create(a.pop("name"), **a))
