"""roles: Keystone roles, global or domain-specific."""

from __future__ import annotations

from bootstrap.drivers._keystone import attr, is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.plan import UNKNOWN, Observed


class RoleDriver(Driver):
    kind = "roles"
    key_fields = ("domain", "name")
    references = {"domain": "domains"}
    updatable = frozenset({"description"})
    immutable = frozenset()
    ownership = "extra"
    position = 30
    needs_admin = True
    needs_default_domain = True

    def observe(self, r) -> Observed:
        fields = {
            "name": r.name,
            "domain_id": attr(r, "domain_id", None),
            "description": text(attr(r, "description", None)),
        }
        return Observed(r.id, fields, r, is_managed(r))

    def identity(self, resource, resolver):
        # Unlike other domain-scoped kinds, a role without a domain is global.
        domain = resource.spec.get("domain")
        domain_id = resolver.id(domain.address) if domain is not None else None
        if domain_id is UNKNOWN:
            return None
        return {"name": resource.spec["name"], "domain_id": domain_id}

    def normalise(self, field_name, value):
        return text(value) if field_name == "description" else value

    def read_all(self, cloud, resources):
        roles = list(cloud.keystone.roles.list())
        # Domain-specific roles are only listed per domain: pay for that only when used.
        if any(r.spec.get("domain") is not None for r in resources):
            for d in cloud.keystone.domains.list():
                roles.extend(cloud.keystone.roles.list(domain=d.id))
        return [self.observe(r) for r in roles]

    def create(self, cloud, resource, desired, resolver):
        kwargs = {}
        if "domain" in resource.spec:
            kwargs["domain"] = resolver.id(resource.spec["domain"].address)
        if "description" in desired:
            kwargs["description"] = desired["description"]
        r = cloud.keystone.roles.create(resource.spec["name"], **kwargs, **marker())
        return self.observe(r)

    def update(self, cloud, resource, observed, changed, resolver):
        cloud.keystone.roles.update(observed.id, **changed)

    def delete(self, cloud, observed):
        cloud.keystone.roles.delete(observed.id)
