"""In-memory fakes of the project's own interfaces (drivers and the cloud handle).

They keep the real drivers' declarations and pure logic (identity, desired, diff, the
steps' arguments) and replace only the I/O methods: a create stores what its arguments
would make on a real cloud (not the manifest's values), an update applies the planned
patch, and every call is recorded so tests can check the protocol.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import networkx as nx

from bootstrap.drivers import _glance, _keystone, _neutron
from bootstrap.drivers.base import registry
from bootstrap.errors import CloudError
from bootstrap.model import Manifest, Resource, Secret
from bootstrap.plan import Listing, MapDelta, Observed, SetDelta
from bootstrap.retry import RetryPolicy


class Counter:
    def __init__(self):
        self.total = 0
        self.writes = 0


class MemoryCloud:
    """Live state as {kind: {id: fields}}; `fail` maps (op, name) to an exception."""

    def __init__(self):
        self.store: dict[str, dict[str, dict]] = defaultdict(dict)
        self.calls: list[tuple[str, str, str]] = []
        self.fail: dict[tuple[str, str], list[BaseException]] = {}
        self.lose_response: set[str] = set()  # names whose create succeeds but "times out"
        self.counter = Counter()
        self.retry = RetryPolicy()
        self.roles = {"admin"}
        self.partial: set[str] = set()  # kinds listed as a non-admin sees them
        self._ids = itertools.count(1)

    def authenticate(self) -> None:
        pass

    def prepare(self, clients: list[str]) -> None:
        pass  # no client libraries: the store is the cloud

    def new_id(self) -> str:
        return f"id-{next(self._ids)}"

    def _maybe_fail(self, op: str, name: str) -> None:
        errors = self.fail.get((op, name))
        if errors:
            raise errors.pop(0)

    def record(self, op: str, kind: str, name: str) -> None:
        self.calls.append((op, kind, name))
        self.counter.total += 1
        if op != "list":
            self.counter.writes += 1

    def writes(self) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] != "list"]


# How a create argument shows up when the resource is read back (Keystone's names).
READ_BACK = {"domain": "domain_id"}


def stored_fields(args: dict) -> dict:
    """What a real cloud would return after a create with these arguments: write-only
    secrets are never returned, references come back under their id attribute."""
    return {READ_BACK.get(k, k): v for k, v in args.items() if not isinstance(v, Secret)}


def apply_patch(fields: dict, patch: dict) -> None:
    """What a real cloud holds after an update: values replaced, deltas applied."""
    for k, v in patch.items():
        if isinstance(v, Secret):
            continue
        if isinstance(v, SetDelta):
            have = [x for x in fields.get(k) or [] if x not in v.remove]
            fields[k] = sorted(have + [a for a in v.add if a not in have], key=str)
        elif isinstance(v, MapDelta):
            have = {x: y for x, y in (fields.get(k) or {}).items() if x not in v.unset}
            fields[k] = {**have, **v.set}
        else:
            fields[k] = v


def marks(kind: str, fields: dict) -> tuple[bool, str | None]:
    """(managed, stack) as the real driver reads them from what the cloud stores: the
    Keystone attributes, the Neutron/Nova tags, the Glance properties."""
    ownership = registry()[kind].ownership
    if ownership == "tags":
        tags = fields.get("tags") or []
        return _neutron.MARKER_TAG in tags, _neutron.stack_in(tags)
    if ownership == "property":
        props = fields.get("properties") or {}
        managed = props.get(_glance.MARKER_PROP) == _glance.MARKER_VALUE
        return managed, (props.get(_glance.STACK_PROP) if managed else None)
    managed = bool(fields.get("_managed")) or (
        fields.get(_keystone.MARKER_ATTR) == _keystone.MARKER_VALUE
    )
    stack = fields.get(_keystone.STACK_ATTR) if ownership == "extra" and managed else None
    return managed, stack


def read_back(kind: str, stored: dict) -> dict:
    """The fields a read shows: bookkeeping and marker properties left out (as observe)."""
    fields = {k: v for k, v in stored.items() if k != "_managed"}
    if registry()[kind].ownership == "property" and "properties" in fields:
        fields["properties"] = {
            k: v
            for k, v in fields["properties"].items()
            if k not in (_glance.MARKER_PROP, _glance.STACK_PROP)
        }
    return fields


def fake_driver_class(kind: str):
    real = registry()[kind]

    class Fake(real, register=False):
        def read_all(self, cloud, resources, known=None):
            cloud.record("list", kind, "*")
            out = []
            for i, f in cloud.store[kind].items():
                managed, stack = marks(kind, f)
                out.append(Observed(i, read_back(kind, f), managed=managed, stack=stack))
            return Listing.of(out, partial=kind in cloud.partial)

        def create(self, cloud, args, ctx):
            name = f"{kind}.{args['name']}" if "name" in args else kind
            cloud.record("create", kind, name)
            cloud._maybe_fail("create", name)
            live_id = cloud.new_id()
            stored = stored_fields(args)
            if real.ownership in ("extra", None):
                # Keystone's create call adds the marker itself (with_marker); Neutron,
                # Nova and Glance keep the tags and properties the steps give.
                stored["_managed"] = True
            cloud.store[kind][live_id] = stored
            if name in cloud.lose_response:
                cloud.lose_response.discard(name)
                raise CloudError("connection reset", name, None, retryable=True)
            managed, stack = marks(kind, stored)
            return Observed(live_id, read_back(kind, stored), managed=managed, stack=stack)

        def update(self, cloud, observed, patch, ctx):
            name = f"{kind}.{observed.fields.get('name')}"
            cloud.record("update", kind, name)
            cloud._maybe_fail("update", name)
            apply_patch(cloud.store[kind][observed.id], patch)

        def delete(self, cloud, observed, ctx):
            cloud.record("delete", kind, observed.id)
            cloud._maybe_fail("delete", observed.id)
            cloud.store[kind].pop(observed.id)

    Fake.__name__ = f"Fake{real.__name__}"
    return Fake


def fake_drivers() -> dict:
    return {kind: fake_driver_class(kind)() for kind in registry()}


def resource(kind: str, spec: dict, state: str = "present") -> Resource:
    cls = registry()[kind]
    return Resource(cls.address(spec), spec, state)


def manifest_of(*resources: Resource) -> Manifest:
    return Manifest(resources={r.address: r for r in resources})


def graph_of(manifest: Manifest) -> nx.DiGraph:
    g = nx.DiGraph()
    for r in manifest:
        g.add_node(r.address, resource=r)
    for r in manifest:
        for ref in r.refs():
            if ref.address in manifest.resources:
                g.add_edge(ref.address, r.address)
    return g
