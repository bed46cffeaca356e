"""Stale connections: a server that drops a pooled connection as the next request
arrives (Keystone closes those idle ~2 s). A real HTTP exchange on 127.0.0.1 through a
keystoneauth session, so the error chain is the one the client libraries produce."""

from __future__ import annotations

import socket
import threading

import pytest
from keystoneauth1 import session as ks_session

from bootstrap.cloud import RequestCounter
from bootstrap.retry import RetryPolicy, is_stale_connection, request_method, with_retries

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class DroppingServer:
    """Answers the first request of each connection; reads the second and closes the
    connection without answering, as a server closing an idle connection does when the
    close crosses the client's next request."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [
            int(h.split(b":")[1])
            for h in head.split(b"\r\n")
            if h.lower().startswith(b"content-length")
        ]
        length = lengths[0] if lengths else 0
        while len(body) < length:
            body += conn.recv(65536)
        return head.split(b" ")[0].decode()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            method = self._read_request(conn)
            if method is None:
                return
            self.requests.append(method)
            conn.sendall(OK)
            method = self._read_request(conn)
            if method is not None:
                self.requests.append(method)  # seen, never answered: the drop
            conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    s = DroppingServer()
    yield s
    s.close()


def _session(counter: RequestCounter) -> ks_session.Session:
    sess = ks_session.Session()
    counter.wrap(sess.session)
    return sess


def test_an_idempotent_request_is_retried_at_once_on_a_dropped_connection(server):
    counter = RequestCounter()
    sess = _session(counter)
    url = f"http://127.0.0.1:{server.port}/v3/projects"
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append)
    call = lambda: sess.get(url, authenticated=False).json()  # noqa: E731
    assert with_retries(call, policy=policy) == {}
    # Reuses the pooled connection, which the server drops: retried at once, no wait.
    assert with_retries(call, policy=policy) == {}
    assert sleeps == []
    assert server.requests == ["GET", "GET", "GET"]
    # Every attempt counted, the unanswered one too.
    assert counter.snapshot() == {"GET": 3}


def test_a_post_on_a_dropped_connection_is_not_repeated_before_the_re_read(server):
    counter = RequestCounter()
    sess = _session(counter)
    url = f"http://127.0.0.1:{server.port}/v3/projects"
    sleeps: list[float] = []
    recovered: list[str] = []

    def recover():
        recovered.append("re-read")
        return {"id": "found"}  # the lost create did happen: no second POST

    policy = RetryPolicy(sleep=sleeps.append)
    sess.get(url, authenticated=False)
    create = lambda: sess.post(url, json={"name": "x"}, authenticated=False).json()  # noqa: E731
    assert with_retries(create, policy=policy, recover=recover) == {"id": "found"}
    assert recovered == ["re-read"] and len(sleeps) == 1
    assert server.requests == ["GET", "POST"]
    assert counter.snapshot() == {"GET": 1, "POST": 1}


def test_stale_is_told_from_refused(server):
    sess = ks_session.Session()
    url = f"http://127.0.0.1:{server.port}/"
    sess.get(url, authenticated=False)
    with pytest.raises(Exception) as dropped:
        sess.put(url, json={}, authenticated=False)
    assert is_stale_connection(dropped.value) and request_method(dropped.value) == "PUT"
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(Exception) as refused:
        sess.get(f"http://127.0.0.1:{port}/", authenticated=False)
    assert not is_stale_connection(refused.value)
