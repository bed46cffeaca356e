"""Apply a plan: run its steps in a topological walk with bounded parallelism.

The plan is the program: each change carries the steps (create / update / delete with
API-ready arguments) that `diff` decided. Apply fills in the ids learnt as it goes
(`Pending` placeholders) and runs the steps; it decides nothing new. The only read it
makes is the one that finds a resource whose create answer was lost.

The walk itself (failures skip dependents, held-back nodes and interrupts) is walk.py.

Every request of a change runs under the one retry policy (`bootstrap.retry`) and
shares one time budget: the create, the re-read after a lost answer, the steps that
complete the create, the status polls, the deletes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
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
from bootstrap.limiter import Limits
from bootstrap.model import Address, Resource
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
from bootstrap.walk import (  # noqa: F401  (the outcomes are part of apply's interface)
    CREATED,
    DELETED,
    FAILED,
    HELD,
    INTERRUPTED,
    NOT_STARTED,
    REPLACED,
    SKIPPED,
    STOPPED,
    UNCHANGED,
    UPDATED,
    ApplyResult,
    NodeResult,
    Retire,
    walk,
)

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud
    from bootstrap.drivers.base import Driver
    from bootstrap.interrupt import Interrupt

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
    _retire_after_dependents(g, plan)
    return g


def _retire_after_dependents(g: nx.DiGraph, plan: Plan) -> None:
    """Split each create-before-destroy replace: its node makes the new resource, a
    Retire node deletes the old one after every dependent has switched to the new id."""
    for c in plan.changes:
        if not c.creates_first:
            continue
        old = Retire(c.address)
        dependents = list(g.successors(c.address))
        g.add_edge(c.address, old)
        for d in dependents:
            g.add_edge(d, old)


OUTCOME = {
    Action.CREATE: CREATED,
    Action.UPDATE: UPDATED,
    Action.REPLACE: REPLACED,
    Action.DELETE: DELETED,
    Action.NOOP: UNCHANGED,
}


# Without --parallelism: each service starts at 8 changes at once and finds its own level.
ADAPTIVE_START, ADAPTIVE_MIN, ADAPTIVE_MAX = 8, 2, 32


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
        parallelism: int | None = 8,
        on_event: Event | None = None,
        held: dict[Address, str] | None = None,
        interrupt: Interrupt | None = None,
    ) -> ApplyResult:
        """Walk the execution graph; `held` (from gates.py) names what is not to run, and
        `interrupt` (SIGINT/SIGTERM) stops it from starting anything new. `parallelism`
        None: an adaptive limit per service (bootstrap/limiter.py) instead of a number."""
        changes = plan.by_address()
        graph = execution_graph(plan)
        limits = Limits(initial=ADAPTIVE_START, minimum=ADAPTIVE_MIN, maximum=ADAPTIVE_MAX)

        def execute(node: Address | Retire) -> str:
            if isinstance(node, Retire):
                return self.execute(
                    changes[node.address], self.cloud.retry.start(interrupt), old=True
                )
            change = changes[node]
            if on_event and change.is_change:
                on_event(change, "start", None)
            # One retry budget per change, ended early by an interrupt.
            return self.execute(change, self.cloud.retry.start(interrupt))

        def run(node: Address | Retire) -> str:
            if parallelism is not None:
                return execute(node)
            kind = node.address.kind if isinstance(node, Retire) else node.kind
            service = (self.drivers[kind].clients or (kind,))[0]
            action = "retire" if isinstance(node, Retire) else changes[node].action.value
            with limits.of(service).slot(f"{kind} {action}") as outcome:
                try:
                    return execute(node)
                except CloudError as err:
                    outcome.update(status=err.status, retry_after=err.extra.get("retry_after"))
                    raise

        def done(res: NodeResult) -> None:
            if isinstance(res.address, Retire):
                return  # reported with its replace, once folded
            change = changes[res.address]
            if not change.is_change and res.outcome == HELD:
                return  # nothing to hold: reported as unchanged
            if change.creates_first and res.outcome == REPLACED:
                return  # reported once its old resource is deleted too
            if on_event and res.outcome == NOT_STARTED:
                return  # listed by the summary, not one line each
            if on_event and (change.is_change or res.outcome in STOPPED):
                on_event(change, res.outcome, res.error)

        workers = parallelism if parallelism is not None else ADAPTIVE_MAX
        results = walk(graph, run, workers, done, held, interrupt)  # type: ignore[arg-type]
        result = ApplyResult(_fold(results, changes, on_event))
        if interrupt is not None and interrupt.is_set():
            result.interrupted = interrupt.signal
        return result

    # ---- one node ------------------------------------------------------------------
    def execute(self, change: Change, budget: Budget | None = None, old: bool = False) -> str:
        """Run the change's steps in order; the outcome is the planned action's.

        A create-before-destroy replace runs as two nodes: its steps up to the delete of
        the old resource, then (`old`) that delete, against what was observed.
        """
        address = str(change.address)
        driver = self.drivers[change.address.kind]
        current = change.observed
        budget = budget or self.cloud.retry.start()
        steps = change.steps
        if change.creates_first:
            steps = [s for s in steps if (s.verb == "delete") == old]
        try:
            for step in steps:
                if old:
                    assert change.observed is not None
                    self._delete(driver, change.observed, address, budget)
                    continue
                current = self._run_step(driver, change, step, current, address, budget)
        except BootstrapError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client error joins the tree
            raise classify(exc, address) from exc
        return DELETED if old else OUTCOME[change.action]

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

    def _read_again(self, driver: Driver, resources: list[Resource]) -> list[Observed]:
        """The kind listed again, after the lists its read builds on (`reads_after`)."""
        known = {
            k: self._read_again(self.drivers[k], []) for k in driver.reads_needed(resources)
        }
        return driver.read_all(self.cloud, resources, known)

    def _create(
        self, driver: Driver, change: Change, args: dict[str, Any], address: str, budget: Budget
    ) -> Observed:
        """Create once; before any retry, look for what a lost answer may have made."""
        resource = change.resource
        assert resource is not None

        # A create-before-destroy replace: the old resource is still there, not a match.
        old_id = change.observed.id if change.creates_first and change.observed else None

        def made_meanwhile() -> Observed | None:
            # The one re-read at apply: a create whose answer was lost did happen.
            found = with_retries(
                lambda: self._read_again(driver, [resource]), address=address, budget=budget
            )
            found = [o for o in found if o.id != old_id]
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
        if isinstance(value, tuple) and not isinstance(value, Address):
            return tuple(self._fill(v, address) for v in value)
        if isinstance(value, (SetDelta, MapDelta)):
            return value.fill(lambda v: self._fill(v, address))
        return value


def _fold(
    results: dict[Address, NodeResult], changes: dict[Address, Change], on_event: Event | None
) -> dict[Address, NodeResult]:
    """One result per change: Retire nodes folded into their replace, held no-ops unchanged."""
    out: dict[Address, NodeResult] = {}
    for node, res in results.items():
        if isinstance(node, Retire):
            continue
        if res.outcome == HELD and not changes[node].is_change:
            res = NodeResult(node, UNCHANGED)
        out[node] = res
    for node, res in results.items():
        if not isinstance(node, Retire):
            continue
        made = out[node.address]
        if made.outcome != REPLACED:
            continue  # the replace itself failed, was skipped or held: reported as such
        if res.outcome == FAILED:
            err = res.error
            msg = f"the new one was created, but deleting the old one failed: {err}"
            folded = NodeResult(node.address, FAILED, ResourceFailed(msg, str(node.address)))
            if isinstance(err, CloudError):
                folded.error = type(err)(msg, str(node.address), err.status, err.retryable)
        elif res.outcome in (SKIPPED, HELD):
            # A dependent failed (or waits): it may still use the old one, which stays.
            folded = NodeResult(node.address, res.outcome, res.error, res.detail)
        else:
            folded = made
        out[node.address] = folded
        if on_event:
            on_event(changes[node.address], folded.outcome, folded.error)
    return out


def skipped_by(result: ApplyResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in result.results.values():
        if r.outcome == SKIPPED and isinstance(r.error, DependencyFailed):
            out.setdefault(r.error.root, []).append(str(r.address))
    return out
