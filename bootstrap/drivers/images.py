"""images: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class ImageDriver(Driver):
    kind = "images"
    key_fields = ("name",)
    references = {"project": "projects"}
    path_fields = {"source.file": "read"}
    updatable = frozenset({"visibility", "min_disk", "min_ram", "properties", "tags", "protected"})
    immutable = frozenset({"source", "checksum", "disk_format", "container_format"})
