"""flavors: Nova flavors. Sizes are immutable in Nova: changing one is a replace.

Read with ONE list call (`is_public=None`: public and private; extra specs are embedded
at microversion >= 2.61). Flavor access is read per flavor, only for private flavors
whose `access` the manifest manages. Flavors have no place for an ownership marker:
--prune never deletes flavors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bootstrap.drivers.base import Driver
from bootstrap.export import ALWAYS, stand_in
from bootstrap.model import Address
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

SIZE_FIELDS = ("vcpus", "ram", "disk", "ephemeral", "swap")


def _int(value: Any) -> int:
    # Nova before 2.75 returned swap "" for none.
    return int(value) if value not in (None, "") else 0


class FlavorDriver(Driver):
    kind = "flavors"
    clients = ("nova",)
    key_fields = ("name",)
    references = {"access[]": "projects"}
    updatable = frozenset({"extra_specs", "access", "description"})
    immutable = frozenset({"id", "vcpus", "ram", "disk", "ephemeral", "swap", "is_public"})
    map_fields = frozenset({"extra_specs"})
    set_fields = frozenset({"access"})
    # Nova's create takes neither: extra specs and access follow as an update step.
    set_after_create = frozenset({"extra_specs", "access"})
    # Servers keep running on a deleted flavor (they embed a copy): nothing is lost.
    replace_is_destructive = False
    ownership = None
    position = 110
    create_before_destroy_impossible = (
        "Nova flavor names are unique, so the new flavor cannot exist next to the old one"
    )
    needs_admin = True
    required_for_create = frozenset({"vcpus", "ram"})
    # The flavor id is left out: Nova makes one (a manifest may still pin it).
    export_fields = {
        "vcpus": ALWAYS,
        "ram": ALWAYS,
        "disk": 0,
        "ephemeral": 0,
        "swap": 0,
        "is_public": True,
        "description": "",
        "extra_specs": {},
        "access": [],
    }
    export_scope = {"access": "projects"}

    def export_reads(self, selected, names):
        # Which projects a private flavor is for is one GET per flavor, asked for by name;
        # every private flavor is read, for the scope depends on it.
        return [
            stand_in(self.kind, o.fields["name"], access=[])
            for o in names.by_id.get(self.kind, {}).values()
            if not o.fields["is_public"]
        ]

    @classmethod
    def check(cls, c: Checker) -> None:
        if c.spec.get("access") and c.spec.get("is_public") is not False:
            c.error(("access",), "access lists are for private flavors: set is_public: false")

    def observe(self, f: Any) -> Observed:
        info = f.to_dict()
        fields = {
            "name": info["name"],
            "id": info["id"],
            "vcpus": _int(info.get("vcpus")),
            "ram": _int(info.get("ram")),
            "disk": _int(info.get("disk")),
            "ephemeral": _int(info.get("OS-FLV-EXT-DATA:ephemeral")),
            "swap": _int(info.get("swap")),
            "is_public": bool(info.get("os-flavor-access:is_public", True)),
            "description": info.get("description") or "",
            "extra_specs": dict(info.get("extra_specs") or {}),
        }
        return Observed(info["id"], fields, f)

    def normalise(self, field_name: str, value: Any) -> Any:
        if field_name == "description":
            return value or ""
        if field_name == "access":
            return sorted(value or [], key=str)
        if field_name == "extra_specs":
            return {k: str(v) for k, v in (value or {}).items()}
        if field_name == "id":
            return str(value)
        return value

    def replace_reason(self, fields: list[str]) -> str:
        return (
            f"Nova cannot change a flavor's {', '.join(fields)}: the flavor is deleted and "
            "created again (running servers keep their copy of the old sizes)"
        )

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (observed.fields["name"],))

    def read_all(self, cloud, resources, known=None):
        flavors = [self.observe(f) for f in cloud.nova.flavors.list(is_public=None)]
        manages_access = {r.spec["name"] for r in resources if not r.absent and "access" in r.spec}
        for obs in flavors:
            if obs.fields["name"] in manages_access and not obs.fields["is_public"]:
                # No list call gives access for several flavors: one GET per such flavor.
                entries = cloud.nova.flavor_access.list(flavor=obs.id)
                obs.fields["access"] = sorted(e.tenant_id for e in entries)
        return flavors

    def update_patch(self, resource, observed, desired, fields):
        """The base patch without empty deltas (no extra specs or access to write)."""
        patch = super().update_patch(resource, observed, desired, fields)
        return {
            f: v
            for f, v in patch.items()
            if not (f in self.set_fields and not (v.add or v.remove))
            and not (f in self.map_fields and not (v.set or v.unset))
        }

    def create_args(self, resource, desired, resolver):
        args: dict[str, Any] = {"name": resource.spec["name"]}
        args.update({f: v for f, v in desired.items() if f not in self.set_after_create})
        return args

    def create(self, cloud, args, ctx):
        flavor = cloud.nova.flavors.create(
            args["name"],
            args["ram"],
            args["vcpus"],
            args.get("disk", 0),
            flavorid=args.get("id", "auto"),
            ephemeral=args.get("ephemeral", 0),
            swap=args.get("swap", 0),
            is_public=args.get("is_public", True),
            description=args.get("description") or None,
        )
        return self.observe(flavor)

    def update(self, cloud, observed, patch, ctx):
        nova = cloud.nova
        from novaclient.v2.flavors import Flavor

        # set_keys/unset_keys only need the id: no GET for a full object.
        flavor = Flavor(nova.flavors, {"id": observed.id}, loaded=True)
        if "description" in patch:
            nova.flavors.update(observed.id, description=patch["description"] or None)
        if "extra_specs" in patch:
            delta = patch["extra_specs"]
            if delta.set:
                flavor.set_keys(dict(delta.set))
            if delta.unset:
                flavor.unset_keys(list(delta.unset))
        if "access" in patch:
            delta = patch["access"]
            for project_id in delta.add:
                nova.flavor_access.add_tenant_access(observed.id, project_id)
            for project_id in delta.remove:
                nova.flavor_access.remove_tenant_access(observed.id, project_id)

    def delete(self, cloud, observed, ctx):
        cloud.nova.flavors.delete(observed.id)
