"""images: Glance images, content-addressed.

Glance image data is immutable: a different source (by hash, see _glance.py) is a
replace, create-before-destroy (the new image uploaded and verified, servers rebuilt onto
it, then the old one deleted), everything else is a PATCH.
Adopts images uploaded by openstacksdk/Ansible (owner_specified.openstack.sha256)
without uploading again. Marker for --prune: the property managed_by=openstack-bootstrap.

Reading records what Glance knows of the data (its digests, the recorded URL digest);
a local file is hashed by a `FileDigests` probe, and `comparable` decides at plan time.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

from bootstrap.drivers import _glance as g
from bootstrap.drivers.base import Driver
from bootstrap.errors import PlanError, ResourceFailed
from bootstrap.export import ALWAYS
from bootstrap.model import Address
from bootstrap.plan import Action, MapDelta, Observed, where
from bootstrap.probes import FileDigests

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

DATA_FIELDS = ("source", "checksum")
# Glance statuses of an image whose data never arrived.
DATALESS = frozenset({"queued", "saving", "killed", "uploading", "importing"})


class ImageDriver(Driver):
    kind = "images"
    clients = ("glance",)
    key_fields = ("name",)
    references = {"project": "projects"}
    path_fields = {"source.file": "read"}
    updatable = frozenset(
        {"visibility", "min_disk", "min_ram", "properties", "tags", "protected", "project"}
    )
    immutable = frozenset({"source", "checksum", "disk_format", "container_format"})
    map_fields = frozenset({"properties"})
    ownership = "property"
    project_field = "project"  # the owner
    position = 100
    # A new image is uploaded and verified before the old one is deleted: a failed upload
    # leaves the old image in place. Glance allows two images of one name meanwhile.
    create_before_destroy = True
    admin_fields = {"visibility": ("public",)}
    required_for_create = frozenset({"source", "disk_format"})
    # No `source`: the data's origin is not in the cloud (add it to create the image
    # elsewhere); what exists is matched by name and its attributes compared.
    export_fields = {
        "project": None,
        "visibility": "shared",
        "disk_format": ALWAYS,
        "container_format": "bare",
        "min_disk": 0,
        "min_ram": 0,
        "protected": False,
        "tags": [],
        "properties": {},
    }
    export_scope = {"project": "projects"}

    @classmethod
    def check(cls, c: Checker) -> None:
        url = c.get(("source", "url"))
        if isinstance(url, str) and url.startswith("http:") and "checksum" not in c.spec:
            c.warn(
                ("source", "url"),
                "image downloaded over plain http without a checksum; use https or add checksum",
            )

    # --- pure -----------------------------------------------------------------------
    def observe(self, img: Any) -> Observed:
        data = dict(img)
        fields = {
            "name": data.get("name"),
            "project": data.get("owner"),
            "visibility": data.get("visibility"),
            "min_disk": data.get("min_disk") or 0,
            "min_ram": data.get("min_ram") or 0,
            "protected": bool(data.get("protected")),
            "tags": sorted(set(data.get("tags") or [])),
            "properties": g.extra_properties(data),
            "disk_format": data.get("disk_format"),
            "container_format": data.get("container_format"),
            "status": data.get("status"),
            # What Glance (or the uploader) recorded about the data: facts, no verdict.
            "digests": g.live_digests(data),
            "url_digest": data.get(g.URL_PROP),
            "created_at": data.get("created_at"),
        }
        managed = data.get(g.MARKER_PROP) == g.MARKER_VALUE
        stack = data.get(g.STACK_PROP) if managed else None
        return Observed(data["id"], fields, img, managed, str(stack) if stack else None)

    def normalise(self, field_name: str, value: Any) -> Any:
        if field_name == "tags":
            return sorted(set(value or []))
        if field_name == "properties":
            return {k: g.prop_text(v) for k, v in (value or {}).items()}
        if field_name == "checksum" and isinstance(value, str):
            return value.lower()
        return value

    def replace_reason(self, fields: list[str]) -> str:
        if any(f in DATA_FIELDS for f in fields):
            return (
                "the image data differs from the source; Glance image data is immutable, "
                "so a new image is uploaded and the old one deleted"
            )
        return f"{', '.join(fields)} cannot change once an image has data"

    def match(self, resource, observed, resolver):
        """Glance allows one name twice, and a create-before-destroy replace makes it so
        for a moment (or, interrupted, until --prune): among this tool's images of the
        name, the newest active one is the manifest's; the rest are left-overs."""
        ident = self.identity(resource, resolver)
        if ident is None:
            return None
        found = where(observed, ident)
        active = [o for o in found if o.fields.get("status") == "active"]
        if len(found) > 1 and active and all(o.managed for o in found):
            return max(active, key=lambda o: str(o.fields.get("created_at") or ""))
        return super().match(resource, observed, resolver)

    def diff(self, resource, observed, resolver, facts=None):
        """An image without data (queued, saving, killed: a create that died between the
        record and the upload) is replaced without --allow-destroy: there is no data to
        lose, only an empty record to delete before uploading anew."""
        change = super().diff(resource, observed, resolver, facts)
        status = observed.fields.get("status") if observed is not None else None
        if change.action is Action.REPLACE and status in DATALESS:
            change.destructive = False
            change.reason = (
                f"the image has no data (it is {status}: an upload never finished); "
                "the empty record is deleted and the image uploaded"
            )
        return change

    def adoptable(self, observed: Observed) -> bool:
        # An image without data is what a failed upload leaves (and deletes): never adopt it.
        return observed.fields.get("status") == "active"

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (observed.fields["name"],))

    def mark_create(self, steps, stack):
        for step in steps:
            if step.verb == "create":
                step.args["properties"] = {**step.args["properties"], g.STACK_PROP: stack}

    def mark_patch(self, observed, stack):
        return {"properties": MapDelta({g.MARKER_PROP: g.MARKER_VALUE, g.STACK_PROP: stack})}

    # --- content identity: probes and the verdict (pure) -----------------------------
    @staticmethod
    def _file_algos(spec: dict[str, Any], live: dict[str, str]) -> tuple[str, ...] | None:
        """The algorithms to hash the source file with against an image with `live`
        digests; None when the file need not be read."""
        source, checksum = spec.get("source"), spec.get("checksum")
        if not isinstance(source, dict) or "file" not in source or not live:
            return None
        if checksum is not None:
            algo = g.checksum_algo(checksum.lower())
            if algo in live:
                return None
            # Glance hashed with another algorithm: hash the file with both.
            return tuple(sorted({algo, next(iter(live))}))
        return (next((a for a in live if a != "sha256"), None) or "sha256",)

    def probes(self, resource, candidates):
        spec = resource.spec
        out = []
        for obs in candidates:
            if obs.fields.get("name") != spec["name"] or obs.fields.get("status") != "active":
                continue
            algos = self._file_algos(spec, obs.fields.get("digests") or {})
            if algos:
                out.append(FileDigests(spec["source"]["file"], algos))
        return out

    def comparable(self, resource, observed, desired, facts):
        """`source`/`checksum` read as the spec's values when the data matches."""
        spec = resource.spec
        source, checksum = spec.get("source"), spec.get("checksum")
        if source is None and checksum is None:
            return observed
        fields = dict(observed.fields)
        status = fields.get("status")
        if status != "active":
            gone = f"(no data: the image is {status})"
            for f in DATA_FIELDS:
                if f in spec:
                    fields[f] = gone
            return dataclasses.replace(observed, fields=fields)
        live: dict[str, str] = fields.get("digests") or {}
        algos = self._file_algos(spec, live)
        digests: dict[str, str] = {}
        if algos:
            probe = FileDigests(source["file"], algos)
            if probe not in facts:
                raise PlanError(f"{resource.address}: {source['file']} was not hashed for the plan")
            digests = facts[probe]
        if checksum is not None:
            want = checksum.lower()
            algo = g.checksum_algo(want)
            if algo in live:
                same, shown = live[algo] == want, live[algo]
            elif digests:
                other = next(iter(live))
                same = digests[algo] == want and digests[other] == live[other]
                shown = f"{other}:{g.short(live[other])}"
            else:
                same, shown = False, "(no " + algo + " recorded for the live image)"
            fields["checksum"] = want if same else shown
            if source is not None:
                fields["source"] = source if same else f"checksum {shown}"
        elif "url" in source:
            recorded = fields.get("url_digest")
            fields["source"] = (
                source
                if recorded == g.url_digest(source["url"])
                else "data from another URL"
                if recorded
                else "data of unknown origin (give checksum to compare without downloading)"
            )
        elif not digests:
            fields["source"] = "(Glance recorded no hash for the live image)"
        else:
            # A local file without checksum: hashed as Glance did.
            (algo,) = digests
            if digests[algo] == live[algo]:
                fields["source"] = source
            else:
                fields["source"] = (
                    f"{algo}:{g.short(live[algo])} (the file has {algo}:{g.short(digests[algo])})"
                )
        return dataclasses.replace(observed, fields=fields)

    # --- reading --------------------------------------------------------------------
    def read_all(self, cloud, resources, known=None):
        # visibility=all: community images are left out of the default listing.
        images = cloud.glance.images.list(page_size=1000, filters={"visibility": "all"})
        return [self.observe(img) for img in images]

    # --- plan time: what the create sends (pure) -------------------------------------
    def create_args(self, resource, desired, resolver):
        spec = resource.spec
        checksum = desired.get("checksum")
        source = spec.get("source")
        properties: dict[str, Any] = dict(desired.get("properties") or {})
        properties[g.MARKER_PROP] = g.MARKER_VALUE
        if checksum and g.checksum_algo(checksum) == "sha256":
            properties[g.SDK_SHA256] = checksum  # lets later plans compare without hashing
        if isinstance(source, dict) and "url" in source and not checksum:
            properties[g.URL_PROP] = g.url_digest(source["url"])
        args: dict[str, Any] = {
            "name": spec["name"],
            "source": source,
            "checksum": checksum,
            "disk_format": desired.get("disk_format"),
            "container_format": desired.get("container_format", "bare"),
            "properties": properties,
        }
        for f in ("visibility", "min_disk", "min_ram", "protected", "tags"):
            if f in desired:
                args[f] = desired[f]
        if "project" in desired:
            args["owner"] = desired["project"]
        return args

    # --- writing --------------------------------------------------------------------
    def create(self, cloud, args, ctx):
        source, checksum = args.get("source"), args.get("checksum")
        kwargs: dict[str, Any] = dict(args.get("properties") or {})
        kwargs.update(
            name=args["name"],
            disk_format=args["disk_format"],
            container_format=args.get("container_format") or "bare",
        )
        for f in ("visibility", "min_disk", "min_ram", "protected", "tags", "owner"):
            if f in args:
                kwargs[f] = args[f]
        glance = cloud.glance
        image = glance.images.create(**kwargs)
        try:
            computed = self._upload(cloud, ctx, image["id"], source)
            image = glance.images.get(image["id"])
            self._verify(dict(image), computed, checksum)
        except BaseException:
            # Never leave a queued or wrong image behind under the manifest's name.
            with contextlib.suppress(Exception):
                self._force_delete(glance, image["id"], bool(kwargs.get("protected")))
            raise
        return self.observe(image)

    @staticmethod
    def _upload(cloud: Any, ctx: Any, image_id: str, source: dict[str, str]) -> dict[str, str]:
        with (
            g.open_source(source) as (stream, size, label),
            g.progress(ctx.progress, label, size) as tick,
        ):
            reader = g.HashingReader(stream, ["sha512", "sha256", "md5"], tick)
            cloud.glance.images.upload(image_id, reader, image_size=size)
        return reader.digests()

    @staticmethod
    def _verify(image: dict[str, Any], computed: dict[str, str], checksum: str | None) -> None:
        """The bytes Glance stored are the bytes read, and match the manifest's checksum."""
        if image.get("status") != "active":
            raise ResourceFailed(f"the upload left the image {image.get('status')}, not active")
        algo, value = image.get("os_hash_algo"), image.get("os_hash_value")
        if algo in computed and value:
            stored_ok = computed[algo] == str(value).lower()
        else:  # an unusual os_hash_algo: fall back on the legacy md5 checksum
            stored_ok = computed["md5"] == image.get("checksum")
        if not stored_ok:
            raise ResourceFailed(
                "Glance stored different data than was uploaded "
                f"({algo}: {g.short(str(value))} != {g.short(computed.get(algo) or '')}); "
                "the image was deleted"
            )
        if checksum:
            want_algo = g.checksum_algo(checksum)
            if computed[want_algo] != checksum.lower():
                raise ResourceFailed(
                    f"the source data does not match checksum: {want_algo} is "
                    f"{computed[want_algo]}, the manifest says {checksum.lower()}; "
                    "the image was deleted"
                )

    def update(self, cloud, observed, patch, ctx):
        kwargs: dict[str, Any] = {}
        for f in ("visibility", "min_disk", "min_ram", "protected", "tags"):
            if f in patch:
                kwargs[f] = patch[f]
        if "project" in patch:
            kwargs["owner"] = patch["project"]
        remove: list[str] = []
        if "properties" in patch:
            delta = patch["properties"]
            kwargs.update(delta.set)
            remove = list(delta.unset)
        cloud.glance.images.update(observed.id, remove_props=remove or None, **kwargs)

    def delete(self, cloud, observed, ctx):
        self._force_delete(cloud.glance, observed.id, bool(observed.fields.get("protected")))

    @staticmethod
    def _force_delete(glance: Any, image_id: str, protected: bool) -> None:
        # `protected` guards against accidents; a manifest saying absent (or a replace
        # allowed with --allow-destroy) is not one.
        if protected:
            glance.images.update(image_id, protected=False)
        glance.images.delete(image_id)
