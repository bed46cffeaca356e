"""Where a plan's wall time goes: named phases, measured once, shown by `plan --timings`
and carried in the JSON plan (`timings`). Passed explicitly, never global.

Phases that run in parallel (the reads of independent kinds) are recorded each under
`read.<kind>` next to the wall time of them all (`reads`): their sum may exceed it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# The order phases are shown in; anything else follows in the order recorded.
ORDER = (
    "imports", "libraries", "load", "graph", "connect", "clients", "reads", "probes", "diff",
    "total",
)


class Timings:
    def __init__(self, clock=time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - start)

    def as_dict(self) -> dict[str, float]:
        """Rounded to the millisecond, in the order they are explained."""
        with self._lock:
            kinds = sorted(n for n in self.seconds if n.startswith("read."))
            names = [n for n in ORDER if n in self.seconds]
            at = names.index("reads") + 1 if "reads" in names else len(names)
            names[at:at] = kinds
            names += sorted(n for n in self.seconds if n not in names)
            return {n: round(self.seconds[n], 3) for n in names}


def since_process_start() -> float | None:
    """Seconds since this process started (interpreter start-up and imports included),
    from /proc where there is one; None elsewhere."""
    import os

    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            # Field 22, after the command name in parentheses (which may hold spaces).
            started = int(fh.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime", encoding="ascii") as fh:
            now = float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, now - started)
