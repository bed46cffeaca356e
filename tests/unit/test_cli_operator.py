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
    ) == ("application credential id ac1 of user ?")
