"""Glue between manifest, cloud, plan and apply. The CLI and tests call these.

Reading (bootstrap/read.py) is the only I/O of a plan and it goes through the drivers'
`read_all`: one list call per kind (and scope), run in parallel, joined in memory by
`make_plan`; a kind whose read builds on another's list (`Driver.reads_after`) is handed
it, never lists it again.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootstrap import gates
from bootstrap.cloud import Cloud, import_libraries
from bootstrap.drivers.base import Driver, registry
from bootstrap.errors import (
    Diagnostic,
    ManifestError,
    PlanError,
    PreflightError,
    StalePlan,
)
from bootstrap.model import DEFAULT_DOMAIN, Address, Manifest
from bootstrap.ownership import STACK_PATTERN, valid_stack
from bootstrap.plan import Action, Observed, Plan, Resolver, make_plan
from bootstrap.probes import Facts
from bootstrap.read import (  # noqa: F401  (engine.read_state and co. are used by benches)
    MAX_PARALLEL_READS,
    builtin_ids,
    clients_of,
    kinds_to_read,
    observe,
    prefetch,
    prefetchable,
    probes_of,
    read_order,
    read_state,
)
from bootstrap.timings import Timings

if TYPE_CHECKING:
    import networkx as nx

    from bootstrap.apply import ApplyContext, ApplyResult
    from bootstrap.interrupt import Interrupt
    from bootstrap.manifest.lang import LoadOptions
    from bootstrap.target import Targeting


@dataclass
class Loaded:
    manifest: Manifest
    graph: nx.DiGraph
    targets: Targeting | None = None  # --target: the part of the manifest kept, and why


@contextmanager
def gc_paused() -> Iterator[None]:
    """Loading and diffing allocate hundreds of thousands of objects and free few: the
    cyclic collector's passes over an ever larger heap cost as much as the work itself
    (more than half of load at 10,000 resources). Paused for them, resumed after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(paths: list[str], options: LoadOptions | None = None) -> Loaded:
    """Load, validate and graph the manifest; every problem at once or nothing.
    `options`: environment layers and variable values (the command line's)."""
    return graphed(*load_manifest(paths, options))


def load_manifest(
    paths: list[str], options: LoadOptions | None = None
) -> tuple[Manifest, list[Diagnostic]]:
    """The manifest and its warnings, without the dependency graph (`graphed` adds it);
    a ManifestError for any error."""
    from bootstrap import manifest as manifest_mod

    with gc_paused():
        manifest, diagnostics = manifest_mod.load(paths, options=options)
    if manifest is None or any(d.is_error for d in diagnostics):
        raise ManifestError(diagnostics)
    return manifest, diagnostics


def graphed(manifest: Manifest, diagnostics: Sequence[Diagnostic] = ()) -> Loaded:
    """The manifest with its dependency graph; a ManifestError (with the manifest's
    warnings) for a cycle or anything else the graph finds."""
    from bootstrap import graph as graph_mod

    with gc_paused():
        g, more = graph_mod.build(manifest)
    if any(d.is_error for d in more):
        raise ManifestError([*diagnostics, *more])
    return Loaded(manifest, g)


def target(loaded: Loaded, patterns: Sequence[str], prune: bool = False) -> Loaded:
    """--target: keep those resources and what they depend on (see bootstrap/target.py);
    refused with --prune and for an address the manifest lacks, before connecting."""
    from bootstrap.target import restrict

    if not patterns:
        return loaded
    manifest, g, targeting = restrict(loaded.manifest, loaded.graph, patterns, prune)
    return Loaded(manifest, g, targeting)


def instantiate_drivers() -> dict[str, Driver]:
    return {kind: cls() for kind, cls in registry().items()}


def stack_of(manifest: Manifest, stack: str | None, prune: bool) -> str | None:
    """The plan's stack: --stack, else the manifest's. --prune without one is refused
    here, before the cloud is read."""
    stack = stack or manifest.stack
    if stack is not None and not valid_stack(stack):
        raise PlanError(f"invalid stack name {stack!r}: it must match {STACK_PATTERN}")
    if prune and stack is None:
        raise PlanError(
            "--prune needs a stack: name it with `stack: NAME` in the manifest or --stack "
            "NAME. Only resources marked with that stack are pruned. Nothing was read."
        )
    return stack


