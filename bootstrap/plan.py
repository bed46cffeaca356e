"""The plan is data: typed changes with field diffs and a reason.

`make_plan` is a pure function of the manifest, its graph and the observed state; the
same `Driver.diff` decides here and again, with the ids known by then, during apply.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import networkx as nx

from bootstrap.errors import Diagnostic
from bootstrap.model import MASK, Address, Manifest, Resource, Secret

if TYPE_CHECKING:
    from bootstrap.drivers.base import Driver
    from bootstrap.probes import Facts

PLAN_FORMAT_VERSION = 1


class Action(StrEnum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"

    @property
    def symbol(self) -> str:
        return {"no-op": " ", "create": "+", "update": "~", "replace": "-/+", "delete": "-"}[
            self.value
        ]


@dataclass(frozen=True)
class Pending:
    """An id only known once apply has created (or re-created) `address`.

    Plans carry these in the arguments of their steps; apply fills them in from the ids
    it learns as it goes. Nothing else about a step is decided at apply.
    """

    address: Address

    def __repr__(self) -> str:
        return f"(known after apply: {self.address})"

    __str__ = __repr__


def is_pending(value: Any) -> bool:
    return isinstance(value, Pending)


def contains_pending(value: Any) -> bool:
    if isinstance(value, Pending):
        return True
    if isinstance(value, dict):
        return any(contains_pending(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(contains_pending(v) for v in value)
    if isinstance(value, (SetDelta, MapDelta)):
        return contains_pending(value.to_args())
    return False


def pending_in(value: Any) -> list[Address]:
    """The addresses whose ids `value` waits for."""
    if isinstance(value, Pending):
        return [value.address]
    if isinstance(value, dict):
        return [a for v in value.values() for a in pending_in(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [a for v in value for a in pending_in(v)]
    if isinstance(value, (SetDelta, MapDelta)):
        return pending_in(value.to_args())
    return []


@dataclass(frozen=True)
class SetDelta:
    """Membership changes of a set-valued field: what to add and what to remove.

    The one reconciler for rules, members, interfaces, flavor access, security groups on
    a server: plan computes it from observed and desired, apply only executes it.
    """

    add: tuple[Any, ...] = ()
    remove: tuple[Any, ...] = ()

    def to_args(self) -> dict[str, Any]:
        return {"add": list(self.add), "remove": list(self.remove)}

    def fill(self, ids: Callable[[Any], Any]) -> SetDelta:
        return SetDelta(tuple(ids(a) for a in self.add), tuple(ids(r) for r in self.remove))


@dataclass(frozen=True)
class MapDelta:
    """Key changes of a map-valued field (metadata, extra specs, properties)."""

    set: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()

    def to_args(self) -> dict[str, Any]:
        return {"set": dict(self.set), "unset": list(self.unset)}

    def fill(self, ids: Callable[[Any], Any]) -> MapDelta:
        return MapDelta(ids(self.set), self.unset)


def set_delta(have: Iterable[Any], want: Iterable[Any]) -> SetDelta:
    """Items of `want` missing from `have`, and items of `have` not in `want` (order kept)."""
    have_l, want_l = list(have or []), list(want or [])
    return SetDelta(
        tuple(w for w in want_l if w not in have_l), tuple(h for h in have_l if h not in want_l)
    )


def map_delta(have: dict[str, Any] | None, want: dict[str, Any] | None) -> MapDelta:
    have, want = dict(have or {}), dict(want or {})
    return MapDelta(
        {k: v for k, v in want.items() if have.get(k) != v},
        tuple(k for k in have if k not in want),
    )


@dataclass
class Step:
    """One operation apply runs, with API-ready arguments.

    verb: "create" (args for the driver's create), "update" (a patch for the driver's
    update; values may be SetDelta/MapDelta), "delete". A step's `args` may hold Pending
    ids; apply substitutes them and calls the driver. `target` names the resource the
    step acts on when it is only known after an earlier step (the follow-up update after
    a create).
    """

    verb: str
    args: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "args": _jsonable(self.args)}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Observed:
    """A live resource, its fields normalised to the manifest's names and shapes."""

    id: str
    fields: dict[str, Any]
    raw: Any = None
    managed: bool = False  # carries the tool's ownership marker

    def fingerprint(self) -> str:
        """A digest of the observed fields: a saved plan compares it to refuse stale plans."""
        blob = json.dumps({"id": self.id, "fields": _jsonable(self.fields)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Listing(list):
    """What one read_all returned, and whether it is all there is.

    `partial`: the user could list only what it may see (a non-admin's own projects), so
    not finding something proves nothing.
    """

    partial: bool = False

    @classmethod
    def of(cls, items: Iterable[Observed], partial: bool = False) -> Listing:
        out = cls(items)
        out.partial = partial
        return out


@dataclass
class FieldDiff:
    field: str
    before: Any
    after: Any
    sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "before": MASK if self.sensitive else _jsonable(self.before),
            "after": MASK if self.sensitive else _jsonable(self.after),
            "sensitive": self.sensitive,
        }


@dataclass
class Change:
    address: Address
    action: Action
    fields: list[FieldDiff] = field(default_factory=list)
    reason: str = ""
    resource: Resource | None = None  # None for a pruned resource the manifest no longer has
    observed: Observed | None = None
    # Data is lost (a server rebuilt, an image re-uploaded, anything deleted).
    destructive: bool = False
    # What apply runs, in order: the plan is the program.
    steps: list[Step] = field(default_factory=list)

    @property
    def is_change(self) -> bool:
        return self.action is not Action.NOOP

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "kind": self.address.kind,
            "action": self.action.value,
            "reason": self.reason or None,
            "destructive": self.destructive,
            "id": self.observed.id if self.observed else None,
            "observed": self.observed.fingerprint() if self.observed else None,
            "fields": [f.to_json() for f in self.fields],
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass
class Plan:
    changes: list[Change]
    graph: nx.DiGraph
    diagnostics: list[Diagnostic] = field(default_factory=list)
    requests: int = 0
    read_seconds: float = 0.0

    @property
    def has_changes(self) -> bool:
        return any(c.is_change for c in self.changes)

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for c in self.changes:
            out[c.action.value] += 1
        return out

    def by_address(self) -> dict[Address, Change]:
        return {c.address: c for c in self.changes}

    def to_json(self, manifest_files: Iterable[str] = ()) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT_VERSION,
            "manifest_files": list(manifest_files),
            "summary": self.counts(),
            "requests": self.requests,
            "changes": [c.to_json() for c in self.changes],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


class Resolver:
    """Address -> live id, for turning Refs into the ids the APIs want.

    `id()` is what a step's arguments use: the live id, or Pending when the resource is
    created or replaced by this plan. `live()` is what matching uses: the id of what
    exists now (a replaced resource's old id), or None.
    """

    def __init__(
        self,
        ids: dict[Address, str] | None = None,
        resources: dict[Address, Resource] | None = None,
    ):
        self._ids: dict[Address, str] = dict(ids or {})
        self._names: dict[str, Address] = {v: k for k, v in self._ids.items()}
        self._pending: set[Address] = set()
        # Live resources outside the manifest, by id, for display only (see `know`).
        self._observed: dict[str, Address] = {}
        # The manifest's resources, for a step that needs a referenced resource's spec
        # (a floating IP writes its server's known_hosts file).
        self._resources = resources or {}

    def resource(self, address: Address) -> Resource | None:
        return self._resources.get(address)

    def set(self, address: Address, live_id: str) -> None:
        self._ids[address] = live_id
        self._names[live_id] = address

    def will_change(self, address: Address) -> None:
        """This plan creates or replaces `address`: its new id is known only at apply."""
        self._pending.add(address)

    def id(self, address: Address) -> str | Pending:
        if address in self._pending or address not in self._ids:
            return Pending(address)
        return self._ids[address]

    def forget(self, address: Address) -> None:
        live_id = self._ids.pop(address, None)
        if live_id is not None:
            self._names.pop(live_id, None)

    def live(self, address: Address) -> str | None:
        return self._ids.get(address)

    def address_of(self, live_id: Any) -> Address | None:
        if not isinstance(live_id, str):
            return None
        return self._names.get(live_id) or self._observed.get(live_id)

    def know(self, names: dict[str, Address]) -> None:
        """Addresses of what was read but is not in the manifest (a group's member who is
        not declared, a rule's remote group): plans show them instead of raw ids."""
        self._observed.update(names)

    def ids(self) -> dict[Address, str]:
        return dict(self._ids)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Pending):
        return repr(value)
    if isinstance(value, (SetDelta, MapDelta)):
        return _jsonable(value.to_args())
    if isinstance(value, Address):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


