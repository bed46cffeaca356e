"""Reading the cloud for a plan: which kinds, in what order, with which clients, then
every kind's list at once and the probes the drivers ask for. Reads return facts: the
only I/O is the drivers' `read_all` and the probes."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from graphlib import TopologicalSorter

from bootstrap.cloud import Cloud, with_retries
from bootstrap.drivers.base import Driver
from bootstrap.errors import Forbidden, PreflightError
from bootstrap.model import DEFAULT_DOMAIN, Address, Manifest, Resource
from bootstrap.plan import Observed
from bootstrap.probes import Facts, Probe, run_probes
from bootstrap.timings import Timings


def kinds_to_read(manifest: Manifest, drivers: dict[str, Driver], prune: bool) -> list[str]:
    kinds = {r.kind for r in manifest}
    if any(
        drivers[k].needs_default_domain or "domain" in drivers[k].key_fields
        for k in kinds
        if k in drivers
    ):
        kinds.add("domains")  # to know the Default domain's id
    if prune:
        # What carries a marker, and role assignments (pruned by their two ends).
        kinds |= {k for k, d in drivers.items() if d.ownership} | {"role_assignments"}
    if prune or any(r.kind == "projects" and r.absent for r in manifest):
        # Deleting a project deletes what lives in it first, or is refused for it.
        kinds |= {k for k, d in drivers.items() if d.project_field} | {"projects"}
    return [k for k in drivers if k in kinds]


def read_order(
    manifest: Manifest, drivers: dict[str, Driver], kinds: list[str]
) -> dict[str, frozenset[str]]:
    """The kinds to read, each with the kinds its read builds on (`reads_needed`), those
    added when missing; dependencies come first. A cycle is a driver bug."""
    needs: dict[str, frozenset[str]] = {}
    pending = list(kinds)
    while pending:
        kind = pending.pop(0)
        if kind not in needs:
            needs[kind] = drivers[kind].reads_needed(manifest.of_kind(kind))
            pending += sorted(needs[kind])
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for kind, before in needs.items():  # in a fixed order: the reads' order is too
        sorter.add(kind, *sorted(before))
    return {k: needs[k] for k in sorter.static_order()}  # CycleError on a cycle


def read_state(
    cloud: Cloud,
    manifest: Manifest,
    drivers: dict[str, Driver],
    kinds: list[str],
    timings: Timings | None = None,
    prefetched: dict[str, Future[list[Observed]]] | None = None,
) -> dict[str, list[Observed]]:
    """Each kind's list, once: in parallel, a kind whose read builds on others' lists
    (`Driver.reads_after`) after them, handed those lists as `known`. A kind in
    `prefetched` (see `prefetch`) is not read again."""
    timings = timings or Timings()
    order = read_order(manifest, drivers, kinds)
    futures: dict[str, Future[list[Observed]]] = {}

    def read(kind: str) -> list[Observed]:
        # Its dependencies were submitted before it: they run or are done (no deadlock).
        known = {k: futures[k].result() for k in order[kind]}
        return read_kind(cloud, drivers[kind], manifest.of_kind(kind), known, timings)

    if not order:
        return {}
    # Every kind's list at once: they are independent, and each is one wait on the API.
    with ThreadPoolExecutor(max_workers=min(len(order), MAX_PARALLEL_READS)) as pool:
        for kind in order:
            early = (prefetched or {}).get(kind)
            futures[kind] = early if early is not None else pool.submit(read, kind)
        # In the caller's order (then what was added for the reads), as before.
        return {k: futures[k].result() for k in dict.fromkeys([*kinds, *order])}


def read_kind(
    cloud: Cloud,
    driver: Driver,
    resources: list[Resource],
    known: dict[str, list[Observed]],
    timings: Timings,
) -> list[Observed]:
    """One kind's list, under the one retry policy; a refusal says what is missing."""
    kind = driver.kind
    try:
        with timings.phase(f"read.{kind}"):
            return with_retries(
                lambda: driver.read_all(cloud, resources, known),
                address=kind,
                policy=cloud.retry,
            )
    except Forbidden as exc:
        raise PreflightError(
            f"cannot list {kind}: the cloud refused ({exc}); the credentials in use "
            f"need permission to read {kind} for a plan"
        ) from None


def prefetchable(drivers: dict[str, Driver], sections: set[str]) -> list[str]:
    """The kinds among `sections` whose list does not depend on the manifest
    (`Driver.reads_alone`) nor on other kinds' lists: they can be read before it loads."""
    return [
        k for k, d in drivers.items() if k in sections and d.reads_alone and not d.reads_after
    ]


def prefetch(
    cloud: Cloud, drivers: dict[str, Driver], kinds: list[str], timings: Timings
) -> tuple[dict[str, Future[list[Observed]]], ThreadPoolExecutor]:
    """Start reading these kinds now (the manifest still loading); `read_state` takes
    their futures instead of reading them again. The pool is the caller's to shut down."""
    cloud.prepare(clients_of(drivers, kinds))
    pool = ThreadPoolExecutor(max_workers=max(1, len(kinds)), thread_name_prefix="prefetch")
    futures = {
        k: pool.submit(read_kind, cloud, drivers[k], [], {}, timings) for k in kinds
    }
    return futures, pool


MAX_PARALLEL_READS = 16


def clients_of(
    drivers: dict[str, Driver], kinds: Iterable[str], writes: bool = False
) -> list[str]:
    """The Cloud clients the kinds read with (`writes`: that only their writes add): only
    their libraries get imported."""
    return list(
        dict.fromkeys(
            c for k in kinds for c in (drivers[k].write_clients if writes else drivers[k].clients)
        )
    )


def probes_of(
    manifest: Manifest, drivers: dict[str, Driver], observed: dict[str, list[Observed]]
) -> list[Probe]:
    """The checks the drivers ask for beyond the lists (files, passwords)."""
    return [
        p
        for r in manifest
        if r.managed and not r.absent
        for p in drivers[r.kind].probes(r, observed.get(r.kind, []))
    ]


def builtin_ids(observed: dict[str, list[Observed]]) -> dict[Address, str]:
    default = Address("domains", (DEFAULT_DOMAIN,))
    for obs in observed.get("domains", []):
        if obs.fields.get("name") == DEFAULT_DOMAIN:
            return {default: obs.id}
    return {default: "default"}


def observe(
    cloud: Cloud,
    manifest: Manifest,
    drivers: dict[str, Driver],
    prune: bool,
    timings: Timings,
    sent: threading.Event | None = None,
    prefetched: dict[str, Future[list[Observed]]] | None = None,
) -> tuple[dict[str, list[Observed]], Facts]:
    """What the plan decides on: every kind's list, then the probes the drivers ask for.
    `sent` is set once the clients are built and the lists are about to be asked for;
    `prefetched` are lists already asked for (a kind not read for this manifest is
    left unused)."""
    kinds = kinds_to_read(manifest, drivers, prune)
    try:
        with timings.phase("clients"):
            # Built once before the parallel reads (a client is shared by several kinds).
            cloud.prepare(clients_of(drivers, kinds))
    finally:
        if sent is not None:
            sent.set()
    with timings.phase("reads"):
        observed = read_state(cloud, manifest, drivers, kinds, timings, prefetched)
    with timings.phase("probes"):
        facts = run_probes(cloud, probes_of(manifest, drivers, observed))
    return observed, facts
