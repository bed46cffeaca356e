"""volume_types: Cinder volume types, keyed by name (admin only).

Read with ONE list call (`is_public=None`: public and private types; an admin gets the
extra specs with the list). Project access is read per type, only for private types whose
`access` the manifest manages (Cinder has no list of access for several types).

No ownership marker: a type's only free-form place is its extra specs, which are the
type's meaning (the scheduler matches them against backends, drivers read their own
scoped keys, and every admin listing the type sees them). A bookkeeping key there would
change what the type is for others, so volume types, like flavors, are never pruned:
delete them with `state: absent`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker


def specs(value: Any) -> dict[str, str]:
    """Cinder stores extra spec values as text: `true` and `"True"` are one spelling
    per value only once they are strings."""
    return {str(k): v if isinstance(v, str) else str(v) for k, v in (value or {}).items()}


class VolumeTypeDriver(Driver):
    clients = ("sdk",)
    kind = "volume_types"
    key_fields = ("name",)
    references = {"access[]": "projects"}
    updatable = frozenset({"description", "extra_specs", "is_public", "access"})
    map_fields = frozenset({"extra_specs"})
    set_fields = frozenset({"access"})
    # The create call takes the extra specs; access is granted after it, type by type.
    set_after_create = frozenset({"access"})
    ownership = None
    position = 113
    needs_admin = True

    @classmethod
    def check(cls, c: Checker) -> None:
        if c.spec.get("access") and c.spec.get("is_public") is not False:
            c.error(("access",), "access lists are for private volume types: set is_public: false")

    # --- pure -----------------------------------------------------------------------
    def observe(self, t: Any) -> Observed:
        fields = {
            "name": t.name,
            "description": t.description or "",
            "is_public": bool(t.is_public) if t.is_public is not None else True,
            "extra_specs": specs(t.extra_specs),
        }
        return Observed(t.id, fields, t)

    def normalise(self, field_name: str, value: Any) -> Any:
        if field_name == "description":
            return value or ""
        if field_name == "extra_specs":
            return specs(value)
        if field_name == "access":
            return sorted(value or [], key=str)
        return value

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (observed.fields["name"],))

    def update_patch(self, resource, observed, desired, fields):
        """The base patch without empty deltas (nothing to grant or to set)."""
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

    # --- I/O ------------------------------------------------------------------------
    def read_all(self, cloud, resources, known=None):
        bs = cloud.block_storage
        # "None" (the string) is Cinder's spelling of "public and private alike".
        types = [self.observe(t) for t in bs.types(is_public="None")]
        manages_access = {r.spec["name"] for r in resources if not r.absent and "access" in r.spec}
        for obs in types:
            if obs.fields["name"] in manages_access and not obs.fields["is_public"]:
                entries = bs.get_type_access(obs.id)
                obs.fields["access"] = sorted(e["project_id"] for e in entries)
        return types

    def create(self, cloud, args, ctx):
        attrs = {
            k: args[k] for k in ("name", "description", "is_public", "extra_specs") if k in args
        }
        if not attrs.get("description"):
            attrs.pop("description", None)
        return self.observe(cloud.block_storage.create_type(**attrs))

    def update(self, cloud, observed, patch, ctx):
        from openstack import exceptions

        bs = cloud.block_storage
        body = {k: patch[k] for k in ("description", "is_public") if k in patch}
        if body:
            # Cinder's update takes `is_public`, not the access extension's attribute
            # name that openstacksdk's Type would send.
            response = bs.put(f"/types/{observed.id}", json={"volume_type": body})
            exceptions.raise_from_response(response)
        if "extra_specs" in patch:
            delta = patch["extra_specs"]
            if delta.set:
                bs.update_type_extra_specs(observed.id, **dict(delta.set))
            if delta.unset:
                bs.delete_type_extra_specs(observed.id, list(delta.unset))
        if "access" in patch:
            delta = patch["access"]
            for project_id in delta.add:
                bs.add_type_access(observed.id, project_id)
            for project_id in delta.remove:
                bs.remove_type_access(observed.id, project_id)

    def delete(self, cloud, observed, ctx):
        cloud.block_storage.delete_type(observed.id, ignore_missing=False)
