"""The plan is data: typed changes with field diffs and a reason.

`make_plan` is a pure function of the manifest, its graph and the observed state; the
same `Driver.diff` decides here and again, with the ids known by then, during apply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bootstrap.errors import Diagnostic
from bootstrap.model import MASK, Address, Manifest, Resource, Secret

if TYPE_CHECKING:
    import networkx as nx

    from bootstrap.drivers.base import Driver
    from bootstrap.probes import Facts
    from bootstrap.target import Targeting

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
    # The stack its marker names; None when unmarked or marked without a stack (made by
    # versions before stacks). See bootstrap/ownership.py.
    stack: str | None = None

    def fingerprint(self) -> str:
        """A digest of the observed fields: a saved plan compares it to refuse stale plans."""
        fields = self.fields
        # Most kinds' fields are plain values already: _jsonable would copy them unchanged
        # (it was most of the JSON plan's time at 10,000 resources).
        if not all(type(v) in _PLAIN for v in fields.values()):
            fields = _jsonable(fields)
        blob = json.dumps({"id": self.id, "fields": fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _listing(items: list[Observed] | None) -> Listing:
    return items if isinstance(items, Listing) else Listing.of(items or [])


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

    def where(self, ident: dict[str, Any]) -> list[Observed]:
        """The observed whose fields equal `ident`'s values. One index per set of field
        names, built on first use: matching N resources against M is O(N + M), not N x M.
        """
        names = tuple(sorted(ident))
        try:
            wanted = tuple(ident[n] for n in names)
            hash(wanted)
        except TypeError:  # an unhashable value: compare one by one
            return [o for o in self if all(o.fields.get(k) == v for k, v in ident.items())]
        indexes = self.__dict__.setdefault("_indexes", {})
        built = indexes.get(names)
        if built is None or built[0] != len(self):  # (re)built when the list grew
            index: dict[tuple[Any, ...], list[Observed]] = {}
            for o in self:
                key = tuple(o.fields.get(n) for n in names)
                try:
                    index.setdefault(key, []).append(o)
                except TypeError:  # an unhashable observed value never equals a hashable one
                    continue
            built = indexes[names] = (len(self), index)
        return list(built[1].get(wanted, ()))


def where(observed: list[Observed], ident: dict[str, Any]) -> list[Observed]:
    """`Listing.where` for any list of observed resources."""
    listing = observed if isinstance(observed, Listing) else Listing.of(observed)
    return listing.where(ident)


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
    # Why apply will not run it under the given --allow-destroy (see gates.py); "" = runs.
    held_back: str = ""

    @property
    def is_change(self) -> bool:
        return self.action is not Action.NOOP

    @property
    def creates_first(self) -> bool:
        """A create-before-destroy replace: its steps create the new resource first and
        end with the delete of the old one (apply runs that delete as its own node)."""
        return (
            self.action is Action.REPLACE
            and bool(self.steps)
            and self.steps[0].verb == "create"
            and self.steps[-1].verb == "delete"
        )

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
            "held_back": bool(self.held_back),
            "held_back_reason": self.held_back or None,
        }


@dataclass
class Plan:
    changes: list[Change]
    graph: nx.DiGraph
    diagnostics: list[Diagnostic] = field(default_factory=list)
    requests: int = 0
    read_seconds: float = 0.0
    # Seconds per phase (bootstrap/timings.py); empty when not measured.
    timings: dict[str, float] = field(default_factory=dict)
    stack: str | None = None  # the stack the plan acts for (its markers, its --prune)
    # --target: what was asked for and what was pulled in; None = the whole manifest.
    targets: Targeting | None = None

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
            "stack": self.stack,
            "summary": {
                **self.counts(),
                "destructive": sum(1 for c in self.changes if c.destructive),
                "held_back": sum(1 for c in self.changes if c.held_back),
            },
            "requests": self.requests,
            "targets": self.targets.to_json() if self.targets is not None else None,
            **({"timings": self.timings} if self.timings else {}),
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

    def replacing(self, address: Address) -> bool:
        """This plan deletes the live `address` and creates it anew."""
        return address in self._pending and address in self._ids

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


_PLAIN = frozenset({str, int, float, bool, type(None)})


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
    stack: str | None = None,
    adopt: bool = False,
) -> tuple[Plan, Resolver]:
    """Match every resource to live state and diff it. Pure: no I/O happens here.

    `stack` names whose markers this plan writes and whose resources `prune` may delete;
    `adopt` lets it take over resources another stack marked (see bootstrap/ownership.py).
    """
    import networkx as nx

    from bootstrap import lookups, ownership

    resolver = Resolver(builtin_ids, manifest.resources)
    resolver.know(lookups.observed_names(observed))
    changes: list[Change] = []
    matched: dict[str, set[str]] = {}
    listings: dict[str, Listing] = {}  # each kind's, indexed once for all its matches
    # Topological order so a resource's references are matched before it is.
    diagnostics: list[Diagnostic] = []
    for address in nx.topological_sort(graph):
        resource = manifest.resources[address]
        driver = drivers[resource.kind]
        if resource.kind not in listings:
            listings[resource.kind] = _listing(observed.get(resource.kind))
        candidates = listings[resource.kind]
        live = driver.match(resource, candidates, resolver)
        if live is None and not resource.managed:
            # Missing matters only when something that must exist builds on it.
            needed = any(
                not manifest.resources[d].absent and manifest.resources[d].managed
                for d in graph.successors(address)
            )
            used = needed or lookups.used_by_present(manifest, graph, address)
            live = lookups.look_up(
                driver, resource, candidates, resolver, diagnostics, needed, used
            )
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
        change = ownership.claim(driver, change, live, stack, adopt, diagnostics)
        changes.append(change)
    owner = ownership.Owner(drivers, observed, stack)
    if prune:
        changes.extend(owner.prune_changes(matched, {c.address for c in changes}))
    graph = owner.plan_project_contents(changes, graph, matched, diagnostics)
    from bootstrap.gates import prevent_destroy_errors  # gates imports this module

    diagnostics.extend(prevent_destroy_errors(changes))
    unmarked = ownership.unmarked_warning(drivers, changes, stack)
    if unmarked is not None:
        diagnostics.append(unmarked)
    the_plan = Plan(changes=changes, graph=graph, diagnostics=diagnostics, stack=stack)
    return the_plan, resolver