def plan(
    cloud: Cloud,
    loaded: Loaded,
    prune: bool = False,
    drivers: dict[str, Driver] | None = None,
    stack: str | None = None,
    adopt: bool = False,
    timings: Timings | None = None,
) -> tuple[Plan, Resolver]:
    """Read, probe, decide. `stack` overrides the manifest's; `adopt` takes over what
    another stack marked (see bootstrap/ownership.py). `timings` gets the phases
    (connect, clients, reads and each kind's read, probes, diff)."""
    stack = stack_of(loaded.manifest, stack, prune)
    drivers = drivers or instantiate_drivers()
    timings = timings or Timings()
    start_requests = cloud.counter.total
    t0 = time.monotonic()
    # One clear error for bad credentials or a dead cloud, not one per kind read.
    with timings.phase("connect"):
        cloud.authenticate()
    observed, facts = observe(cloud, loaded.manifest, drivers, prune, timings)
    result, resolver = decide(loaded, drivers, observed, facts, prune, stack, adopt, timings)
    result.requests = cloud.counter.total - start_requests
    result.read_seconds = time.monotonic() - t0
    return result, resolver


def plan_files(
    connect: Callable[[], Cloud],
    paths: list[str],
    options: LoadOptions | None = None,
    *,
    prune: bool = False,
    stack: str | None = None,
    adopt: bool = False,
    targets: Sequence[str] = (),
    timings: Timings | None = None,
    drivers: dict[str, Driver] | None = None,
) -> tuple[Loaded, Cloud, Plan, Resolver]:
    """`load` then `plan` for the command line, with the waits overlapped: the
    connection (the client libraries' imports, clouds.yaml, the token) is made while the
    manifest loads, and so are the lists that do not depend on it (`Driver.reads_alone`,
    of the sections the files' text names); the other reads are made while the
    dependency graph is built. Nothing is written either way, and errors keep their
    order: the manifest's first (whatever the cloud answered meanwhile), then the
    connection's, then the reads'.
    `connect` makes the (unauthenticated) Cloud; `targets` are --target's patterns."""
    from bootstrap.manifest.loader import sections_named

    timings = timings or Timings()
    drivers = drivers or instantiate_drivers()
    t0 = time.monotonic()
    # One worker: the reads queue behind the connection they need.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bootstrap-read")
    sent = threading.Event()  # set once the lists are asked for (or the connection failed)
    # --prune refuses a manifest without a stack before any read; --target may read less.
    early_kinds = [] if prune or targets else prefetchable(drivers, sections_named(paths, options))
    early_pool: list[ThreadPoolExecutor] = []

    def read_early() -> dict[str, Future[list[Observed]]]:
        futures, pool = prefetch(connecting.result(), drivers, early_kinds, timings)
        early_pool.append(pool)
        return futures

    def read(manifest: Manifest) -> tuple[dict[str, list[Observed]], Facts]:
        try:
            cloud = connecting.result()
            prefetched = early.result() if early is not None else None
        except BaseException:
            sent.set()
            raise
        return observe(cloud, manifest, drivers, prune, timings, sent, prefetched)

    early: Future[dict[str, Future[list[Observed]]]] | None = None
    with timings.phase("libraries"):
        import_libraries()
    # Not a context manager: a manifest error must return without waiting for threads.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(OVERLAP_SWITCH_INTERVAL)
    try:
        connecting = background.submit(_connected, connect, timings)
        if early_kinds:
            early = background.submit(read_early)
        with timings.phase("load"):
            manifest, diagnostics = load_manifest(paths, options)
        if targets:  # --target keeps what the graph says the targets need: graph first
            with timings.phase("graph"):
                loaded = target(graphed(manifest, diagnostics), targets, prune)
            stack = stack_of(loaded.manifest, stack, prune)
            reading = background.submit(read, loaded.manifest)
        else:
            stack = stack_of(manifest, stack, prune)  # refused before anything is read
            reading = background.submit(read, manifest)
            # The graph (networkx's import, mostly) is built while the cloud answers the
            # reads, not while the connection's own imports still compete for the
            # interpreter; a connection that hangs delays it by GRAPH_WAIT at most.
            sent.wait(GRAPH_WAIT)
            with timings.phase("graph"):
                loaded = graphed(manifest, diagnostics)
        cloud = connecting.result()
        observed, facts = reading.result()
    finally:
        # A manifest error returns at once: a connection still under way is left to end.
        background.shutdown(wait=False, cancel_futures=True)
        for pool in early_pool:  # an early list this manifest did not need is not waited for
            pool.shutdown(wait=False, cancel_futures=True)
        sys.setswitchinterval(interval)
    result, resolver = decide(loaded, drivers, observed, facts, prune, stack, adopt, timings)
    result.requests = cloud.counter.total
    result.read_seconds = time.monotonic() - t0
    return loaded, cloud, result, resolver


def _connected(connect: Callable[[], Cloud], timings: Timings) -> Cloud:
    with timings.phase("connect"):
        cloud = connect()
        # One clear error for bad credentials or a dead cloud, not one per kind read.
        cloud.authenticate()
    return cloud


