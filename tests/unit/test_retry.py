"""The one retry policy: classification per service, budget, attempts, interrupts."""

import threading
import time

import pytest
from glanceclient import exc as g_exc
from keystoneauth1 import exceptions as ks_exc

from bootstrap.apply import INTERRUPTED, NOT_STARTED, walk
from bootstrap.drivers._nova import ServerPoller
from bootstrap.errors import CloudError
from bootstrap.interrupt import Interrupt
from bootstrap.retry import RetryPolicy, classify, with_retries

FAST = RetryPolicy(base_delay=0.0, max_delay=0.0, sleep=lambda s: None)


class _Status(Exception):
    def __init__(self, code, message="boom"):
        super().__init__(message)
        self.status_code = code
        self.message = message


@pytest.mark.parametrize(
    "exc",
    [
        g_exc.CommunicationError(message="Error finding address: connection reset"),
        g_exc.InvalidEndpoint(message="Error communicating with ...: read timed out"),
        g_exc.HTTPException(),  # a status glanceclient has no class for: 429, 504
        g_exc.HTTPServiceUnavailable(),
        ks_exc.ConnectFailure("reset"),
        _Status(429),
        _Status(503),
        _Status(409, "Another operation is in progress"),
    ],
)
def test_transient_errors_are_retryable(exc):
    assert classify(exc).retryable


@pytest.mark.parametrize(
    "exc",
    [
        _Status(409, "Quota exceeded for resources: ['network']."),
        _Status(413, "Quota exceeded for cores"),
        g_exc.HTTPOverLimit(),  # Glance's 413: image storage quota
        _Status(403, "You are not authorized"),
        _Status(400, "bad request"),
        g_exc.HTTPNotFound(),
    ],
)
def test_quota_and_client_errors_are_terminal(exc):
    assert not classify(exc).retryable


def test_retry_after_is_honoured_and_attempts_are_counted():
    slept = []
    policy = RetryPolicy(attempts=3, sleep=slept.append)

    def always_429():
        raise ks_exc.http.TooManyRequests(retry_after=7)

    with pytest.raises(CloudError) as info:
        with_retries(always_429, address="networks.x", policy=policy)
    assert len(slept) == 2 and all(7 <= s <= 7 * 1.25 for s in slept)
    assert "gave up after 3 attempts" in str(info.value)
    assert info.value.extra["attempts"] == 3


def test_the_budget_ends_retries_early():
    now = [0.0]

    def sleep(s):
        now[0] += s

    policy = RetryPolicy(attempts=50, base_delay=1, max_delay=8, budget=10, sleep=sleep,
                         clock=lambda: now[0])
    calls = []

    def fail():
        calls.append(1)
        raise _Status(503)

    with pytest.raises(CloudError) as info:
        with_retries(fail, policy=policy)
    assert "retry budget of 10s is spent" in str(info.value)
    assert now[0] <= 10 and len(calls) < 6


def test_an_interrupt_ends_the_retry_wait():
    interrupt = Interrupt()
    interrupt.set("SIGINT")
    budget = RetryPolicy(base_delay=60).start(interrupt)
    with pytest.raises(CloudError, match="interrupted"):
        with_retries(lambda: (_ for _ in ()).throw(_Status(503)), budget=budget)


def test_a_failed_poll_is_retried_not_fanned_out():
    calls = []

    def lister(since):
        calls.append(since)
        if len(calls) == 1:
            raise ks_exc.ConnectFailure("reset by peer")
        return [type("S", (), {"id": "s1", "status": "ACTIVE"})()]

    poller = ServerPoller(interval=0, policy=FAST)
    got = poller.wait("p", lister, "s1", lambda s: s is not None, timeout=5)
    assert got.id == "s1" and len(calls) == 2


def test_walk_stops_starting_work_after_an_interrupt():
    import networkx as nx

    g = nx.DiGraph()
    g.add_edge("a", "b")
    g.add_node("slow")
    interrupt = Interrupt(grace=0.2)
    release = threading.Event()

    def run(n):
        if n == "a":
            time.sleep(0.1)  # "slow" has started meanwhile
            interrupt.set("SIGINT")
            return "created"
        if n == "slow":
            release.wait(5)
            return "created"
        raise AssertionError(f"{n} must not start")

    results = walk(g, run, 4, interrupt=interrupt)
    release.set()
    assert results["a"].outcome == "created"
    assert results["b"].outcome == NOT_STARTED
    assert results["slow"].outcome == INTERRUPTED


def test_building_a_client_is_retried_like_any_request():
    """Building Nova's client asks for its microversion range: a connection reset there
    is retried, not the end of the plan (the fault tier found it)."""
    from functools import cached_property

    from bootstrap.cloud import Cloud

    class Flaky:
        calls = 0
        retry = RetryPolicy(sleep=lambda s: None)

        @cached_property
        def nova(self):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise ks_exc.ConnectFailure("connection reset by peer")
            return "client"

    flaky = Flaky()
    Cloud.prepare(flaky, ["nova"])
    assert flaky.nova == "client" and Flaky.calls == 2
