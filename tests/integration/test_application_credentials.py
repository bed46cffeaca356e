"""application_credentials against the real local cloud: the tool's own user's, and another
user's (made by logging in as that user with the manifest's password).

apply -> the secret files (0600) authenticate, the secrets appear in no plan -> apply
again (0 writes) -> out of band, one credential is deleted and made again by hand with
another description -> the plan replaces exactly it (destructive; held back without
--allow-destroy) -> apply with permission writes a new working secret -> a lost secret
file is a plan error -> state: absent deletes both -> absent again writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import stat

import pytest

from bootstrap.errors import PlanError
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest


@pytest.fixture
def n():
    return f"ck-{secrets.token_hex(3)}-"


@pytest.fixture
def cleanup(n):
    yield
    ks = connect().keystone
    me = connect().user_id
    for a in ks.application_credentials.list(user=me):
        if a.name.startswith(n):
            with contextlib.suppress(Exception):
                ks.application_credentials.delete(a.id, user=me)
    for u in ks.users.list():
        if u.name.startswith(n):
            with contextlib.suppress(Exception):
                ks.users.delete(u)  # takes its credentials along
    for p in ks.projects.list():
        if p.name.startswith(n):
            with contextlib.suppress(Exception):
                ks.projects.delete(p)


def ok(run) -> None:
    assert run.result is not None, "nothing was applied"
    assert run.result.ok, {str(r.address): str(r.error) for r in run.result.failed}


def changes(p) -> dict[str, tuple[str, list[str], bool]]:
    return {
        str(c.address): (c.action.value, sorted(f.field for f in c.fields), c.destructive)
        for c in p.changes
        if c.is_change
    }


def token_with(cloud, app_id: str, secret: str) -> str:
    """A token from the application credential alone (proves the secret works)."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    auth = v3.ApplicationCredential(
        auth_url=cloud.auth_url,
        application_credential_id=app_id,
        application_credential_secret=secret,
    )
    return session.Session(auth=auth).get_token()


MANIFEST = """
projects:
  - name: admin
  - name: {n}proj
roles:
  - name: member
users:
  - name: {n}bob
    password: {file: bob.pw}
role_assignments:
  - {user: {n}bob, project: {n}proj, role: member}
application_credentials:
  - name: {n}mine
    project: admin
    description: the tool's own
    roles: [reader]
    expires_at: "2031-06-01T12:00:00+02:00"
    access_rules:
      - {service: identity, method: GET, path: "/v3/users/*"}
      - {service: compute, method: GET, path: /v2.1/servers}
    secret_file: secrets/mine
  - name: {n}theirs
    user: {n}bob
    project: {n}proj
    roles: [member]
    expires_at: "2030-01-01T00:00:00"
    secret_file: secrets/theirs
"""


@pytest.mark.lifecycle("application_credentials")
def test_application_credentials_lifecycle(tmp_path, n, cleanup):
    (tmp_path / "bob.pw").write_text(f"Bob-{secrets.token_hex(8)}\n")
    text = MANIFEST.replace("{n}", n)
    path = write_manifest(tmp_path, text)
    mine, theirs = f"application_credentials.{n}mine", f"application_credentials.{n}bob/{n}theirs"
    first = apply(path)
    ok(first)
    assert first.actions()[mine] == "create" and first.actions()[theirs] == "create"

    cloud = connect()
    ks = cloud.keystone
    (bob,) = [u for u in ks.users.list() if u.name == f"{n}bob"]
    (live_mine,) = [
        a for a in ks.application_credentials.list(user=cloud.user_id) if a.name == f"{n}mine"
    ]
    (live_theirs,) = ks.application_credentials.list(user=bob.id)
    assert "member" in {r["name"] for r in live_theirs.roles}
    assert [r["name"] for r in live_mine.roles] == ["reader"]
    assert live_mine.expires_at.startswith("2031-06-01T10:00:00")
    assert sorted(r["path"] for r in live_mine.access_rules) == ["/v2.1/servers", "/v3/users/*"]
    for file, live in (("mine", live_mine), ("theirs", live_theirs)):
        secret_path = tmp_path / "secrets" / file
        assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
        secret = secret_path.read_text().strip()
        assert token_with(cloud, live.id, secret)
        # Never in a plan (what the CLI prints and saves).
        assert secret not in json.dumps(first.plan.to_json())
    assert_converged(path)

    # Out of band: the own credential deleted and made again by hand, another description.
    old_secret = (tmp_path / "secrets" / "mine").read_text().strip()
    ks.application_credentials.delete(live_mine.id, user=cloud.user_id)
    ks.application_credentials.create(
        f"{n}mine",
        user=cloud.user_id,
        description="by hand",
        roles=[{"name": "reader"}],
        expires_at=datetime.datetime(2031, 6, 1, 10, 0, 0),
        access_rules=[
            {"service": "compute", "method": "GET", "path": "/v2.1/servers"},
            {"service": "identity", "method": "GET", "path": "/v3/users/*"},
        ],
    )
    assert changes(plan(path)) == {mine: ("replace", ["description"], True)}
    held = apply(path)
    assert held.writes == 0 and [str(r.address) for r in held.result.held] == [mine]
    ok(apply(path, allow_destroy=True))
    assert_converged(path)
    (live_mine,) = [
        a for a in ks.application_credentials.list(user=cloud.user_id) if a.name == f"{n}mine"
    ]
    new_secret = (tmp_path / "secrets" / "mine").read_text().strip()
    assert new_secret != old_secret and token_with(cloud, live_mine.id, new_secret)

    # A lost secret file cannot be written again: a plan error, not a silent re-create.
    kept = (tmp_path / "secrets" / "theirs").read_bytes()
    (tmp_path / "secrets" / "theirs").unlink()
    with pytest.raises(PlanError, match="secret file"):
        plan(path)
    (tmp_path / "secrets" / "theirs").write_bytes(kept)

    absent_text = text.replace(
        "secret_file: secrets/mine\n", "secret_file: secrets/mine\n    state: absent\n"
    ).replace("secret_file: secrets/theirs\n", "secret_file: secrets/theirs\n    state: absent\n")
    absent = write_manifest(tmp_path, absent_text, "absent.yaml")
    gone = apply(absent, allow_destroy=True)
    ok(gone)
    assert gone.actions() == {mine: "delete", theirs: "delete"}
    assert ks.application_credentials.list(user=bob.id) == []
    again = apply(absent)
    assert again.actions() == {} and again.writes == 0
