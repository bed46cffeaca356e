"""role_assignments: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


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

    @classmethod
    def natural_key(cls, spec):
        """(role, actor, target): `admin/user:alice/project:acme`, `reader/group:ops/system:all`."""

        def name_of(value):
            return "/".join(value.address.key) if hasattr(value, "address") else str(value)

        role = name_of(spec["role"])
        actor = next(f"{k}:{name_of(spec[k])}" for k in ("user", "group") if spec.get(k))
        if spec.get("system"):
            target = f"system:{spec['system']}"
        else:
            target = next(f"{k}:{name_of(spec[k])}" for k in ("project", "domain") if spec.get(k))
        if spec.get("inherited"):
            target += ":inherited"
        return (role, actor, target)
