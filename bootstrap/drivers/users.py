"""users: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class UserDriver(Driver):
    kind = "users"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "default_project": "projects"}
    updatable = frozenset({"email", "description", "enabled", "default_project", "password"})
    immutable = frozenset()
    secret_fields = frozenset({"password"})
    warn_inline_secret = frozenset({"password"})