CREATING = (Action.CREATE, Action.REPLACE)


def make_plan(
    manifest: Manifest,
    graph: nx.DiGraph,
    drivers: dict[str, Driver],
    observed: dict[str, list[Observed]],
    builtin_ids: dict[Address, str] | None = None,
    prune: bool = False,
    facts: Facts | None = None,
) -> tuple[Plan, Resolver]:
    """Match every resource to live state and diff it. Pure: no I/O happens here."""
    resolver = Resolver(builtin_ids, manifest.resources)
    resolver.know(observed_names(observed))
    changes: list[Change] = []
    matched: dict[str, set[str]] = {}
    # Topological order so a resource's references are matched before it is.
    diagnostics: list[Diagnostic] = []
    for address in nx.topological_sort(graph):
        resource = manifest.resources[address]
        driver = drivers[resource.kind]
        candidates = observed.get(resource.kind, [])
        live = driver.match(resource, candidates, resolver)
        if live is None and not resource.managed:
            # Missing matters only when something that must exist builds on it.
            needed = any(
                not manifest.resources[d].absent and manifest.resources[d].managed
                for d in graph.successors(address)
            )
            used = needed or _used_by_present(manifest, graph, address)
            live = _look_up(driver, resource, candidates, resolver, diagnostics, needed, used)
        if live is not None:
            resolver.set(address, live.id)
            matched.setdefault(resource.kind, set()).add(live.id)
        if not resource.managed:
            changes.append(
                Change(
                    address,
                    Action.NOOP,
                    reason="looked up (managed: false)",
                    resource=resource,
                    observed=live,
                )
            )
            continue
        change = driver.diff(resource, live, resolver, facts or {})
        missing = driver.missing_for_create(resource) if change.action in CREATING else []
        if missing:
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"cannot be created without {' and '.join(missing)} "
                    "(it does not exist in the cloud)",
                    address=str(address),
                    source=resource.source,
                )
            )
        if change.action in (Action.CREATE, Action.REPLACE):
            # What refers to it gets the new id at apply: a Pending in its steps.
            resolver.will_change(address)
        changes.append(change)
    if prune:
        changes.extend(_prune_changes(drivers, observed, matched))
    return Plan(changes=changes, graph=graph, diagnostics=diagnostics), resolver


