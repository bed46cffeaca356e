"""The in-memory manifest: resources keyed by natural-key addresses.

A Resource's `spec` holds exactly what the manifest says (defaults are NOT filled in:
a field left out is a field the tool does not manage). References to other resources
are `Ref` objects, secrets are `Secret` objects whose text form is always masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from bootstrap.errors import Source

DEFAULT_DOMAIN = "Default"
MASK = "(sensitive)"


class Address(NamedTuple):
    """A resource's identity in the manifest: its kind and natural key.

    `str(Address("projects", ("acme",)))` is `projects.acme`; key parts are joined by `/`
    (`servers.acme/web-1`, `projects.other-domain/acme`). A named tuple, hashed and
    compared in C: building the graph of 10,000 resources hashes addresses half a
    million times.
    """

    kind: str
    key: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.kind}.{'/'.join(self.key)}"

    @property
    def name(self) -> str:
        return self.key[-1]


@dataclass(frozen=True)
class Ref:
    """A reference to another resource; the engine turns it into the live id."""

    address: Address

    def __str__(self) -> str:
        return str(self.address)


class Secret:
    """A secret value. Every text form is masked; only `reveal()` gives the value."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str = "inline"):
        self._value = value
        self.origin = origin  # "inline", "env:NAME", "file:PATH" -- never the value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.origin})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __reduce__(self):  # never pickle a secret by accident
        raise TypeError("secrets are not serialisable")


@dataclass(frozen=True)
class Lifecycle:
    """A resource's `lifecycle:` block: how the plan may treat it.

    prevent_destroy: a plan that deletes, replaces, rebuilds or resizes it is an error,
    even with --allow-destroy. ignore_changes: fields never compared (drift in them is
    not planned; a create still sends them). create_before_destroy: a replace creates the
    new resource, lets dependents switch to it, then deletes the old one; None: the
    kind's default.
    """

    prevent_destroy: bool = False
    ignore_changes: frozenset[str] = frozenset()
    create_before_destroy: bool | None = None


@dataclass
class Resource:
    address: Address
    spec: dict[str, Any]
    state: str = "present"  # "present" | "absent"
    source: Source | None = None
    # Where each spec field was written (for located plan/apply diagnostics).
    field_sources: dict[str, Source] = field(default_factory=dict)
    # False: only looked up (must exist), never created, changed or deleted.
    managed: bool = True
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    @property
    def kind(self) -> str:
        return self.address.kind

    @property
    def name(self) -> str:
        return self.address.name

    @property
    def absent(self) -> bool:
        return self.state == "absent"

    def refs(self) -> Iterator[Ref]:
        yield from iter_refs(self.spec)


def iter_refs(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_refs(v)


def ref_paths(value: Any, path: str = "") -> Iterator[tuple[str, Ref]]:
    """(spec path, Ref) for every reference in a spec: "networks[0].network"."""
    if isinstance(value, Ref):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from ref_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from ref_paths(v, f"{path}[{i}]")


def iter_secrets(value: Any) -> Iterator[Secret]:
    if isinstance(value, Secret):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_secrets(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_secrets(v)


@dataclass
class Manifest:
    resources: dict[Address, Resource] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    # The stack the manifest names (`stack:`): its markers, what its --prune may delete.
    stack: str | None = None
    # Resources that always exist and need no declaration (the Default domain).
    builtins: frozenset[Address] = frozenset({Address("domains", (DEFAULT_DOMAIN,))})

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources.values())

    def __len__(self) -> int:
        return len(self.resources)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.kind == kind]

    def get(self, address: Address) -> Resource | None:
        return self.resources.get(address)

    def secrets(self) -> list[Secret]:
        return [s for r in self.resources.values() for s in iter_secrets(r.spec)]


def mask_secrets(text: str, secrets: list[Secret]) -> str:
    """Replace any secret value that slipped into a text (e.g. an API error body)."""
    for s in secrets:
        value = s.reveal()
        if value and len(value) >= 3:
            text = text.replace(value, MASK)
    return text