GRAPH_WAIT = 3.0  # seconds
# While the manifest loads on the main thread, the connection and the reads run in
# others, and each of their socket reads hands the interpreter back: with Python's 5 ms
# switch interval each waited up to 5 ms to get it again (a 1,000-user page is dozens of
# reads). 1 ms: 10,000-resource no-op plan about 0.3 s shorter, load no slower.
OVERLAP_SWITCH_INTERVAL = 0.001


def decide(
    loaded: Loaded,
    drivers: dict[str, Driver],
    observed: dict[str, list[Observed]],
    facts: Facts,
    prune: bool,
    stack: str | None,
    adopt: bool,
    timings: Timings,
) -> tuple[Plan, Resolver]:
    """The plan from the manifest and the facts: pure, no I/O."""
    with timings.phase("diff"), gc_paused():
        result, resolver = make_plan(
            loaded.manifest,
            loaded.graph,
            drivers,
            observed,
            builtin_ids(observed),
            prune,
            facts,
            stack=stack,
            adopt=adopt,
        )
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        raise PlanError(
            "the plan cannot be made:\n" + "\n".join("  " + d.format() for d in errors)
        )
    result.targets = loaded.targets
    result.timings = timings.as_dict()
    return result, resolver


def preflight(cloud: Cloud, plan_: Plan, held: Collection[Address] = ()) -> None:
    """Fail before the first write when the credentials obviously cannot do the plan
    (the part of it that runs: held-back changes are not checked)."""
    if "admin" in cloud.roles:
        return
    drivers = registry()
    changes = [
        c
        for c in plan_.changes
        if c.is_change and c.address.kind in drivers and c.address not in held
    ]
    needs_admin = sorted({c.address.kind for c in changes if drivers[c.address.kind].needs_admin})
    roles = f"the token in use has roles: {', '.join(sorted(cloud.roles)) or 'none'}"
    if needs_admin:
        raise PreflightError(
            "the plan changes " + ", ".join(needs_admin) + " which needs the admin role; "
            f"{roles}. Nothing was changed."
        )
    admin_fields: list[str] = []
    for c in changes:
        if c.resource is None or c.action is Action.DELETE:
            continue
        # A create (or the create half of a replace) sends every field; an update only
        # the changed ones.
        fresh = c.action in (Action.CREATE, Action.REPLACE)
        changed = None if fresh else {d.field for d in c.fields}
        paths = drivers[c.address.kind].admin_fields_in(c.resource.spec, changed)
        admin_fields += [f"{c.address}.{p}" for p in paths]
    if admin_fields:
        raise PreflightError(
            "the plan sets " + ", ".join(admin_fields) + ", which the default policy "
            f"reserves to the admin role; {roles}. Nothing was changed."
        )


AllowDestroy = bool | Sequence[str] | None


def hold(plan_: Plan, allow_destroy: AllowDestroy) -> dict[Address, str]:
    """What apply will hold back under --allow-destroy (all, none, or address patterns);
    marked on the plan's changes so that the plan shown says so."""
    return gates.hold(plan_, gates.Permission.of(allow_destroy))


def check_apply(cloud: Cloud, plan_: Plan, allow_destroy: AllowDestroy) -> dict[Address, str]:
    """Every check before the first write; returns what is held back (not run)."""
    held = hold(plan_, allow_destroy)
    preflight(cloud, plan_, held)
    return held


def apply(
    cloud: Cloud,
    plan_: Plan,
    resolver: Resolver,
    *,
    allow_destroy: AllowDestroy = False,
    parallelism: int | None = None,
    on_event: Any = None,
    progress: Any = None,
    drivers: dict[str, Driver] | None = None,
    ctx: ApplyContext | None = None,
    interrupt: Interrupt | None = None,
) -> ApplyResult:
    """THE way to apply a plan (CLI, tests, benchmarks): checks, then the plan's steps.

    Every check runs before the first write: the credentials' roles. What needs
    --allow-destroy and lacks it is held back with what depends on it (gates.py); every
    other change is applied. `ctx` may be given to look at what the apply shared
    afterwards (the server poller). `interrupt` (set on SIGINT/SIGTERM) stops it from
    starting anything new. `parallelism` None (the default): an adaptive limit per service.
    """
    from bootstrap.apply import Applier, ApplyContext

    held = check_apply(cloud, plan_, allow_destroy)
    drivers = drivers or instantiate_drivers()
    # Built once before the workers share them (a plan imports only what its reads use).
    changed = {c.address.kind for c in plan_.changes if c.is_change}
    cloud.prepare(clients_of(drivers, sorted(changed), writes=True))
    ctx = ctx or ApplyContext(progress=progress, retry=cloud.retry)
    applier = Applier(cloud, drivers, resolver, ctx)
    return applier.apply(plan_, parallelism, on_event, held, interrupt)


