"""An adaptive concurrency limit per service for apply (when --parallelism is not given).

Additive increase, multiplicative decrease, on what each change's requests cost, judged
a window of changes at a time:

- each class of change (kind and action) collects its latencies; every `window` of them
  its median is compared with the lowest median that class has had (its baseline);
- at most `tolerance` times the baseline: the service is not queueing them, the limit
  grows by one;
- past it: requests queue inside the service (as in Keystone's few worker threads), the
  limit shrinks by one and the baseline moves a little towards the new median (a service
  that got slower for good is not chased down to the minimum);
- an overload answer (429, 503) halves the limit at once; a Retry-After pauses new
  changes of that service until it is over (the retry policy waits it out for the
  change that got it).

Why windows and classes: one change's latency is noisy (a shared machine, a slow
commit), and the lowest single latency ever seen is luck; compared with it, most changes
look queued and the limit sinks to its minimum. A user create that hashes a password
takes ten times a role grant, so one baseline for a whole service would read every user
create as queueing.

The walk's thread pool is sized for `maximum`; the limit is what may run at once.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

OVERLOAD_STATUS = frozenset({429, 503})


class AdaptiveLimit:
    def __init__(
        self,
        initial: int = 8,
        minimum: int = 1,
        maximum: int = 32,
        tolerance: float = 1.5,
        window: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(minimum, min(initial, maximum))
        self.minimum, self.maximum, self.tolerance = minimum, maximum, tolerance
        self.window = window
        self.clock = clock
        self.in_flight = 0
        self.baselines: dict[str, float] = {}  # per class: the lowest window median
        self._latencies: dict[str, list[float]] = {}  # per class: the window so far
        self._paused_until = 0.0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while True:
                pause = self._paused_until - self.clock()
                if pause <= 0 and self.in_flight < self.limit:
                    self.in_flight += 1
                    return
                # Re-checked at least twice a second: a pause ends without a release.
                self._cond.wait(timeout=min(pause, 0.5) if pause > 0 else None)

    def release(
        self,
        latency: float,
        status: int | None = None,
        retry_after: float | None = None,
        klass: str = "",
    ) -> None:
        with self._cond:
            self.in_flight -= 1
            if status in OVERLOAD_STATUS:
                self.limit = max(self.minimum, self.limit // 2)
                self._latencies.clear()  # measured at the old limit
                if retry_after:
                    self._paused_until = max(self._paused_until, self.clock() + retry_after)
            else:
                window = self._latencies.setdefault(klass, [])
                window.append(latency)
                if len(window) >= self.window:
                    self._judge(klass, statistics.median(window))
                    window.clear()
            self._cond.notify_all()

    def _judge(self, klass: str, median: float) -> None:
        baseline = self.baselines.get(klass)
        if baseline is None or median < baseline:
            self.baselines[klass] = median
            self.limit = min(self.maximum, self.limit + 1)
        elif median <= baseline * self.tolerance:
            self.limit = min(self.maximum, self.limit + 1)
        else:
            self.limit = max(self.minimum, self.limit - 1)
            self.baselines[klass] = baseline + (median - baseline) * 0.1

    @contextmanager
    def slot(self, klass: str = "") -> Iterator[dict]:
        """Hold one place for a change of `klass`; the caller may set `status` /
        `retry_after` on the dict it gets (from the error that ended the change)."""
        self.acquire()
        start = self.clock()
        outcome: dict = {}
        try:
            yield outcome
        finally:
            self.release(
                self.clock() - start, outcome.get("status"), outcome.get("retry_after"), klass
            )


class Limits:
    """One AdaptiveLimit per service, made on first use."""

    def __init__(self, **settings: object) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self.by_service: dict[str, AdaptiveLimit] = {}

    def of(self, service: str) -> AdaptiveLimit:
        with self._lock:
            if service not in self.by_service:
                self.by_service[service] = AdaptiveLimit(**self._settings)  # type: ignore[arg-type]
            return self.by_service[service]
