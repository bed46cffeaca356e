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
