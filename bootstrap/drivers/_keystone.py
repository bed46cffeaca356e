"""Shared pieces of the Keystone (identity v3) drivers."""

from __future__ import annotations

from typing import Any

# Keystone keeps unknown attributes of most entities ("extra") and returns them on
# reads: an invisible place for the ownership marker that --prune relies on.
MARKER_ATTR = "managed_by"
MARKER_VALUE = "openstack-bootstrap"


def marker() -> dict[str, str]:
    return {MARKER_ATTR: MARKER_VALUE}


def is_managed(raw: Any) -> bool:
    return getattr(raw, MARKER_ATTR, None) == MARKER_VALUE


def text(value: Any) -> str:
    """Keystone returns "" or omits empty descriptions; compare both as ""."""
    return "" if value is None else str(value)


def ref_id(value: Any) -> Any:
    """Keystone links (role_assignments) carry {"id": ...}; pass ids through."""
    if isinstance(value, dict):
        return value.get("id")
    return value
