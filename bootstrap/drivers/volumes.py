"""volumes: Cinder volumes, made in the project the manifest names.

Read with ONE list call (`all_tenants` for an admin; else the token's project plus one
list per other project of the manifest the user has a role on). Compared as Cinder
reports them at microversion 3.63+: the type by id (`volume_type_id`), the image a volume
was made from by `volume_image_metadata.image_id`.

- `size` grows in place (an extend, waited for); a smaller size is refused at plan time:
  Cinder cannot shrink a volume.
- `description`, `bootable` and `metadata` change in place.
- `volume_type` and `image` cannot change here: the volume is deleted and made again, its
  data lost (a replace: needs --allow-destroy).

The ownership marker lives in the volume's metadata (`managed_by: openstack-bootstrap`,
`bootstrap_stack: NAME`, as on Glance images); those two keys are never compared.
"""

from __future__ import annotations

from typing import Any

from bootstrap.drivers import _nova
from bootstrap.drivers._cinder import wait_status
from bootstrap.drivers._keystone import my_projects
from bootstrap.drivers.base import Driver
from bootstrap.errors import PlanError
from bootstrap.model import Address, Ref
from bootstrap.plan import Action, MapDelta, Observed

MARKER_KEY = "managed_by"
MARKER_VALUE = "openstack-bootstrap"
STACK_KEY = "bootstrap_stack"
OWN_KEYS = (MARKER_KEY, STACK_KEY)


def text_map(value: Any) -> dict[str, str]:
    """Cinder stores metadata values as text."""
    return {str(k): v if isinstance(v, str) else str(v) for k, v in (value or {}).items()}