def _look_up(
    driver: Driver,
    resource: Resource,
    candidates: list[Observed],
    resolver: Resolver,
    diagnostics: list[Diagnostic],
    needed: bool = True,
    used: bool = True,
) -> Observed | None:
    """Find a `managed: false` resource the natural key alone did not find.

    Its project or domain may be invisible to the user (a non-admin cannot read the admin
    project that owns the external network): then the name alone must single it out.
    """
    where = str(resource.address)
    if driver.identity(resource, resolver) is None:
        found = [o for o in candidates if o.fields.get("name") == resource.spec.get("name")]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"{len(found)} visible {resource.kind} are named "
                    f"{resource.spec.get('name')!r}; qualify the lookup",
                    address=where,
                    source=resource.source,
                )
            )
            return None
    if getattr(candidates, "partial", False) or not needed:
        diagnostics.append(
            Diagnostic(
                "warning",
                _lookup_missing(getattr(candidates, "partial", False), used),
                address=where,
                source=resource.source,
            )
        )
        return None
    diagnostics.append(
        Diagnostic(
            "error",
            "managed: false resource does not exist in the cloud (it is looked up, never created)",
            address=where,
            source=resource.source,
        )
    )
    return None


def _project_names(observed: dict[str, list[Observed]]) -> dict[str, str]:
    """Project id -> name, for names that single out one project among those read."""
    projects = observed.get("projects", [])
    counts: dict[str, int] = {}
    for o in projects:
        name = o.fields.get("name")
        if isinstance(name, str):
            counts[name] = counts.get(name, 0) + 1
    return {
        o.id: o.fields["name"]
        for o in projects
        if isinstance(o.fields.get("name"), str) and counts[o.fields["name"]] == 1
    }


