"""THE retry policy, and the classification of errors it decides on.

Every request of the tool goes through `with_retries`: the reads of a plan, the probes,
each step of apply (creates, the re-read after a lost create, the updates completing a
create, deletes) and the server status polls. What it retries (`classify`):

- transient: 5xx, 429 (Retry-After honoured), 409 (an operation in flight), connection
  failures (refused, reset, timed out, an answer lost), and what a driver marks
  retryable; glanceclient's status-less errors (`CommunicationError`, `InvalidEndpoint`
  for a timeout, an `HTTPException` with no code: a status glanceclient has no class
  for, such as 429 or 504) count as transient too;
- terminal: any other 4xx, and every quota refusal (Neutron's 409 "Quota exceeded",
  Nova/Cinder/Glance 413, Keystone 403): waiting does not raise a quota.

A stale connection (one the server closed while it sat idle in the pool: Keystone drops
them after ~2 s; reset or aborted before any answer) is retried AT ONCE, once, when the
request was idempotent (GET, HEAD, PUT, DELETE, OPTIONS) and the call has no re-read;
any other (a POST, or a create with its `recover`) goes the ordinary way, after the
backoff and the caller's re-read, so a create is never sent twice.

Backoff doubles from `base_delay` up to `max_delay`, with jitter, for at most `attempts`
tries and within a time budget per resource (`Budget`, `--retry-budget`): apply starts
one budget per change and spends it over all the requests of that change. The error that
ends a retried call says how many attempts were made.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bootstrap.errors import AmbiguousResource, CloudError, Conflict, Forbidden, NotFound

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_BUDGET = 300.0


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time: tests patch time.sleep


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried. Made once (from `--retry-budget`) and passed explicitly."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    budget: float = DEFAULT_BUDGET  # seconds per resource, all its requests together
    sleep: Callable[[float], None] = _sleep
    clock: Callable[[], float] = time.monotonic

    def start(self, cancel: Any = None) -> Budget:
        """A fresh budget: one per resource of an apply, one per read of a plan."""
        return Budget(self, self.clock() + self.budget, cancel)


@dataclass
class Budget:
    """The time left for one resource's requests; `cancel` (an Interrupt) ends waits."""

    policy: RetryPolicy
    deadline: float
    cancel: Any = None

    def remaining(self) -> float:
        return self.deadline - self.policy.clock()

    def wait(self, delay: float) -> bool:
        """Sleep `delay`; False when interrupted meanwhile (the caller stops retrying)."""
        if self.cancel is not None:
            return not self.cancel.wait(delay)
        self.policy.sleep(delay)
        return True


