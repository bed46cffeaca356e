"""images: Glance images, content-addressed.

Glance image data is immutable: a different source (by hash, see _glance.py) is a
replace (upload a new image, delete the old one), everything else is a PATCH. Adopts
images uploaded by openstacksdk/Ansible (owner_specified.openstack.sha256) without
uploading again. Marker for --prune: the property managed_by=openstack-bootstrap.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from bootstrap.drivers import _glance as g
from bootstrap.drivers.base import Driver
from bootstrap.errors import Diagnostic, ManifestError, ResourceFailed
from bootstrap.model import Address
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

DATA_FIELDS = ("source", "checksum")


class ImageDriver(Driver):
    kind = "images"
    key_fields = ("name",)
    references = {"project": "projects"}
    path_fields = {"source.file": "read"}
    updatable = frozenset(
        {"visibility", "min_disk", "min_ram", "properties", "tags", "protected", "project"}
    )
    immutable = frozenset({"source", "checksum", "disk_format", "container_format"})
    ownership = "property"
    position = 100
    admin_fields = {"visibility": ("public",)}
    required_for_create = frozenset({"source", "disk_format"})

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
        }
        return Observed(data["id"], fields, img, data.get(g.MARKER_PROP) == g.MARKER_VALUE)

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

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (observed.fields["name"],))

    # --- reading --------------------------------------------------------------------
    def read_all(self, cloud, resources):
        # visibility=all: community images are left out of the default listing.
        images = cloud.glance.images.list(page_size=1000, filters={"visibility": "all"})
        wanted = {r.spec["name"]: r for r in resources if not r.absent}
        hashes: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        out = []
        for img in images:
            obs = self.observe(img)
            resource = wanted.get(obs.fields["name"])
            if resource is not None:
                self._observe_content(obs, dict(img), resource.spec, hashes)
            out.append(obs)
        return out

    def _observe_content(
        self,
        obs: Observed,
        image: dict[str, Any],
        spec: dict[str, Any],
        hashes: dict[tuple[str, tuple[str, ...]], dict[str, str]],
    ) -> None:
        """Set observed `source`/`checksum` to the spec's values when the data matches."""
        source, checksum = spec.get("source"), spec.get("checksum")
        if source is None and checksum is None:
            return
        status = image.get("status")
        if status != "active":
            gone = f"(no data: the image is {status})"
            for f in DATA_FIELDS:
                if f in spec:
                    obs.fields[f] = gone
            return
        live = g.live_digests(image)

        def hash_file(algos: list[str]) -> dict[str, str]:
            key = (source["file"], tuple(algos))
            if key not in hashes:
                hashes[key] = g.file_digests(source["file"], algos)
            return hashes[key]

        if checksum is not None:
            want = checksum.lower()
            algo = g.checksum_algo(want)
            if algo in live:
                same = live[algo] == want
                shown = live[algo]
            elif source is not None and "file" in source and live:
                # Glance hashed with another algorithm: hash the file with both.
                other = next(iter(live))
                digests = hash_file(sorted({algo, other}))
                same = digests[algo] == want and digests[other] == live[other]
                shown = f"{other}:{g.short(live[other])}"
            else:
                same, shown = False, "(no " + algo + " recorded for the live image)"
            obs.fields["checksum"] = want if same else shown
            if source is not None:
                obs.fields["source"] = source if same else f"checksum {shown}"
            return
        if "url" in source:
            recorded = image.get(g.URL_PROP)
            same = recorded == g.url_digest(source["url"])
            obs.fields["source"] = (
                source
                if same
                else "data from another URL"
                if recorded
                else "data of unknown origin (give checksum to compare without downloading)"
            )
            return
        # A local file without checksum: hash it as Glance did.
        algo = next((a for a in live if a != "sha256"), None) or ("sha256" if live else None)
        if algo is None:
            obs.fields["source"] = "(Glance recorded no hash for the live image)"
            return
        digest = hash_file([algo])[algo]
        if digest == live[algo]:
            obs.fields["source"] = source
        else:
            obs.fields["source"] = (
                f"{algo}:{g.short(live[algo])} (the file has {algo}:{g.short(digest)})"
            )

    # --- writing --------------------------------------------------------------------
    def create(self, cloud, resource, desired, resolver):
        spec = resource.spec
        address = str(resource.address)
        source = spec.get("source")
        missing = [f for f in ("source", "disk_format") if f not in spec]
        if missing:
            raise ManifestError(
                [
                    Diagnostic(
                        "error",
                        f"cannot create image {spec['name']}: {' and '.join(missing)} "
                        "needed to upload it",
                        address=address,
                    )
                ]
            )
        kwargs: dict[str, Any] = dict(desired.get("properties") or {})
        kwargs.update(
            name=spec["name"],
            disk_format=desired["disk_format"],
            container_format=desired.get("container_format", "bare"),
        )
        for f in ("visibility", "min_disk", "min_ram", "protected", "tags"):
            if f in desired:
                kwargs[f] = desired[f]
        if "project" in desired:
            kwargs["owner"] = desired["project"]
        kwargs[g.MARKER_PROP] = g.MARKER_VALUE
        checksum = desired.get("checksum")
        if checksum and g.checksum_algo(checksum) == "sha256":
            kwargs[g.SDK_SHA256] = checksum  # lets later plans compare without hashing
        if "url" in source and not checksum:
            kwargs[g.URL_PROP] = g.url_digest(source["url"])
        glance = cloud.glance
        image = glance.images.create(**kwargs)
        try:
            computed = self._upload(cloud, image["id"], source)
            image = glance.images.get(image["id"])
            self._verify(dict(image), computed, checksum, address)
        except BaseException:
            # Never leave a queued or wrong image behind under the manifest's name.
            with contextlib.suppress(Exception):
                self._force_delete(glance, image["id"], bool(kwargs.get("protected")))
            raise
        return self.observe(image)

    @staticmethod
    def _upload(cloud: Any, image_id: str, source: dict[str, str]) -> dict[str, str]:
        with (
            g.open_source(source) as (stream, size, label),
            g.progress(cloud, label, size) as tick,
        ):
            reader = g.HashingReader(stream, ["sha512", "sha256", "md5"], tick)
            cloud.glance.images.upload(image_id, reader, image_size=size)
        return reader.digests()

    @staticmethod
    def _verify(
        image: dict[str, Any], computed: dict[str, str], checksum: str | None, address: str
    ) -> None:
        """The bytes Glance stored are the bytes read, and match the manifest's checksum."""
        if image.get("status") != "active":
            raise ResourceFailed(
                f"the upload left the image {image.get('status')}, not active", address
            )
        algo, value = image.get("os_hash_algo"), image.get("os_hash_value")
        if algo in computed and value:
            stored_ok = computed[algo] == str(value).lower()
        else:  # an unusual os_hash_algo: fall back on the legacy md5 checksum
            stored_ok = computed["md5"] == image.get("checksum")
        if not stored_ok:
            raise ResourceFailed(
                "Glance stored different data than was uploaded "
                f"({algo}: {g.short(str(value))} != {g.short(computed.get(algo) or '')}); "
                "the image was deleted",
                address,
            )
        if checksum:
            want_algo = g.checksum_algo(checksum)
            if computed[want_algo] != checksum.lower():
                raise ResourceFailed(
                    f"the source data does not match checksum: {want_algo} is "
                    f"{computed[want_algo]}, the manifest says {checksum.lower()}; "
                    "the image was deleted",
                    address,
                )

    def update(self, cloud, resource, observed, changed, resolver):
        kwargs: dict[str, Any] = {}
        for f in ("visibility", "min_disk", "min_ram", "protected", "tags"):
            if f in changed:
                kwargs[f] = changed[f]
        if "project" in changed:
            kwargs["owner"] = changed["project"]
        remove: list[str] = []
        if "properties" in changed:
            new = changed["properties"]
            old = observed.fields.get("properties") or {}
            kwargs.update({k: v for k, v in new.items() if old.get(k) != v})
            remove = [k for k in old if k not in new]
        cloud.glance.images.update(observed.id, remove_props=remove or None, **kwargs)

    def delete(self, cloud, observed):
        self._force_delete(cloud.glance, observed.id, bool(observed.fields.get("protected")))

    @staticmethod
    def _force_delete(glance: Any, image_id: str, protected: bool) -> None:
        # `protected` guards against accidents; a manifest saying absent (or a replace
        # allowed with --allow-destroy) is not one.
        if protected:
            glance.images.update(image_id, protected=False)
        glance.images.delete(image_id)
