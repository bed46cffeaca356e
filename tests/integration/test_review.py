"""Review and automation formats against the real local cloud: --target plans and applies
only a part of the manifest (with what it needs), every JSON plan validates against
schemas/plan.schema.json, apply --summary-json against schemas/summary.schema.json, and
the markdown plan carries the same changes. Names start with `rv-<random>-`."""

from __future__ import annotations

import json
import secrets

import jsonschema
import pytest

from bootstrap.cli import main
from tests.integration import test_compute_kinds as compute
from tests.integration.engine_util import connect, write_manifest
from tests.unit.test_review_formats import validator

PASSWORD = "rv-pw-" + secrets.token_hex(6)

MANIFEST = """
projects:
  - name: {n}acme
    description: targeted
  - name: {n}other
    description: left out
users:
  - name: {n}alice
    default_project: {n}acme
    password: {env: RV_ALICE_PW}
networks:
  - {name: {n}net, project: {n}other}
"""


@pytest.fixture
def n():
    return f"rv-{secrets.token_hex(4)}-"


@pytest.fixture
def env(devcloud_clouds_yaml, monkeypatch, n):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(devcloud_clouds_yaml))
    monkeypatch.setenv("RV_ALICE_PW", PASSWORD)
    steps = compute.cleanup.__wrapped__(n)
    next(steps)
    yield
    c = connect()
    mine = {p.id for p in c.keystone.projects.list() if p.name.startswith(n)}
    next(steps, None)
    # Neutron made a `default` security group in each of this test's projects.
    for sg in c.network.security_groups():
        if sg.project_id in mine:
            c.network.delete_security_group(sg)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([args[0], *args[1:], "--cloud", "devcloud"])
    out, err = capsys.readouterr()
    return code, out, err


def names(items) -> set[str]:
    return {i.name for i in items}


def test_target_plans_and_applies_a_part_with_its_dependencies(tmp_path, n, env, capsys):
    plan_schema = validator("plan.schema.json")
    path = write_manifest(tmp_path, MANIFEST.replace("{n}", n))
    alice = f"users.{n}alice"

    code, full_json, _ = cli(capsys, "plan", path, "--format", "json")
    full = json.loads(full_json)
    plan_schema.validate(full)
    assert code == 0 and full["summary"]["create"] == 4 and full["targets"] is None

    code, out, _ = cli(capsys, "plan", path, "--format", "json", "--target", alice)
    doc = json.loads(out)
    plan_schema.validate(doc)
    assert PASSWORD not in out
    assert {c["address"]: c["action"] for c in doc["changes"]} == {
        f"projects.{n}acme": "create",
        alice: "create",
    }
    assert doc["targets"]["pulled_in"] == [
        {"address": f"projects.{n}acme", "reason": f"{alice} refers to it (default_project)"}
    ]
    # Only the kinds of the targeted part are read: fewer requests than the whole plan.
    assert doc["requests"] < full["requests"]

    code, md, _ = cli(capsys, "plan", path, "--format", "markdown", "--target", alice)
    assert code == 0 and PASSWORD not in md
    assert md.startswith("### Plan: 2 to create, 0 to update")
    assert f"- pulled in `projects.{n}acme`: {alice} refers to it" in md
    assert md.count("<details>") == 2 and "+ password: (sensitive)" in md

    code, _, err = cli(capsys, "plan", path, "--target", f"projects.{n}acm")
    assert code == 1 and f"did you mean projects.{n}acme" in err
    code, _, err = cli(capsys, "plan", path, "--target", alice, "--prune", "--stack", "rvs")
    assert code == 1 and "--prune cannot be combined with --target" in err

    summary = tmp_path / "summary.json"
    code, out, _ = cli(
        capsys, "apply", path, "--yes", "--target", alice, "--summary-json", str(summary)
    )
    assert code == 0, out
    assert f"pulled in projects.{n}acme: {alice} refers to it (default_project)" in out
    s = json.loads(summary.read_text())
    validator("summary.schema.json").validate(s)
    assert (s["status"], s["exit_code"]) == ("changed", 0)
    assert s["outcomes"]["created"] == 2 and s["failures"] == []
    assert s["requests"]["apply"] >= 2 and PASSWORD not in summary.read_text()

    # What the cloud holds, seen through the client libraries alone.
    c = connect()
    projects = {p.name: p for p in c.keystone.projects.list() if p.name.startswith(n)}
    assert set(projects) == {f"{n}acme"}
    users = [u for u in c.keystone.users.list() if u.name.startswith(n)]
    assert [(u.name, u.default_project_id) for u in users] == [
        (f"{n}alice", projects[f"{n}acme"].id)
    ]
    assert not [x for x in c.network.networks() if x.name.startswith(n)]

    # The rest of the manifest is still to do; then a whole apply converges.
    code, out, _ = cli(capsys, "plan", path, "--format", "json", "--detailed-exitcode")
    rest = json.loads(out)
    plan_schema.validate(rest)
    assert code == 2
    assert {c["address"] for c in rest["changes"] if c["action"] != "no-op"} == {
        f"projects.{n}other",
        f"networks.{n}other/{n}net",
    }
    code, _, _ = cli(
        capsys, "apply", path, "--yes", "--detailed-exitcode", "--summary-json", str(summary)
    )
    assert code == 0
    s = json.loads(summary.read_text())
    validator("summary.schema.json").validate(s)
    assert s["outcomes"]["created"] == 2 and s["outcomes"]["unchanged"] == 2
    code, out, _ = cli(capsys, "plan", path, "--format", "json", "--detailed-exitcode")
    plan_schema.validate(json.loads(out))
    assert code == 0

    # A destructive edit without --allow-destroy: held back, exit 2, and the record says so.
    moved = write_manifest(
        tmp_path,
        MANIFEST.replace("    description: left out", "    description: left out\n"
                         "    parent: {n}acme").replace("{n}", n),
        "moved.yaml",
    )
    code, _, _ = cli(
        capsys, "apply", moved, "--yes", "--detailed-exitcode", "--summary-json", str(summary)
    )
    s = json.loads(summary.read_text())
    validator("summary.schema.json").validate(s)
    assert (code, s["status"], s["exit_code"]) == (2, "held-back", 2)
    assert f"projects.{n}other" in {h["address"] for h in s["held_back"]}
    other = [p for p in c.keystone.projects.list() if p.name == f"{n}other"]
    assert [p.parent_id for p in other] == [other[0].domain_id]  # not moved

    # A document the tool did not write fails the published schema.
    bad = json.loads(out)
    bad["changes"][0]["action"] = "recreate"
    with pytest.raises(jsonschema.ValidationError):
        plan_schema.validate(bad)
