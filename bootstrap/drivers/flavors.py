"""flavors: Nova flavors. Sizes are immutable in Nova: changing one is a replace.

Read with ONE list call (`is_public=None`: public and private; extra specs are embedded
at microversion >= 2.61). Flavor access is read per flavor, only for private flavors
whose `access` the manifest manages. Flavors have no place for an ownership marker:
--prune never deletes flavors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bootstrap.drivers.base import Driver
from bootstrap.errors import Diagnostic, ManifestError
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
    key_fields = ("name",)
    references = {"access[]": "projects"}
    updatable = frozenset({"extra_specs", "access", "description"})
    immutable = frozenset({"id", "vcpus", "ram", "disk", "ephemeral", "swap", "is_public"})
    # Servers keep running on a deleted flavor (they embed a copy): nothing is lost.
    replace_is_destructive = False
    ownership = None
    position = 110
    needs_admin = True
    required_for_create = frozenset({"vcpus", "ram"})

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

    def read_all(self, cloud, resources):
        flavors = [self.observe(f) for f in cloud.nova.flavors.list(is_public=None)]
        manages_access = {r.spec["name"] for r in resources if not r.absent and "access" in r.spec}
        for obs in flavors:
            if obs.fields["name"] in manages_access and not obs.fields["is_public"]:
                # No list call gives access for several flavors: one GET per such flavor.
                entries = cloud.nova.flavor_access.list(flavor=obs.id)
                obs.fields["access"] = sorted(e.tenant_id for e in entries)
        return flavors

    def create(self, cloud, resource, desired, resolver):
        missing = [f for f in ("vcpus", "ram") if f not in desired]
        if missing:
            raise ManifestError(
                [
                    Diagnostic(
                        "error",
                        f"cannot create flavor {resource.spec['name']}: "
                        f"{' and '.join(missing)} not given",
                        address=str(resource.address),
                    )
                ]
            )
        nova = cloud.nova
        flavor = nova.flavors.create(
            resource.spec["name"],
            desired["ram"],
            desired["vcpus"],
            desired.get("disk", 0),
            flavorid=desired.get("id", "auto"),
            ephemeral=desired.get("ephemeral", 0),
            swap=desired.get("swap", 0),
            is_public=desired.get("is_public", True),
            description=desired.get("description") or None,
        )
        if desired.get("extra_specs"):
            flavor.set_keys(desired["extra_specs"])
        for project_id in desired.get("access") or []:
            nova.flavor_access.add_tenant_access(flavor.id, project_id)
        obs = self.observe(flavor)
        obs.fields["extra_specs"] = dict(desired.get("extra_specs") or {})
        return obs

    def update(self, cloud, resource, observed, changed, resolver):
        nova = cloud.nova
        from novaclient.v2.flavors import Flavor

        # set_keys/unset_keys only need the id: no GET for a full object.
        flavor = Flavor(nova.flavors, {"id": observed.id}, loaded=True)
        if "description" in changed:
            nova.flavors.update(observed.id, description=changed["description"] or None)
        if "extra_specs" in changed:
            new, old = changed["extra_specs"], observed.fields.get("extra_specs") or {}
            to_set = {k: v for k, v in new.items() if old.get(k) != v}
            if to_set:
                flavor.set_keys(to_set)
            gone = [k for k in old if k not in new]
            if gone:
                flavor.unset_keys(gone)
        if "access" in changed:
            new, old = set(changed["access"]), set(observed.fields.get("access") or [])
            for project_id in sorted(new - old):
                nova.flavor_access.add_tenant_access(observed.id, project_id)
            for project_id in sorted(old - new):
                nova.flavor_access.remove_tenant_access(observed.id, project_id)

    def delete(self, cloud, observed):
        cloud.nova.flavors.delete(observed.id)
