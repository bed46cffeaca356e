"""The adaptive concurrency limit: grows while latency holds, shrinks when it rises,
halves on 429/503 and pauses for Retry-After."""

from __future__ import annotations

import threading

from bootstrap.limiter import AdaptiveLimit, Limits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_changes(lim: AdaptiveLimit, latencies, klass: str = "") -> None:
    for latency in latencies:
        lim.acquire()
        lim.release(latency, klass=klass)


def test_grows_by_one_per_window_of_steady_changes():
    lim = AdaptiveLimit(initial=4, maximum=6, window=4)
    run_changes(lim, [0.10, 0.12, 0.09, 0.11])
    assert lim.limit == 5
    run_changes(lim, [0.10, 0.13, 0.12, 0.11])  # within 1.5x the first window's median
    assert lim.limit == 6
    run_changes(lim, [0.10] * 50)
    assert lim.limit == 6  # never past the maximum


def test_one_slow_change_in_a_window_is_noise_not_queueing():
    """Judged by the window's median: a single outlier neither shrinks the limit nor
    becomes the baseline, and one lucky fast change does not make every later one look
    queued (the old per-change rule sank to the minimum on a noisy machine)."""
    lim = AdaptiveLimit(initial=8, window=5)
    run_changes(lim, [0.10, 0.10, 0.11, 0.10, 2.0])
    assert lim.limit == 9
    run_changes(lim, [0.01, 0.12, 0.13, 0.11, 0.12])  # one lucky 10 ms change
    assert lim.limit == 10


def test_shrinks_when_latency_rises_and_halves_on_overload():
    lim = AdaptiveLimit(initial=8, minimum=2, window=3)
    run_changes(lim, [0.10, 0.10, 0.10])
    assert lim.limit == 9
    run_changes(lim, [0.50, 0.40, 0.60])  # 5x the baseline: requests queue in the service
    assert lim.limit == 8
    lim.acquire()
    lim.release(0.10, status=503)
    assert lim.limit == 4
    lim.acquire()
    lim.release(0.10, status=429)
    assert lim.limit == 2
    lim.acquire()
    lim.release(0.10, status=429)
    assert lim.limit == 2  # never under the minimum


def test_at_most_limit_run_at_once():
    lim = AdaptiveLimit(initial=2, maximum=2)
    lim.acquire()
    lim.acquire()
    third = threading.Event()

    def take():
        lim.acquire()
        third.set()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    assert not third.wait(0.2)  # blocked: two in flight
    lim.release(0.1)
    assert third.wait(2)
    t.join(2)


def test_retry_after_pauses_new_changes_until_it_is_over():
    clock = Clock()
    lim = AdaptiveLimit(initial=4, clock=clock)
    lim.acquire()
    lim.release(0.1, status=429, retry_after=5.0)
    started = threading.Event()

    def take():
        lim.acquire()
        started.set()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    assert not started.wait(0.3)  # 5 s of Retry-After on the service's clock
    clock.now = 5.1
    assert started.wait(3)  # the wait times out and sees the pause over
    t.join(2)


def test_a_slot_reports_the_error_that_ended_the_change():
    lim = AdaptiveLimit(initial=8)
    with lim.slot() as outcome:
        outcome["status"] = 503
    assert lim.limit == 4 and lim.in_flight == 0


def test_one_limit_per_service():
    limits = Limits(initial=3)
    assert limits.of("keystone") is limits.of("keystone")
    assert limits.of("keystone") is not limits.of("nova")
    assert limits.of("nova").limit == 3


def test_latency_is_compared_within_a_class_of_change():
    """Steady user creates (slow: a password hash) mixed with steady grants (fast) are not
    queueing: the limit grows. One baseline for both would read every user create as a
    latency rise and shrink it."""
    lim = AdaptiveLimit(initial=4, maximum=8, window=4)
    for _ in range(20):
        run_changes(lim, [0.30], klass="users create")
        run_changes(lim, [0.03], klass="role_assignments create")
    assert lim.limit == 8
    run_changes(lim, [0.90] * 4, klass="users create")  # 3x that class's own baseline
    assert lim.limit == 7
