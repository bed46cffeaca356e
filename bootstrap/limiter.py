"""An adaptive concurrency limit per service for apply (when --parallelism is not given).

Additive increase, multiplicative decrease, on what each change's requests cost:

- grow by one after `limit` changes in a row whose latency held (at most `tolerance`
  times the lowest recent latency: the service is not queueing them);
- shrink by one when latency rises past that (requests queue inside the service, as
  Keystone's few worker threads do), and halve on an overload answer (429, 503);
- a Retry-After pauses new changes of that service until it is over (the retry policy
  waits it out for the change that got it).

The walk's thread pool is sized for `maximum`; the limit is what may run at once.
"""

from __future__ import annotations

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(minimum, min(initial, maximum))
        self.minimum, self.maximum, self.tolerance = minimum, maximum, tolerance
        self.clock = clock
        self.in_flight = 0
        self.baseline: float | None = None  # the lowest recent latency
        self._held = 0  # changes in a row whose latency held
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
        self, latency: float, status: int | None = None, retry_after: float | None = None
    ) -> None:
        with self._cond:
            self.in_flight -= 1
            if status in OVERLOAD_STATUS:
                self.limit = max(self.minimum, self.limit // 2)
                self._held = 0
                if retry_after:
                    self._paused_until = max(self._paused_until, self.clock() + retry_after)
            elif self.baseline is None or latency < self.baseline:
                self.baseline = latency
                self._grow()
            elif latency <= self.baseline * self.tolerance:
                self._grow()
            else:
                self.limit = max(self.minimum, self.limit - 1)
                self._held = 0
                # Let the baseline follow a service that got slower for good.
                self.baseline += (latency - self.baseline) * 0.05
            self._cond.notify_all()

    def _grow(self) -> None:
        self._held += 1
        if self._held >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._held = 0

    @contextmanager
    def slot(self) -> Iterator[dict]:
        """Hold one place for a change; the caller may set `status`/`retry_after` on the
        dict it gets (from the error that ended the change)."""
        self.acquire()
        start = self.clock()
        outcome: dict = {}
        try:
            yield outcome
        finally:
            self.release(self.clock() - start, outcome.get("status"), outcome.get("retry_after"))


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
