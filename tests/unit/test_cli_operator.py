"""What an operator sees before any cloud work: refusals and credential errors, early."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from bootstrap.cli import EXIT_ERROR, main
from bootstrap.cloud import Cloud


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if the CLI tries to reach a cloud."""

    def connect(*args, **kwargs):
        raise AssertionError("the CLI connected to the cloud")

    monkeypatch.setattr(Cloud, "connect", classmethod(lambda cls, *a, **k: connect()))


def test_apply_without_yes_and_terminal_refuses_before_connecting(
    tmp_path, capsys, monkeypatch, no_connect
):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    path = write(tmp_path, "projects: [{name: acme}]")
    assert main(["apply", path, "--cloud", "nowhere"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "not a terminal: pass --yes" in err
    assert "nothing was read or changed" in err


def test_describe_auth_names_who_and_scope_never_the_secret():
    from bootstrap.cloud import describe_auth

    assert (
        describe_auth(
            {
                "username": "bob",
                "password": "pw",
                "user_domain_name": "Default",
                "project_id": "p1",
                "project_domain_id": "default",
            }
        )
        == "user 'bob' (in domain 'Default'), project id p1 (in domain id default)"
    )
    assert describe_auth({"user_id": "u1", "domain_name": "acme"}) == ("user id u1, domain 'acme'")
    assert describe_auth(
        {"application_credential_id": "ac1", "application_credential_secret": "s"}
    ) == ("application credential id ac1")


def _cloud_failing_with(exc):
    from types import SimpleNamespace

    def get_access(session):
        raise exc

    cloud = object.__new__(Cloud)
    cloud.region = SimpleNamespace(
        name="prod",
        config={"auth": {"auth_url": "https://keystone.example:5000/v3", "username": "ops",
                         "password": "pw", "project_name": "infra"}},
    )  # fmt: skip
    cloud.session = SimpleNamespace(auth=SimpleNamespace(get_access=get_access))
    return cloud


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "authentication failed for user 'ops', project 'infra' at "
              "https://keystone.example:5000/v3 (cloud 'prod'): the identity service "
              "answered HTTP 401"),
        (503, "the identity service at https://keystone.example:5000/v3 (cloud 'prod') "
              "failed to issue a token: HTTP 503"),
    ],
)  # fmt: skip
def test_authenticate_says_who_where_and_what_the_cloud_answered(status, expected):
    from keystoneauth1 import exceptions as ks_exc

    from bootstrap.errors import ConfigError

    exc = ks_exc.from_response(
        type("R", (), {"status_code": status, "headers": {}, "text": "", "json": dict})(),
        "POST",
        "https://keystone.example:5000/v3/auth/tokens",
    )
    with pytest.raises(ConfigError) as err:
        _cloud_failing_with(exc).authenticate()
    assert expected in str(err.value)
    assert "--cloud NAME or OS_CLOUD" in str(err.value) and "pw" not in str(err.value)
