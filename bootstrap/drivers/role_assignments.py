"""role_assignments: a role for a user or group on a project, a domain or the system.

An assignment has no attributes to update: it exists or it does not. All of them are
read with ONE `GET /v3/role_assignments` and matched by (role, actor, target).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bootstrap.drivers._keystone import attr, list_all, ref_id
from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

ACTORS = ("user", "group")
TARGETS = ("project", "domain")


class RoleAssignmentDriver(Driver):
    kind = "role_assignments"
    clients = ("identity",)  # reads: JSON on the session
    write_clients = ("keystone",)
    reads_alone = True
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
    export_fields = {"inherited": False}
    replace_is_destructive = False
    position = 60
    create_before_destroy_impossible = "an assignment is its key: no second one can exist"
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
        role = _name_of(spec["role"])
        actor = next(f"{k}:{_name_of(spec[k])}" for k in ACTORS if spec.get(k))
        if spec.get("system"):
            target = f"system:{spec['system']}"
        else:
            target = next(f"{k}:{_name_of(spec[k])}" for k in TARGETS if spec.get(k))
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
        ident = self._ends(resource, resolver.live)
        return None if any(v is None for v in ident.values()) else self._fields(resource, ident)

    def _ends(self, resource, id_of):
        """role, actor and target ids, through `id_of` (live ids, or the plan's ids)."""
        spec = resource.spec
        return {
            f"{k}_id": id_of(spec[k].address)
            for k in ("role",) + ACTORS + TARGETS
            if spec.get(k) is not None
        }

    @staticmethod
    def _fields(resource, ends):
        spec = resource.spec
        fields = {
            "role_id": None,
            "user_id": None,
            "group_id": None,
            "project_id": None,
            "domain_id": None,
            "system": spec.get("system"),
            "inherited": bool(spec.get("inherited", False)),
        }
        fields.update(ends)
        return fields

    def read_all(self, cloud, resources, known=None):
        # Effective=False: only direct assignments, which are what a manifest declares.
        return [self.observe(a) for a in list_all(cloud, "/role_assignments")]

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

    def create_args(self, resource, desired, resolver):
        return self._fields(resource, self._ends(resource, resolver.id))

    def create(self, cloud, args, ctx):
        cloud.keystone.roles.grant(args["role_id"], **self._grant_args(args))
        live_id = "|".join(str(args[k]) for k in sorted(args))
        return Observed(live_id, dict(args))

    def delete(self, cloud, observed, ctx):
        fields = observed.fields
        cloud.keystone.roles.revoke(fields["role_id"], **self._grant_args(fields))


def _name_of(value) -> str:
    """A resolved reference's key ("Default/acme"), or the value as written."""
    address = getattr(value, "address", None)
    return "/".join(address.key) if address is not None else str(value)
