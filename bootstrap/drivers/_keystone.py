"""Shared pieces of the Keystone (identity v3) drivers."""

from __future__ import annotations

from typing import Any

# Keystone keeps unknown attributes of most entities ("extra") and returns them on
# reads: an invisible place for the ownership marker that --prune relies on.
MARKER_ATTR = "managed_by"
MARKER_VALUE = "openstack-bootstrap"


def marker() -> dict[str, str]:
    return {MARKER_ATTR: MARKER_VALUE}


def attr(raw: Any, name: str, default: Any = None) -> Any:
    """An attribute as the API returned it.

    keystoneclient's Resource answers a missing attribute with a GET of the whole
    resource (lazy loading): one request per created object. Read the body instead.
    """
    info = getattr(raw, "_info", None)
    if isinstance(info, dict):
        return info.get(name, default)
    return getattr(raw, name, default)


def is_managed(raw: Any) -> bool:
    return attr(raw, MARKER_ATTR) == MARKER_VALUE


def text(value: Any) -> str:
    """Keystone returns "" or omits empty descriptions; compare both as ""."""
    return "" if value is None else str(value)


def ref_id(value: Any) -> Any:
    """Keystone links (role_assignments) carry {"id": ...}; pass ids through."""
    if isinstance(value, dict):
        return value.get("id")
    return value
