"""The Cloud's HTTP session: keystoneauth's token is the only authentication."""

from __future__ import annotations

import requests
from keystoneauth1 import session as ks_session

from bootstrap.cloud import Cloud


class Region:
    """Just what Cloud asks of openstacksdk's CloudRegion."""

    def __init__(self, session):
        self._session = session

    def get_session(self):
        return self._session

    def get_region_name(self):
        return "RegionOne"

    def get_interface(self):
        return "public"


def test_no_netrc_lookup_or_credentials(tmp_path, monkeypatch):
    """requests would look for ~/.netrc on every request (file lookups: a fifth of an
    apply's client work per write) and send what it finds as Basic auth."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    plain = requests.Session()
    assert "Authorization" in plain.prepare_request(
        requests.Request("GET", "http://127.0.0.1:5000/v3")
    ).headers  # the lookup this guards against

    cloud = Cloud(Region(ks_session.Session()))
    prepared = cloud.session.session.prepare_request(
        requests.Request("GET", "http://127.0.0.1:5000/v3")
    )
    assert "Authorization" not in prepared.headers


def test_as_many_connections_as_an_apply_runs_are_kept(caplog):
    """40 requests at once to one host (an apply at its adaptive maximum, the poller
    besides): every connection goes back to the pool, none is dropped with a warning."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            time.sleep(0.05)  # long enough for all 40 to be open at once
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        http = Cloud(Region(ks_session.Session())).session.session
        url = f"http://127.0.0.1:{server.server_port}/"
        with caplog.at_level("WARNING", logger="urllib3"), ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(lambda _: http.get(url).status_code, range(40)))
    finally:
        server.shutdown()
    assert codes == [200] * 40
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