def plan_signature(plan_: Plan) -> list[dict[str, Any]]:
    """What must be identical between a saved plan and a fresh one for it to apply."""
    return [
        {
            "address": c["address"],
            "action": c["action"],
            "observed": c["observed"],
            "fields": c["fields"],
        }
        for c in plan_.to_json()["changes"]
    ]


def check_saved_plan(saved: dict[str, Any], fresh: Plan) -> None:
    fresh_sig = plan_signature(fresh)
    saved_sig = [
        {k: c[k] for k in ("address", "action", "observed", "fields")}
        for c in saved.get("changes", [])
    ]
    if json.dumps(fresh_sig, sort_keys=True) != json.dumps(saved_sig, sort_keys=True):
        saved_by = {c["address"]: c for c in saved_sig}
        fresh_by = {c["address"]: c for c in fresh_sig}
        differing = sorted(
            a for a in set(saved_by) | set(fresh_by) if saved_by.get(a) != fresh_by.get(a)
        )
        raise StalePlan(
            "the cloud (or the manifest) changed since the plan was saved; nothing was "
            "applied. Differences: "
            + ", ".join(differing[:10])
            + (f" and {len(differing) - 10} more" if len(differing) > 10 else "")
            + ". Run plan again."
        )


def export(
    cloud: Cloud,
    scope: Any,
    stack: str | None = None,
    drivers: dict[str, Driver] | None = None,
) -> Any:
    """Read what plan reads, then write it as a manifest (bootstrap/export.py).

    The lists first; then, for the kinds whose `read_all` reads more only for what a
    manifest names (members, flavor access, other users' keypairs), those kinds again
    with the drivers' stand-ins. The result is planned offline against the same facts:
    anything but 0 changes is reported as a warning (the round trip is the check).
    """
    from bootstrap import export as ex

    if stack is not None and not valid_stack(stack):
        raise PlanError(f"invalid stack name {stack!r}: it must match {STACK_PATTERN}")
    drivers = drivers or instantiate_drivers()
    unknown = sorted(set(scope.kinds) - set(drivers))
    if unknown:
        raise ex.ExportError(f"unknown kind(s): {', '.join(unknown)}; kinds: {', '.join(drivers)}")
    start_requests = cloud.counter.total
    t0 = time.monotonic()
    cloud.authenticate()
    kinds = [k for k, d in drivers.items() if d.export_fields is not None or k in ex.NAME_KINDS]
    observed = read_state(cloud, Manifest(), drivers, kinds)
    default_id = builtin_ids(observed)[Address("domains", (DEFAULT_DOMAIN,))]
    names = ex.Names(observed, default_id)
    selected: dict[str, list[Observed]] = {}
    for link in ex.select(observed, drivers, scope):
        obs = names.get(link.kind, link.id)
        if obs is not None:
            selected.setdefault(link.kind, []).append(obs)
    stand_ins = Manifest()
    for kind in kinds:
        for i, r in enumerate(drivers[kind].export_reads(selected, names)):
            stand_ins.resources[Address(kind, (str(i),))] = r
    if len(stand_ins):
        observed.update(
            read_state(cloud, stand_ins, drivers, sorted({r.kind for r in stand_ins}))
        )
    result = ex.build(observed, drivers, scope, default_id, stack)
    result.requests = cloud.counter.total - start_requests
    result.read_seconds = time.monotonic() - t0
    result.warnings += verify_export(result, drivers, observed, stack)
    return result


def verify_export(
    result: Any,
    drivers: dict[str, Driver],
    observed: dict[str, list[Observed]],
    stack: str | None = None,
) -> list[str]:
    """Plan the export against the facts it was made from (no I/O): its changes, as
    warnings. Secrets get stand-in values: they are set only on create."""
    import os
    import tempfile

    from bootstrap import graph as graph_mod
    from bootstrap import manifest as manifest_mod

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "export.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(result.to_yaml())
        manifest, diagnostics = manifest_mod.load([path], {v: "-" for v in result.env})
    if manifest is not None:
        g, more = graph_mod.build(manifest)
        diagnostics += more
    errors = [d.format().replace(path, "the export") for d in diagnostics if d.is_error]
    if errors:
        return ["the export does not load as a manifest: " + "; ".join(errors[:5])]
    the_plan, _ = make_plan(manifest, g, drivers, observed, builtin_ids(observed), stack=stack)
    changed = [c for c in the_plan.changes if c.is_change]
    return [
        f"planning the export would change {c.address} ({c.action.value}: "
        f"{', '.join(d.field for d in c.fields) or c.reason})"
        for c in changed
    ] + [d.format().replace(path, "the export") for d in the_plan.diagnostics if d.is_error]
