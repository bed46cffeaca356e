"""keypairs: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class KeypairDriver(Driver):
    kind = "keypairs"
    key_fields = ("user", "name")
    references = {"user": "users"}
    path_fields = {"public_key_file": "read"}
    updatable = frozenset()
    immutable = frozenset({"public_key", "public_key_file", "type"})
