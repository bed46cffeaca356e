"""The formats the manifest schema checks for real, and the validator using them."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bootstrap.schema.bundle import load_bundle

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, FormatChecker


# Each returns True or raises ValueError saying what is wrong; non-strings pass (the
# schema's `type` speaks for them).
def _cidr(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if "/" not in value:
        raise ValueError("a CIDR needs a prefix length, e.g. 10.0.0.0/24")
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            net = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"host bits are set; did you mean {net}?") from None
        raise
    return True


def _ip(value: object) -> bool:
    if isinstance(value, str):
        ipaddress.ip_address(value)
    return True


def _url(value: object) -> bool:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected http:// or https:// followed by a host")
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    return True


def _email(value: object) -> bool:
    if isinstance(value, str):
        local, at, domain = value.partition("@")
        if not (local and at and "." in domain) or any(c.isspace() for c in value):
            raise ValueError("expected an address like name@example.org")
    return True


FORMATS = {"cidr": _cidr, "ip-address": _ip, "http-url": _url, "email": _email}


def format_checker() -> FormatChecker:
    """Formats checked for real (draft 2020-12 only annotates them by default)."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name, raises=ValueError)(check)
    return checker


FORMAT_NAMES = {
    "cidr": "CIDR",
    "ip-address": "IP address",
    "http-url": "URL",
    "email": "e-mail address",
}


def validator(bundle: dict[str, Any] | None = None) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(bundle or load_bundle(), format_checker=format_checker())


def fast_validator(bundle: dict[str, Any] | None = None) -> Any:
    """The same schema and formats compiled by jsonschema-rs: a valid manifest of 1,000
    resources is checked in milliseconds instead of a second. It only says valid or not;
    an invalid file is checked again by `validator` for located, readable errors.
    None when jsonschema-rs is not installed (the pure-Python check alone then)."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a declared dependency
        return None

    def conforms(check: Any) -> Any:
        def ok(value: Any) -> bool:
            try:
                return bool(check(value))
            except ValueError:
                return False

        return ok

    return jsonschema_rs.Draft202012Validator(
        bundle or load_bundle(),
        validate_formats=True,
        formats={name: conforms(check) for name, check in FORMATS.items()},
    )