def readable(address: Address, observed: dict[str, list[Observed]]) -> Address:
    """An address of a live resource with project ids in its key shown as project names
    (networks.acme/acme-net rather than networks.1459adf5.../acme-net), when known."""
    names = _project_names(observed)
    return Address(address.kind, tuple(names.get(part, part) for part in address.key))


_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)


def observed_names(observed: dict[str, list[Observed]]) -> dict[str, Address]:
    """Every named live resource read, by id: its kind and name (with its project's name
    for project-owned kinds). Pure: only what the reads returned. Only uuid-shaped ids:
    a short id ("default", a flavor's "1") could be mistaken for an ordinary value."""
    projects = _project_names(observed)
    out: dict[str, Address] = {}
    for kind, items in observed.items():
        for o in items:
            name = o.fields.get("name")
            if not isinstance(name, str) or not name or not _UUID.match(str(o.id)):
                continue
            owner = o.fields.get("project_id")
            key = (str(projects.get(owner, owner)), name) if isinstance(owner, str) else (name,)
            out.setdefault(o.id, Address(kind, key))
    return out


def _used_by_present(manifest: Manifest, graph: nx.DiGraph, address: Address) -> bool:
    """Does anything present build on this lookup, directly or through other lookups
    (the admin project of the looked-up external network a router uses)?"""
    return any(
        d in manifest.resources and not manifest.resources[d].absent
        for d in nx.descendants(graph, address)
    )


def _lookup_missing(partial: bool, used: bool) -> str:
    """The warning for a lookup not found where that proves nothing or harms nothing."""
    if partial:
        # The list showed only what this user may see: not finding it proves nothing.
        return "managed: false resource not visible to this user" + (
            "; assumed to exist" if used else ""
        )
    if used:
        return "managed: false resource not found; only other lookups refer to it"
    return "managed: false resource not found; nothing present depends on it"


def _prune_changes(
    drivers: dict[str, Driver],
    observed: dict[str, list[Observed]],
    matched: dict[str, set[str]],
) -> list[Change]:
    from bootstrap.drivers.base import kinds

    out: list[Change] = []
    # Dependents before what they depend on: walk kinds in reverse manifest order.
    for kind in reversed(kinds()):
        driver = drivers.get(kind)
        if driver is None or driver.ownership is None:
            continue
        for obs in observed.get(kind, []):
            if obs.managed and obs.id not in matched.get(kind, set()):
                out.append(
                    Change(
                        address=readable(driver.address_of_observed(obs), observed),
                        action=Action.DELETE,
                        reason="created by openstack-bootstrap and no longer in the manifest"
                        " (--prune)",
                        observed=obs,
                        destructive=True,
                        steps=[Step("delete", {"id": obs.id})],
                    )
                )
    return out
