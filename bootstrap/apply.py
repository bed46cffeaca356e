"""Apply a plan: run its steps in a topological walk with bounded parallelism.

The plan is the program: each change carries the steps (create / update / delete with
API-ready arguments) that `diff` decided. Apply fills in the ids learnt as it goes
(`Pending` placeholders) and runs the steps; it decides nothing new. The only read it
makes is the one that finds a resource whose create answer was lost.

A failed node skips everything that depends on it; independent branches go on; the
root cause is reported once. An `Interrupt` (the first SIGINT/SIGTERM) stops the walk from
starting anything new; what was in flight gets a bounded time to finish.

Every request of a change runs under the one retry policy (`bootstrap.retry`) and
shares one time budget: the create, the re-read after a lost answer, the steps that
complete the create, the status polls, the deletes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from bootstrap.cloud import Budget, classify, with_retries
from bootstrap.errors import (
    BootstrapError,
    CloudError,
    DependencyFailed,
    NotFound,
    ResourceFailed,
)
from bootstrap.model import Address
from bootstrap.plan import (
    Action,
    Change,
    MapDelta,
    Observed,
    Pending,
    Plan,
    Resolver,
    SetDelta,
    Step,
)

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud
    from bootstrap.drivers.base import Driver
    from bootstrap.interrupt import Interrupt

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
# After an interrupt: still running when the grace time ran out; never started.
INTERRUPTED, NOT_STARTED = "interrupted", "not started"
STOPPED = (FAILED, SKIPPED, INTERRUPTED, NOT_STARTED)


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

    interrupted: str | None = None  # the signal that stopped the apply

    @property
    def ok(self) -> bool:
        return not any(r.outcome in STOPPED for r in self.results.values())

    def summary(self) -> dict[str, int]:
        return {
            o: self.count(o)
            for o in (CREATED, UPDATED, REPLACED, DELETED, UNCHANGED, FAILED, SKIPPED)
            + (INTERRUPTED, NOT_STARTED)
        }


Event = Callable[[Change, str, BaseException | None], None]


class ApplyContext:
    """What a driver's writes may need besides the cloud, passed explicitly.

    `progress`: the live display (rich Progress) an upload adds its bar to, or None.
    `lock(name)`: one lock per name for the apply (e.g. per known_hosts file).
    `poller`: the one server status poller of the apply (made on first use).
    """

    def __init__(self, progress: Any = None, retry: Any = None):
        self.progress = progress
        self.retry = retry  # the RetryPolicy the poller retries its list calls under
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._poller: Any = None

    @property
    def poller(self) -> Any:
        """Every server wait of this apply shares it: one list call per interval."""
        with self._guard:
            if self._poller is None:
                from bootstrap.drivers._nova import ServerPoller

                self._poller = ServerPoller(policy=self.retry)
            return self._poller

    def lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())


def execution_graph(plan: Plan) -> nx.DiGraph:
    """THE order of a plan's changes; edges say "runs before". `graph` shows this one.

    Creates and updates follow references; deletes run reversed (the user of a thing is
    deleted before the thing); a pruned resource, which the manifest no longer names,
    is ordered by its kind's place (dependents first).
    """
    from bootstrap.drivers.base import kinds
    from bootstrap.graph import order_graph

    changes = plan.by_address()
    deleting = {a for a, c in changes.items() if c.action is Action.DELETE}
    g = order_graph(plan.graph, changes, deleting)
    pruned = [c for c in plan.changes if c.resource is None]
    rank = {k: i for i, k in enumerate(kinds())}
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
    interrupt: Interrupt | None = None,
) -> dict[Address, NodeResult]:
    """Run every node once all its predecessors succeeded; skip descendants of failures.

    Once `interrupt` is set nothing new starts; see `_stop`.
    """
    results: dict[Address, NodeResult] = {}
    waiting = {n: set(graph.predecessors(n)) for n in graph.nodes}
    blocked_by: dict[Address, Address] = {}

    def finish(res: NodeResult) -> None:
        results[res.address] = res
        if on_done:
            on_done(res)

    def skip_descendants(root: Address) -> None:
        for d in nx.descendants(graph, root):
            if d not in results and d not in blocked_by:
                blocked_by[d] = root

    def stopped() -> bool:
        return interrupt is not None and interrupt.is_set()

    # Only this thread touches `results`, `waiting` and `blocked_by`: workers run nodes.
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    running: dict[Future[str], Address] = {}

    def submit_ready() -> None:
        for n in list(waiting):
            if waiting[n] or stopped():
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

    def collect(done: set[Future[str]]) -> None:
        for fut in done:
            n = running.pop(fut)
            try:
                outcome = fut.result()
                finish(NodeResult(n, outcome))
                release(n, failed=False)
            except BaseException as exc:  # noqa: BLE001 - recorded, dependents skipped
                finish(NodeResult(n, FAILED, exc))
                release(n, failed=True)

    try:
        submit_ready()
        while running and not stopped():
            # With an interrupt to watch, wake up now and then to look at it.
            timeout = 0.2 if interrupt is not None else None
            done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            collect(done)
            submit_ready()
        if stopped():
            assert interrupt is not None
            _stop(running, collect, finish, interrupt.grace)
            for n in graph.nodes:
                if n not in results:
                    finish(NodeResult(n, NOT_STARTED))
    finally:
        # After an interrupt, workers still running are abandoned (the CLI exits).
        pool.shutdown(wait=not stopped(), cancel_futures=True)
    return results


def _stop(
    running: dict[Future[str], Address],
    collect: Callable[[set[Future[str]]], None],
    finish: Callable[[NodeResult], None],
    grace: float,
) -> None:
    """Give the changes in flight `grace` seconds; those still running are reported."""
    done, late = wait(list(running), timeout=grace)
    collect(done)
    for fut in late:
        n = running.pop(fut)
        finish(
            NodeResult(
                n,
                INTERRUPTED,
                detail=f"still running {grace:g}s after the interrupt; the next plan shows it",
            )
        )


OUTCOME = {
    Action.CREATE: CREATED,
    Action.UPDATE: UPDATED,
    Action.REPLACE: REPLACED,
    Action.DELETE: DELETED,
    Action.NOOP: UNCHANGED,
}


class Applier:
    """Runs the steps of one plan against one cloud."""

    def __init__(
        self,
        cloud: Cloud,
        drivers: dict[str, Driver],
        resolver: Resolver,
        ctx: ApplyContext | None = None,
    ):
        self.cloud = cloud
        self.drivers = drivers
        # Live ids as apply learns them: the plan's, then what each create returns.
        self.resolver = Resolver(resolver.ids())
        self.ctx = ctx or ApplyContext()
        self._lock = threading.Lock()

    def apply(
        self,
        plan: Plan,
        parallelism: int = 8,
        on_event: Event | None = None,
        interrupt: Interrupt | None = None,
    ) -> ApplyResult:
        changes = plan.by_address()
        graph = execution_graph(plan)

        def run(address: Address) -> str:
            change = changes[address]
            if on_event and change.is_change:
                on_event(change, "start", None)
            # One retry budget per change, ended early by an interrupt.
            return self.execute(change, self.cloud.retry.start(interrupt))

        def done(res: NodeResult) -> None:
            change = changes[res.address]
            if on_event and res.outcome == NOT_STARTED:
                return  # listed by the summary, not one line each
            if on_event and (change.is_change or res.outcome in STOPPED):
                on_event(change, res.outcome, res.error)

        result = ApplyResult(walk(graph, run, parallelism, done, interrupt))
        if interrupt is not None and interrupt.is_set():
            result.interrupted = interrupt.signal
        return result

    # ---- one node ------------------------------------------------------------------
    def execute(self, change: Change, budget: Budget | None = None) -> str:
        """Run the change's steps in order; the outcome is the planned action's."""
        address = str(change.address)
        driver = self.drivers[change.address.kind]
        current = change.observed
        budget = budget or self.cloud.retry.start()
        try:
            for step in change.steps:
                current = self._run_step(driver, change, step, current, address, budget)
        except BootstrapError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client error joins the tree
            raise classify(exc, address) from exc
        return OUTCOME[change.action]

    def _run_step(
        self,
        driver: Driver,
        change: Change,
        step: Step,
        current: Observed | None,
        address: str,
        budget: Budget,
    ) -> Observed | None:
        if step.verb == "delete":
            assert current is not None, f"{address}: a delete step needs what was observed"
            self._delete(driver, current, address, budget)
            self._forget(change.address)
            return None
        args = self._fill(step.args, address)
        if step.verb == "create":
            made = self._create(driver, change, args, address, budget)
            with self._lock:
                self.resolver.set(change.address, made.id)
            return made
        if step.verb == "update":
            assert current is not None, f"{address}: an update step needs its resource"
            target = current
            try:
                with_retries(
                    lambda: driver.update(self.cloud, target, args, self.ctx),
                    address=address,
                    budget=budget,
                )
            except CloudError as err:
                if change.action not in (Action.CREATE, Action.REPLACE) or (
                    "was created, but completing it failed" in err.message
                ):
                    raise
                # The resource exists but lacks what this step adds (tag, members, rules,
                # interfaces): say so; the next plan shows what is missing.
                raise type(err)(
                    f"{current.id} was created, but completing it failed: {err.message}",
                    address,
                    err.status,
                    err.retryable,
                    err.request_id,
                    dict(err.extra),
                ) from err
            return current
        raise AssertionError(f"unknown step {step.verb!r}")

    def _delete(self, driver: Driver, observed: Observed, address: str, budget: Budget) -> None:
        with contextlib.suppress(NotFound):  # already gone is the goal reached
            with_retries(
                lambda: driver.delete(self.cloud, observed, self.ctx),
                address=address,
                budget=budget,
            )

    def _create(
        self, driver: Driver, change: Change, args: dict[str, Any], address: str, budget: Budget
    ) -> Observed:
        """Create once; before any retry, look for what a lost answer may have made."""
        resource = change.resource
        assert resource is not None

        def made_meanwhile() -> Observed | None:
            # The one re-read at apply: a create whose answer was lost did happen.
            found = with_retries(
                lambda: driver.read_all(self.cloud, [resource]), address=address, budget=budget
            )
            with self._lock:
                resolver = Resolver(self.resolver.ids())
            match = driver.match(resource, found, resolver)
            if match is None:
                return None
            if driver.adoptable(match):
                # Completed as the create would have (e.g. a server waited for ACTIVE).
                return with_retries(
                    lambda: driver.adopted(self.cloud, match, args, self.ctx),
                    address=address,
                    budget=budget,
                )
            if match.managed:
                # Half made by this very create (an image without data): removed, so
                # that the retry does not leave a second one under the same name.
                self._delete(driver, match, address, budget)
            return None

        return with_retries(
            lambda: driver.create(self.cloud, args, self.ctx),
            address=address,
            budget=budget,
            recover=made_meanwhile,
        )

    def _forget(self, address: Address) -> None:
        with self._lock:
            self.resolver.forget(address)

    def _fill(self, value: Any, address: str) -> Any:
        """The step's arguments with every Pending replaced by the id learnt since."""
        if isinstance(value, Pending):
            with self._lock:
                live = self.resolver.live(value.address)
            if live is None:
                raise ResourceFailed(
                    f"needs the id of {value.address}, which was neither found nor created",
                    address,
                )
            return live
        if isinstance(value, dict):
            return {k: self._fill(v, address) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(v, address) for v in value]
        if isinstance(value, tuple):
            return tuple(self._fill(v, address) for v in value)
        if isinstance(value, (SetDelta, MapDelta)):
            return value.fill(lambda v: self._fill(v, address))
        return value


def skipped_by(result: ApplyResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in result.results.values():
        if r.outcome == SKIPPED and isinstance(r.error, DependencyFailed):
            out.setdefault(r.error.root, []).append(str(r.address))
    return out
