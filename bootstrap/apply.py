"""Apply a plan: a topological walk with bounded parallelism.

A failed node skips everything that depends on it; independent branches go on; the
root cause is reported once. Each node re-runs the driver's diff with the ids known by
then, so apply and plan cannot disagree about what a change is.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from bootstrap.cloud import classify, with_retries
from bootstrap.errors import (
    BootstrapError,
    CloudError,
    DependencyFailed,
    DestructiveChangeRefused,
    NotFound,
)
from bootstrap.model import KINDS, Address
from bootstrap.plan import Action, Change, Observed, Plan, Resolver

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud
    from bootstrap.drivers.base import Driver

# Outcomes of one node.
CREATED, UPDATED, REPLACED, DELETED, UNCHANGED, FAILED, SKIPPED = (
    "created",
    "updated",
    "replaced",
    "deleted",
    "unchanged",
    "failed",
    "skipped",
)


@dataclass
class NodeResult:
    address: Address
    outcome: str
    error: BaseException | None = None
    detail: str = ""


@dataclass
class ApplyResult:
    results: dict[Address, NodeResult] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results.values() if r.outcome == outcome)

    @property
    def failed(self) -> list[NodeResult]:
        return [r for r in self.results.values() if r.outcome == FAILED]

    @property
    def ok(self) -> bool:
        return not any(r.outcome in (FAILED, SKIPPED) for r in self.results.values())

    def summary(self) -> dict[str, int]:
        return {
            o: self.count(o)
            for o in (CREATED, UPDATED, REPLACED, DELETED, UNCHANGED, FAILED, SKIPPED)
        }


Event = Callable[[Change, str, BaseException | None], None]


def check_destructive(plan: Plan, allow_destroy: bool) -> None:
    """Replaces that lose data need --allow-destroy; refused before the first write."""
    if allow_destroy:
        return
    refused = [
        c for c in plan.changes if c.destructive and c.action in (Action.REPLACE, Action.UPDATE)
    ]
    if refused:
        raise DestructiveChangeRefused(
            [str(c.address) for c in refused], [c.reason for c in refused]
        )


def execution_graph(plan: Plan) -> nx.DiGraph:
    """Edges say "runs before". Creates/updates follow references; deletes run reversed."""
    changes = plan.by_address()
    g = nx.DiGraph()
    g.add_nodes_from(changes)
    deleting = {a for a, c in changes.items() if c.action is Action.DELETE}
    for dep, dependent in plan.graph.edges:
        if dep not in changes or dependent not in changes:
            continue
        if dependent in deleting and dep in deleting:
            g.add_edge(dependent, dep)  # delete the user of a thing before the thing
        elif dependent not in deleting and dep not in deleting:
            g.add_edge(dep, dependent)
    # Pruned resources have no manifest edges: order them by kind, dependents first.
    pruned = [c for c in plan.changes if c.resource is None]
    rank = {k: i for i, k in enumerate(KINDS)}
    for a in pruned:
        for b in pruned:
            if rank[a.address.kind] > rank[b.address.kind]:
                g.add_edge(a.address, b.address)
    return g


def walk(
    graph: nx.DiGraph,
    run: Callable[[Address], str],
    parallelism: int,
    on_done: Callable[[NodeResult], None] | None = None,
) -> dict[Address, NodeResult]:
    """Run every node once all its predecessors succeeded; skip descendants of failures."""
    results: dict[Address, NodeResult] = {}
    lock = threading.Lock()
    waiting = {n: set(graph.predecessors(n)) for n in graph.nodes}
    blocked_by: dict[Address, Address] = {}

    def finish(res: NodeResult) -> None:
        with lock:
            results[res.address] = res
        if on_done:
            on_done(res)

    def skip_descendants(root: Address) -> None:
        for d in nx.descendants(graph, root):
            if d not in results and d not in blocked_by:
                blocked_by[d] = root

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        running: dict[Future[str], Address] = {}

        def submit_ready() -> None:
            for n in list(waiting):
                if waiting[n]:
                    continue
                del waiting[n]
                if n in blocked_by:
                    root = blocked_by[n]
                    finish(NodeResult(n, SKIPPED, DependencyFailed(str(n), str(root))))
                    release(n, failed=True)
                    continue
                running[pool.submit(run, n)] = n

        def release(n: Address, failed: bool) -> None:
            if failed:
                skip_descendants(blocked_by.get(n, n))
            for s in graph.successors(n):
                if s in waiting:
                    waiting[s].discard(n)

        submit_ready()
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                n = running.pop(fut)
                try:
                    outcome = fut.result()
                    finish(NodeResult(n, outcome))
                    release(n, failed=False)
                except BaseException as exc:  # noqa: BLE001 - recorded, dependents skipped
                    finish(NodeResult(n, FAILED, exc))
                    release(n, failed=True)
            submit_ready()
    return results


class Applier:
    """Executes the changes of one plan against one cloud."""

    def __init__(
        self,
        cloud: Cloud,
        drivers: dict[str, Driver],
        resolver: Resolver,
        allow_destroy: bool = False,
        reread: Callable[[Any], list[Observed]] | None = None,
    ):
        self.cloud = cloud
        self.drivers = drivers
        self.resolver = resolver
        self.allow_destroy = allow_destroy
        self._lock = threading.Lock()
        # Re-reads one kind's live state (to find a create whose response was lost).
        self.reread = reread or (lambda res: self.drivers[res.kind].read_all(self.cloud, [res]))

    def apply(self, plan: Plan, parallelism: int = 8, on_event: Event | None = None) -> ApplyResult:
        check_destructive(plan, self.allow_destroy)
        changes = plan.by_address()
        graph = execution_graph(plan)

        def run(address: Address) -> str:
            change = changes[address]
            if on_event and change.is_change:
                on_event(change, "start", None)
            return self.execute(change)

        def done(res: NodeResult) -> None:
            change = changes[res.address]
            if on_event and (change.is_change or res.outcome in (FAILED, SKIPPED)):
                on_event(change, res.outcome, res.error)

        return ApplyResult(walk(graph, run, parallelism, done))

    # ---- one node ------------------------------------------------------------------
    def execute(self, change: Change) -> str:
        address = str(change.address)
        driver = self.drivers[change.address.kind]
        try:
            if change.action is Action.DELETE:
                self._delete(driver, change.observed, address)
                self.resolver.forget(change.address)
                return DELETED
            resource = change.resource
            assert resource is not None
            if not resource.managed:
                return UNCHANGED  # looked up only: never written
            observed = change.observed
            # The same decision function as the plan, now with the ids created since.
            now = driver.diff(resource, observed, self.resolver)
            if now.action is Action.NOOP:
                return UNCHANGED
            if now.action is Action.CREATE:
                obs = self._create(driver, resource, address)
                self.resolver.set(change.address, obs.id)
                return CREATED
            if now.destructive and not self.allow_destroy and now.action is not Action.DELETE:
                raise DestructiveChangeRefused([address], [now.reason])
            if now.action is Action.REPLACE:
                assert observed is not None
                self._delete(driver, observed, address)
                self.resolver.forget(change.address)
                obs = self._create(driver, resource, address)
                self.resolver.set(change.address, obs.id)
                return REPLACED
            assert observed is not None
            self._update(driver, resource, observed, now, address)
            return UPDATED
        except BootstrapError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client error joins the tree
            raise classify(exc, address) from exc

    def _update(
        self, driver: Driver, resource: Any, observed: Observed, now: Change, address: str
    ) -> None:
        """Send the differing fields' desired values (ids as known now) in place."""
        desired = driver.desired(resource, self.resolver)
        changed = {f.field: desired[f.field] for f in now.fields}
        with_retries(
            lambda: driver.update(self.cloud, resource, observed, changed, self.resolver),
            address=address,
        )

    def _delete(self, driver: Driver, observed: Observed | None, address: str) -> None:
        if observed is None:
            return
        # Already gone is the goal reached.
        with contextlib.suppress(NotFound):
            with_retries(lambda: driver.delete(self.cloud, observed), address=address)

    def _complete(
        self, driver: Driver, resource: Any, found: Observed, address: str
    ) -> Observed:
        """An adopted resource may be half made (a create of several steps that failed
        midway): the same diff decides what is still missing, and it is done now."""
        now = driver.diff(resource, found, self.resolver)
        if now.action is Action.UPDATE and not now.destructive:
            self._update(driver, resource, found, now, address)
        # Anything else (e.g. a server still building) is left to the next plan, which
        # shows it: destroying what was just made is never done implicitly.
        return found

    def _create(self, driver: Driver, resource: Any, address: str, attempts: int = 3) -> Observed:
        """Create once; after a transient failure, look before creating again."""
        last: CloudError | None = None
        for _ in range(attempts):
            if last is not None:
                found = driver.match(resource, self.reread(resource), self.resolver)
                if found is not None:
                    # The lost create did happen: adopt, never duplicate.
                    return self._complete(driver, resource, found, address)
            desired = driver.desired(resource, self.resolver)
            try:
                return driver.create(self.cloud, resource, desired, self.resolver)
            except Exception as exc:  # noqa: BLE001
                err = classify(exc, address)
                if err.status == 409:
                    # Someone (or a lost earlier attempt) made it meanwhile: adopt it.
                    found = driver.match(resource, self.reread(resource), self.resolver)
                    if found is not None:
                        return self._complete(driver, resource, found, address)
                if not err.retryable:
                    raise err from exc
                last = err
        assert last is not None
        raise last


def root_causes(result: ApplyResult) -> list[NodeResult]:
    """Failures that are not consequences of other failures (each reported once)."""
    return [r for r in result.results.values() if r.outcome == FAILED]


def skipped_by(result: ApplyResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in result.results.values():
        if r.outcome == SKIPPED and isinstance(r.error, DependencyFailed):
            out.setdefault(r.error.root, []).append(str(r.address))
    return out


def iter_outcomes(result: ApplyResult, outcome: str) -> Iterable[NodeResult]:
    return (r for r in result.results.values() if r.outcome == outcome)
