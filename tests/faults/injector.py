"""Faults at the HTTP layer of the tool's one session, for the fault-injection tier.

`FaultInjector` is a requests transport adapter mounted on the keystoneauth session the
tool's clients share (`Cloud.session.session`): every request of every client library
passes through it. For each request it draws, with a seeded random generator, whether
and how it fails:

  before   the connection is reset before the request is sent (nothing reached the cloud)
  lost     the request is sent and completed by the cloud, then the answer is lost
  delay    the answer arrives late (0.3-1.5 s)
  429      "Too Many Requests" with Retry-After: 1 (the cloud saw nothing)
  5xx      a synthetic 500/502/503 (the cloud saw nothing)

Only requests to the loopback cloud (127.0.0.1 / localhost) are faulted; token requests
are left alone (the tool does not retry authentication, keystoneauth does). The tally of
what was injected is written to a JSON file when the process ends.
"""

from __future__ import annotations

import atexit
import json
import random
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

KINDS = ("before", "lost", "delay", "429", "5xx")
LOOPBACK = ("127.0.0.1", "localhost")


class FaultInjector(HTTPAdapter):
    def __init__(self, seed: int, rate: float, kinds: tuple[str, ...] = KINDS):
        super().__init__()
        self.rate = rate
        self.kinds = kinds
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests = 0

    def _draw(self, request: requests.PreparedRequest) -> str | None:
        url = urlsplit(request.url)
        if url.hostname not in LOOPBACK or url.path.endswith("/auth/tokens"):
            return None
        with self.lock:
            self.requests += 1
            if self.random.random() >= self.rate:
                return None
            kind = self.random.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        kind = self._draw(request)
        if kind == "before":
            raise requests.exceptions.ConnectionError(
                "injected: connection reset by peer before the request was sent",
                request=request,
            )
        if kind in ("429", "5xx"):
            return self._fake(request, kind)
        if kind == "delay":
            time.sleep(0.3 + 1.2 * self.random.random())
        response = super().send(request, **kwargs)
        if kind == "lost":
            response.close()
            raise requests.exceptions.ConnectionError(
                "injected: connection reset by peer after the cloud completed "
                f"{request.method} {urlsplit(request.url).path}",
                request=request,
            )
        return response

    def _fake(self, request: requests.PreparedRequest, kind: str) -> requests.Response:
        status = 429 if kind == "429" else self.random.choice((500, 502, 503))
        resp = requests.Response()
        resp.status_code = status
        resp.reason = "injected"
        resp.request = request
        resp.url = request.url or ""
        resp.headers["Content-Type"] = "application/json"
        if status == 429:
            resp.headers["Retry-After"] = "1"
        name = "overLimit" if status == 429 else "computeFault"
        body = {name: {"code": status, "message": f"injected {status}"}}
        resp._content = json.dumps(body).encode()
        return resp

    def stats(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "injected": dict(self.injected)}


def install(session, injector: FaultInjector) -> None:
    """Mount on a keystoneauth Session (or a requests Session) for the loopback cloud."""
    raw = getattr(session, "session", session)
    for prefix in ("http://127.0.0.1", "http://localhost"):
        raw.mount(prefix, injector)


def write_stats_at_exit(injector: FaultInjector, path: str) -> None:
    def dump() -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(injector.stats(), fh)

    atexit.register(dump)
