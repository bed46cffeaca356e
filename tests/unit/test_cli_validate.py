"""`bootstrap validate` and `bootstrap graph` through cli.main: output, formats, exit codes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bootstrap.cli import EXIT_ERROR, EXIT_OK, main

REPO = Path(__file__).resolve().parents[2]
SECRET = "c0rrect-horse-battery-staple"


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


VALID = """
projects: [{name: acme}]
users: [{name: bob, password: {env: BOB_PASSWORD}, default_project: acme}]
"""


def test_validate_ok(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BOB_PASSWORD", SECRET)
    assert main(["validate", write(tmp_path, VALID)]) == EXIT_OK
    assert capsys.readouterr().out == "ok: 2 resources in 1 file\n"


def test_validate_counts_files_and_warnings(tmp_path, capsys):
    write(tmp_path, "projects: [{name: acme}]", "a.yaml")
    write(tmp_path, "users: [{name: bob, password: hunter2}]", "b.yml")
    assert main(["validate", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(
        "warning: password written inline; use {env: ...} or {file: ...} [users.bob]"
    )
    assert out[-1] == "ok: 2 resources in 2 files (1 warning)"


def test_validate_errors_exit_1_with_located_lines(tmp_path, capsys):
    path = write(
        tmp_path, "projects:\n  - nmae: acme\nusers: [{name: bob, default_project: acm}]\n"
    )
    assert main(["validate", path]) == EXIT_ERROR
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"{path}:2:5: error: unknown field 'nmae' in projects[0]; did you mean 'name'?"
        " [projects[0]]"
    )
    assert out[-1] == "3 errors"


def test_validate_json(tmp_path, capsys):
    path = write(tmp_path, "projects: [{name: acme, enabled: maybe}]")
    assert main(["validate", "--format", "json", path]) == EXIT_ERROR
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1 and doc["valid"] is False and doc["resources"] == 1
    (d,) = doc["diagnostics"]
    assert (d["file"], d["line"], d["column"], d["severity"]) == (path, 1, 34, "error")
    assert d["address"] == "projects.acme"


def test_validate_unreadable_manifest(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing.yaml")]) == EXIT_ERROR
    assert "no such file or directory" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["text", "dot", "mermaid"])
def test_graph_formats(tmp_path, capsys, fmt):
    path = write(tmp_path, "projects: [{name: acme}]\nnetworks: [{name: net, project: acme}]\n")
    assert main(["graph", path, "--format", fmt]) == EXIT_OK
    out = capsys.readouterr().out
    if fmt == "text":
        assert out == "stage 1: projects.acme\nstage 2: networks.acme/net\n"
    elif fmt == "dot":
        assert out.startswith("digraph manifest {")
        assert '"projects.acme" -> "networks.acme/net" [label="project"];' in out
    else:
        assert out.startswith("flowchart LR")
        assert 'n0["projects.acme"]' in out and "n0 --> n1" in out


def test_graph_of_an_invalid_manifest_fails(tmp_path, capsys):
    path = write(tmp_path, "projects: [{name: a, parent: b}, {name: b, parent: a}]")
    assert main(["graph", path]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "dependency cycle: projects.a -> projects.b -> projects.a" in captured.err


def test_the_examples_validate_and_graph(capsys, monkeypatch):
    monkeypatch.setenv("ACME_ADMIN_PASSWORD", SECRET)
    monkeypatch.setenv("TEAM_A_ADMIN_PASSWORD", SECRET)
    for example in sorted((REPO / "manifests").glob("*.yaml")):
        assert main(["validate", str(example)]) == EXIT_OK, capsys.readouterr().out
        assert main(["graph", str(example)]) == EXIT_OK
    assert SECRET not in capsys.readouterr().out


def test_secrets_appear_in_no_output(tmp_path, capsys, monkeypatch):
    """Every output of validate and graph, valid or not, text or json: no secret value."""
    monkeypatch.setenv("BOB_PASSWORD", SECRET)
    (tmp_path / "pw").write_text(SECRET + "-file\n")
    good = write(
        tmp_path,
        f"""
        projects: [{{name: acme}}]
        users:
          - {{name: bob, password: {{env: BOB_PASSWORD}}}}
          - {{name: eve, password: {{file: pw}}}}
          - {{name: mal, password: "{SECRET}-inline"}}
        servers:
          - {{name: vm, project: acme, user_data: "{SECRET}-userdata"}}
        """,
        "good.yaml",
    )
    bad = write(
        tmp_path,
        f"""
        users:
          - {{name: bob, password: {{env: BOB_PASSWORD}}, default_project: nope}}
          - {{name: joe, password: ["{SECRET}-list"]}}
          - {{name: ann, password: {{env: BOB_PASSWORD, file: "{SECRET}-path"}}}}
        """,
        "bad.yaml",
    )
    outputs = []
    for args in (
        ["validate", good],
        ["validate", "--format", "json", good],
        ["validate", bad],
        ["validate", "--format", "json", bad],
        ["graph", good],
        ["graph", good, "--format", "dot"],
        ["graph", good, "--format", "mermaid"],
        ["graph", bad],
    ):
        main(args)
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    assert all(SECRET not in text for text in outputs), [t for t in outputs if SECRET in t]
    assert "servers.acme/vm" in outputs[4]  # the outputs were not empty


def test_allow_destroy_refuses_a_path_taken_for_an_address(tmp_path, capsys):
    from bootstrap.cli import main

    manifest = tmp_path / "b.yaml"
    manifest.write_text("version: 1\n")
    with pytest.raises(SystemExit) as exit_:
        main(["apply", str(tmp_path / "a.yaml"), "--allow-destroy", str(manifest)])
    assert exit_.value.code == 2
    assert "names a file, not an address" in capsys.readouterr().err


def test_allow_destroy_takes_addresses_and_globs():
    from bootstrap.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["plan", "m.yaml"]).allow_destroy == []
    assert parse(["plan", "m.yaml", "--allow-destroy"]).allow_destroy == ["*"]
    args = parse(["apply", "m.yaml", "--allow-destroy", "servers.acme/*", "--allow-destroy=x.y"])
    assert args.allow_destroy == ["servers.acme/*", "x.y"]