class VolumeDriver(Driver):
    clients = ("sdk", "identity")
    made_in_token_project = True
    kind = "volumes"
    key_fields = ("project", "name")
    references = {"project": "projects", "volume_type": "volume_types", "image": "images"}
    updatable = frozenset({"size", "description", "bootable", "metadata"})
    immutable = frozenset({"volume_type", "image"})
    map_fields = frozenset({"metadata"})
    # Cinder's create has no bootable flag: it follows as an update step.
    set_after_create = frozenset({"bootable"})
    ownership = "metadata"
    project_field = "project_id"
    position = 177
    required_for_create = frozenset({"size"})

    # --- pure -----------------------------------------------------------------------
    def observe(self, v: Any) -> Observed:
        metadata = text_map(v.metadata)
        image = (v.volume_image_metadata or {}).get("image_id")
        fields = {
            "name": v.name,
            "project_id": v.project_id,
            "size": v.size,
            "volume_type": v.volume_type_id,
            "image": image,
            "bootable": bool(v.is_bootable),
            "description": v.description or "",
            "metadata": {k: val for k, val in metadata.items() if k not in OWN_KEYS},
            "status": v.status,
        }
        managed = metadata.get(MARKER_KEY) == MARKER_VALUE
        stack = metadata.get(STACK_KEY) if managed else None
        return Observed(v.id, fields, v, managed, stack or None)

    def normalise(self, field_name: str, value: Any) -> Any:
        if field_name == "description":
            return value or ""
        if field_name == "metadata":
            return text_map(value)
        return value

    def diff(self, resource, observed, resolver, facts=None):
        change = super().diff(resource, observed, resolver, facts)
        if change.action is Action.UPDATE and "size" not in resource.lifecycle.ignore_changes:
            have = observed.fields.get("size") if observed is not None else None
            want = resource.spec.get("size")
            if isinstance(have, int) and isinstance(want, int) and want < have:
                raise PlanError(
                    f"{resource.address}: size {want} GiB is smaller than the live volume's "
                    f"{have} GiB, and Cinder cannot shrink a volume. Keep size: {have} (or "
                    "more); to start over with a smaller one, delete it first (state: absent)"
                )
        return change

    def replace_reason(self, fields: list[str]) -> str:
        return (
            f"a volume's {', '.join(fields)} cannot change in place: the volume is deleted "
            "and made again (its data is lost)"
        )

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(
            self.kind, (observed.fields.get("project_id") or "", observed.fields["name"])
        )

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        args["metadata"] = {**args.get("metadata", {}), MARKER_KEY: MARKER_VALUE}
        return args

    def mark_create(self, steps, stack):
        for step in steps:
            if step.verb == "create":
                step.args["metadata"] = {**step.args["metadata"], STACK_KEY: stack}

    def mark_patch(self, observed, stack):
        return {"metadata": MapDelta({MARKER_KEY: MARKER_VALUE, STACK_KEY: stack})}

    def update_patch(self, resource, observed, desired, fields):
        """The base patch; metadata deltas never unset the marker (it is not compared)."""
        patch = super().update_patch(resource, observed, desired, fields)
        if "metadata" in patch:
            delta = patch["metadata"]
            patch["metadata"] = MapDelta(
                delta.set, tuple(k for k in delta.unset if k not in OWN_KEYS)
            )
        return patch

    # --- reading --------------------------------------------------------------------
    def read_all(self, cloud, resources, known=None):
        out = [self.observe(v) for v in self._list(cloud, resources)]
        return [o for o in out if o.fields["status"] not in ("deleting",)]

    def _list(self, cloud, resources) -> list[Any]:
        if _nova.is_admin(cloud):
            return list(cloud.block_storage.volumes(all_projects=True))
        volumes = list(cloud.block_storage.volumes())
        # A non-admin sees one project per token: other projects of the manifest it has a
        # role on are listed with a token scoped to each.
        wanted = {
            r.spec["project"].address.name
            for r in resources
            if isinstance(r.spec.get("project"), Ref)
        }
        wanted.discard(getattr(cloud.access, "project_name", None))
        if wanted:
            for p in my_projects(cloud):
                if p.name in wanted and p.id != cloud.project_id:
                    scoped = _nova.project_cloud(cloud, p.id)
                    volumes.extend(scoped.block_storage.volumes())
        return volumes

    # --- writing --------------------------------------------------------------------
    @staticmethod
    def _cloud_for(cloud, project_id):
        return cloud if _nova.is_admin(cloud) else _nova.project_cloud(cloud, project_id)

    def create(self, cloud, args, ctx):
        project_id = args["project_id"]
        scoped = _nova.project_cloud(cloud, project_id)
        attrs: dict[str, Any] = {
            "name": args["name"],
            "size": args["size"],
            "metadata": args["metadata"],
        }
        if args.get("description"):
            attrs["description"] = args["description"]
        if args.get("volume_type"):
            attrs["volume_type"] = args["volume_type"]
        if args.get("image"):
            attrs["image_id"] = args["image"]
        volume = scoped.block_storage.create_volume(**attrs)
        return self.observe(wait_status(scoped, volume.id, "available"))

    def adopted(self, cloud, observed, args, ctx):
        scoped = _nova.project_cloud(cloud, args["project_id"])
        return self.observe(wait_status(scoped, observed.id, "available"))

    def update(self, cloud, observed, patch, ctx):
        acting = self._cloud_for(cloud, observed.fields["project_id"])
        bs = acting.block_storage
        if "size" in patch:
            bs.extend_volume(observed.id, patch["size"])
            wait_status(acting, observed.id, "available", "in-use", size=patch["size"])
        if "description" in patch:
            bs.update_volume(observed.id, description=patch["description"])
        if "bootable" in patch:
            bs.set_volume_bootable_status(observed.id, bool(patch["bootable"]))
        if "metadata" in patch:
            delta = patch["metadata"]
            if delta.set:
                bs.set_volume_metadata(observed.id, **dict(delta.set))
            if delta.unset:
                bs.delete_volume_metadata(observed.id, keys=list(delta.unset))

    def delete(self, cloud, observed, ctx):
        acting = self._cloud_for(cloud, observed.fields["project_id"])
        acting.block_storage.delete_volume(observed.id, ignore_missing=False)
        wait_status(acting, observed.id, None)
