"""Stopping an apply on SIGINT/SIGTERM the way an operator expects.

The first signal sets the `Interrupt` the apply was given: no new operation starts, the
retry waits end, the operations in flight get `grace` seconds to finish, then the summary
says what was done, what failed and what was not started (exit 130). A second signal
exits at once. Whatever the moment (kill -9 included), the next run converges: the cloud
is the state, and half-made resources are completed or replaced by the next plan.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

EXIT_INTERRUPTED = 130
DEFAULT_GRACE = 30.0


class Interrupt:
    """A cancellation flag passed explicitly to the walk and the retry waits."""

    def __init__(self, grace: float = DEFAULT_GRACE):
        self.grace = grace
        self.signal: str | None = None
        self._event = threading.Event()

    def set(self, name: str = "interrupt") -> None:
        self.signal = self.signal or name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to `timeout`; True as soon as the interrupt is set."""
        return self._event.wait(timeout)


@contextlib.contextmanager
def on_signals(interrupt: Interrupt, say: Callable[[str], None]) -> Iterator[Interrupt]:
    """While inside: SIGINT/SIGTERM set `interrupt`; a second one exits 130 at once."""

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if interrupt.is_set():
            say(f"{name} again: exiting now; the next apply completes what was in flight.")
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)
        interrupt.set(name)
        say(
            f"{name}: no new change starts; waiting up to {interrupt.grace:g}s for those "
            "in flight (send it again to exit at once)."
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interrupt
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
