"""endpoints: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class EndpointDriver(Driver):
    kind = "endpoints"
    key_fields = ("service", "interface", "region")
    references = {"service": "services", "region": "regions"}
    updatable = frozenset({"url", "enabled"})
    immutable = frozenset()
