"""The driver contract: one class per resource kind, registered when it is defined.

A driver declares, as data, what the manifest loader needs to know about its kind
(natural key, references, secret fields) and what the planner needs (updatable and
immutable fields). Its I/O is confined to `read_all`, `create`, `update` and `delete`;
everything else is a pure function of desired and observed state.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bootstrap.model import DEFAULT_DOMAIN, Address, Ref

_REGISTRY: dict[str, type[Driver]] = {}


def registry() -> dict[str, type[Driver]]:
    """Every registered driver class by kind (imports all driver modules first)."""
    import bootstrap.drivers  # noqa: F401  (imports every kind module)

    return dict(_REGISTRY)


def driver_for(kind: str) -> type[Driver]:
    return registry()[kind]


class Driver:
    # --- declarations used by the manifest loader --------------------------------------
    kind: ClassVar[str]
    # Spec fields whose values form the natural key, outermost first (the name last).
    # A `domain` key part equal to the Default domain is left out of the address.
    key_fields: ClassVar[tuple[str, ...]] = ("name",)
    # Reference fields: a path into the spec -> the kind it names. Paths: "domain",
    # "members[]" (each list item), "rules[].remote_group", "external_gateway.network".
    references: ClassVar[dict[str, str]] = {}
    # Fields whose value may be a secret ({env: X} / {file: Y}); values are masked.
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    # Secret fields that should not be written inline (a warning when they are).
    warn_inline_secret: ClassVar[frozenset[str]] = frozenset()

    # --- declarations used by the planner --------------------------------------------
    updatable: ClassVar[frozenset[str]] = frozenset()
    immutable: ClassVar[frozenset[str]] = frozenset()
    # Fields never compared (write-only, or only used on create).
    write_only: ClassVar[frozenset[str]] = frozenset()
    # How the tool marks what it created (for --prune): "extra" (a keystone attribute),
    # "tags", "description", or None when the kind has no place for a marker.
    ownership: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
                raise TypeError(f"two drivers for kind {cls.kind!r}")
            _REGISTRY[cls.kind] = cls

    @classmethod
    def natural_key(cls, spec: dict[str, Any]) -> tuple[str, ...]:
        """The key tuple of a spec whose references are already resolved to Refs."""
        parts: list[str] = []
        for f in cls.key_fields:
            value = spec.get(f)
            if isinstance(value, Ref):
                if value.address.kind == "domains":
                    if value.address.name == DEFAULT_DOMAIN:
                        continue
                    parts.append(value.address.name)
                else:
                    parts.extend(value.address.key)
            elif value is None:
                if f == "domain":
                    continue
                parts.append("")
            else:
                parts.append(str(value))
        return tuple(parts)

    @classmethod
    def address(cls, spec: dict[str, Any]) -> Address:
        return Address(cls.kind, cls.natural_key(spec))