def status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "http_status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _is_connection_error(exc: BaseException) -> bool:
    from keystoneauth1 import exceptions as ks_exc

    if isinstance(exc, (ks_exc.ConnectFailure, ks_exc.ConnectionError, ConnectionError)):
        return True
    try:
        import requests

        if isinstance(exc, requests.exceptions.ConnectionError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return _is_glance_transient(exc)


IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the exceptions in its args
    (keystoneauth wraps requests, which wraps urllib3, which wraps http.client)."""
    out: list[BaseException] = []
    todo = [exc]
    while todo and len(out) < 20:
        e = todo.pop()
        if e in out:
            continue
        out.append(e)
        todo += [a for a in (e.__cause__, e.__context__, *e.args) if isinstance(a, BaseException)]
    return out


def is_stale_connection(exc: BaseException) -> bool:
    """A pooled connection the server had closed: reset or aborted before any answer
    (not a refused or unreachable host, not a timeout: those are the cloud's state)."""
    import http.client

    chain = _chain(exc)
    if any(isinstance(e, (ConnectionRefusedError, TimeoutError)) for e in chain):
        return False
    stale = (
        http.client.RemoteDisconnected,
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
    )
    return any(isinstance(e, stale) for e in chain)


def request_method(exc: BaseException) -> str | None:
    """The HTTP method of the request that failed, when the error carries it."""
    for e in _chain(exc):
        method = getattr(getattr(e, "request", None), "method", None)
        if isinstance(method, str):
            return method.upper()
    return None


def _is_glance_transient(exc: BaseException) -> bool:
    """glanceclient reports resets and timeouts without a status, and turns statuses it
    has no class for (429, 504) into an `HTTPException` whose code is 'N/A'."""
    try:
        from glanceclient import exc as g_exc
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, (g_exc.CommunicationError, g_exc.InvalidEndpoint)):
        return True
    return type(exc) is g_exc.HTTPException and not isinstance(exc.code, int)


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if not value:
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None  # an HTTP date: the backoff applies


def is_quota(status: int | None, message: str) -> bool:
    """A quota refusal, whatever the service calls it: terminal."""
    text = message.lower()
    return status == 413 or (status in (403, 409) and ("quota" in text or "limit" in text))


def classify(exc: BaseException, address: str | None = None) -> CloudError:
    """Map any client library's exception onto the tool's error tree."""
    if isinstance(exc, CloudError):
        if address and not exc.address:
            exc.address = address
        return exc
    status = status_of(exc)
    message = _message_of(exc)
    request_id = getattr(exc, "request_id", None)
    if status is None and _is_connection_error(exc):
        return CloudError(f"connection failed: {message}", address, None, True, request_id)
    cls: type[CloudError] = {404: NotFound, 409: Conflict, 403: Forbidden}.get(
        status or 0, CloudError
    )
    # A 409 is an operation in flight (retry) unless it is a quota refusal.
    retryable = not is_quota(status, message) and (status in RETRYABLE_STATUS or status == 409)
    err = cls(message, address, status, retryable, request_id)
    retry_after = _retry_after(exc)
    if retry_after:
        err.extra["retry_after"] = retry_after
    return err


def _message_of(exc: BaseException) -> str:
    for attr in ("details", "message"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value and value != "None":
            return value.strip()
    text = str(exc).strip()
    return text or type(exc).__name__


def _gave_up(err: CloudError, attempt: int, why: str = "") -> CloudError:
    if attempt > 1 or why:
        plural = "s" if attempt > 1 else ""
        err.message = f"{err.message} (gave up after {attempt} attempt{plural}{why})"
        err.args = (err.message,)
    err.extra["attempts"] = attempt
    return err


def with_retries(
    fn: Callable[[], T],
    *,
    address: str | None = None,
    policy: RetryPolicy | None = None,
    budget: Budget | None = None,
    recover: Callable[[], T | None] | None = None,
    attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """THE retry policy: every read and every write of the tool goes through it.

    `budget` (from `policy.start()`) is the time left for the resource; without it a
    fresh one is started. `recover`, for a call that is not idempotent (a create), runs
    before each retry: when it returns something, the lost attempt did happen and that
    is the result. The keyword overrides (`attempts`, delays, `sleep`) are for tests.
    """
    policy = policy or (budget.policy if budget else RetryPolicy())
    overrides = {
        k: v
        for k, v in (
            ("attempts", attempts),
            ("base_delay", base_delay),
            ("max_delay", max_delay),
            ("sleep", sleep),
        )
        if v is not None
    }
    if overrides:
        policy = RetryPolicy(**{**policy.__dict__, **overrides})
        budget = Budget(policy, budget.deadline, budget.cancel) if budget else None
    budget = budget or policy.start()
    stale_retried = False
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except AmbiguousResource:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised if final
            err = classify(exc, address)
            if not err.retryable or attempt == policy.attempts:
                raise _gave_up(err, attempt) from exc
            if (
                not stale_retried
                and recover is None
                and is_stale_connection(exc)
                and request_method(exc) in IDEMPOTENT
            ):
                # The server closed an idle pooled connection: nothing reached it, and
                # the request may be repeated; a fresh connection is made at once.
                stale_retried = True
                log.info("%s: %s; stale connection, retrying now", address or "request", err)
                continue
            delay = float(err.extra.get("retry_after") or policy.base_delay * 2 ** (attempt - 1))
            delay = min(delay, policy.max_delay) * random.uniform(1.0, 1.25)
            left = budget.remaining()
            if delay > left:
                spent = f"; the retry budget of {policy.budget:g}s is spent"
                raise _gave_up(err, attempt, spent) from exc
            log.info("%s: %s; retrying in %.1fs", address or "request", err, delay)
            if not budget.wait(delay):
                raise _gave_up(err, attempt, "; interrupted") from exc
            if recover is not None:
                found = recover()
                if found is not None:
                    return found
    raise AssertionError("unreachable")  # pragma: no cover
