"""role_assignments: a role for a user or group on a project, a domain or the system.

An assignment has no attributes to update: it exists or it does not. All of them are
read with ONE `GET /v3/role_assignments` and matched by (role, actor, target).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bootstrap.drivers._keystone import attr, ref_id
from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import UNKNOWN, Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

ACTORS = ("user", "group")
TARGETS = ("project", "domain")


class RoleAssignmentDriver(Driver):
    kind = "role_assignments"
    key_fields = ("role", "user", "group", "project", "domain", "system")
    references = {
        "role": "roles",
        "user": "users",
        "group": "groups",
        "project": "projects",
        "domain": "domains",
    }
    updatable = frozenset()
    immutable = frozenset()
    replace_is_destructive = False
    position = 60
    needs_admin = True
    needs_default_domain = True

    @classmethod
    def check(cls, c: Checker) -> None:
        if c.spec.get("inherited") and c.spec.get("system"):
            c.error(
                ("inherited",), "inherited grants apply to projects and domains, not the system"
            )

    @classmethod
    def natural_key(cls, spec):
        """(role, actor, target): `admin/user:alice/project:acme`, `reader/group:ops/system:all`."""

        def name_of(value):
            return "/".join(value.address.key) if hasattr(value, "address") else str(value)

        role = name_of(spec["role"])
        actor = next(f"{k}:{name_of(spec[k])}" for k in ACTORS if spec.get(k))
        if spec.get("system"):
            target = f"system:{spec['system']}"
        else:
            target = next(f"{k}:{name_of(spec[k])}" for k in TARGETS if spec.get(k))
        if spec.get("inherited"):
            target += ":inherited"
        return (role, actor, target)

    def observe(self, a) -> Observed:
        scope = attr(a, "scope", {}) or {}
        fields = {
            "role_id": ref_id(a.role),
            "user_id": ref_id(attr(a, "user", None)),
            "group_id": ref_id(attr(a, "group", None)),
            "project_id": ref_id(scope.get("project")),
            "domain_id": ref_id(scope.get("domain")),
            "system": "all" if scope.get("system") else None,
            "inherited": "OS-INHERIT:inherited_to" in scope,
        }
        live_id = "|".join(str(fields[k]) for k in sorted(fields))
        return Observed(live_id, fields, a, False)

    def identity(self, resource, resolver):
        spec = resource.spec
        ident = {
            "role_id": resolver.id(spec["role"].address),
            "user_id": None,
            "group_id": None,
            "project_id": None,
            "domain_id": None,
            "system": spec.get("system"),
            "inherited": bool(spec.get("inherited", False)),
        }
        for k in ACTORS + TARGETS:
            if spec.get(k) is not None:
                ident[f"{k}_id"] = resolver.id(spec[k].address)
        if any(v is UNKNOWN for v in ident.values()):
            return None
        return ident

    def read_all(self, cloud, resources):
        # Effective=False: only direct assignments, which are what a manifest declares.
        return [self.observe(a) for a in cloud.keystone.role_assignments.list()]

    def address_of_observed(self, observed):
        return Address(self.kind, (observed.id,))

    def _grant_args(self, fields):
        kw = {}
        for k in ("user", "group", "project", "domain"):
            if fields.get(f"{k}_id"):
                kw[k] = fields[f"{k}_id"]
        if fields.get("system"):
            kw["system"] = fields["system"]
        if fields.get("inherited"):
            kw["os_inherit_extension_inherited"] = True
        return kw

    def create(self, cloud, resource, desired, resolver):
        fields = self.identity(resource, resolver)
        assert fields is not None, "references must exist before an assignment is made"
        cloud.keystone.roles.grant(fields["role_id"], **self._grant_args(fields))
        live_id = "|".join(str(fields[k]) for k in sorted(fields))
        return Observed(live_id, fields)

    def delete(self, cloud, observed):
        fields = observed.fields
        cloud.keystone.roles.revoke(fields["role_id"], **self._grant_args(fields))
