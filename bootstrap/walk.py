"""The DAG walker: run every node once its predecessors succeeded, in parallel.

A failed node skips everything that depends on it; independent branches go on; the
root cause is reported once. A held-back node (gates.py decided it before apply) is run
like a failed one is: not at all, and nothing after it runs. An `Interrupt` (the first
SIGINT/SIGTERM) stops the walk from starting anything new; what was in flight gets a
bounded time to finish.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx

from bootstrap.errors import DependencyFailed
from bootstrap.model import Address

if TYPE_CHECKING:
    from bootstrap.interrupt import Interrupt

# Outcomes of one node.
CREATED, UPDATED, REPLACED, DELETED, UNCHANGED, FAILED, SKIPPED, HELD = (
    "created",
    "updated",
    "replaced",
    "deleted",
    "unchanged",
    "failed",
    "skipped",
    "held back",
)
# After an interrupt: still running when the grace time ran out; never started.
INTERRUPTED, NOT_STARTED = "interrupted", "not started"
STOPPED = (FAILED, SKIPPED, INTERRUPTED, NOT_STARTED)


@dataclass(frozen=True)
class Retire:
    """The execution node deleting the old resource of a create-before-destroy replace.

    It runs after the replace's create and after every dependent of the resource (their
    updates switch to the new id first); its result is folded into the replace's.
    """

    address: Address

    def __str__(self) -> str:
        return f"{self.address} (old)"


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
        """Nothing failed (held-back changes were not run on purpose: not a failure)."""
        return not any(r.outcome in STOPPED for r in self.results.values())

    @property
    def held(self) -> list[NodeResult]:
        return [r for r in self.results.values() if r.outcome == HELD]

    def summary(self) -> dict[str, int]:
        return {
            o: self.count(o)
            for o in (CREATED, UPDATED, REPLACED, DELETED, UNCHANGED, FAILED, SKIPPED, HELD)
            + (INTERRUPTED, NOT_STARTED)
        }



def walk(
    graph: nx.DiGraph,
    run: Callable[[Address], str],
    parallelism: int,
    on_done: Callable[[NodeResult], None] | None = None,
    held: dict[Address, str] | None = None,
    interrupt: Interrupt | None = None,
) -> dict[Address, NodeResult]:
    """Run every node once all its predecessors succeeded; skip descendants of failures.

    `held` nodes (decided before apply) are not run: they and what comes after them are
    reported held back, with the reason given or the held node they wait for. Once
    `interrupt` is set nothing new starts; see `_stop`.
    """
    held = held or {}
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
            root = blocked_by.get(n)
            if n in held or (root is not None and results[root].outcome == HELD):
                why = held.get(n) or f"depends on {root}, which is held back"
                finish(NodeResult(n, HELD, detail=why))
                release(n, failed=True)
                continue
            if root is not None:
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
