"""`apply --summary-json FILE` through the CLI, on the in-memory cloud: written on every
outcome (converged, nothing to do, failed part-way, refused before reading), valid
against schemas/summary.schema.json, secrets masked, the exit code the process returns."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from bootstrap import engine
from bootstrap.cli import main
from bootstrap.cloud import Cloud
from bootstrap.errors import CloudError
from tests.unit.fakes import MemoryCloud, fake_drivers
from tests.unit.test_cli_operator import write
from tests.unit.test_review_formats import validator

SECRET = "pw-very-secret-42"

MANIFEST = """
projects:
  - {name: broken}
  - {name: fine, description: ok}
users:
  - {name: bob, default_project: broken, password: {env: SUMMARY_PW}}
  - {name: carol, default_project: fine}
"""


@pytest.fixture
def cloud(monkeypatch):
    c = MemoryCloud()
    c.store["domains"]["default"] = {"name": "Default"}
    monkeypatch.setattr(Cloud, "connect", classmethod(lambda cls, *a, **k: c))
    monkeypatch.setattr(engine, "instantiate_drivers", fake_drivers)
    monkeypatch.setenv("SUMMARY_PW", SECRET)
    return c


def run(tmp_path, *extra: str) -> tuple[int, dict, str]:
    path = write(tmp_path, MANIFEST)
    out = tmp_path / "summary.json"
    code = main(["apply", path, "--yes", "--summary-json", str(out), *extra])
    text = out.read_text()
    doc = json.loads(text)
    validator("summary.schema.json").validate(doc)
    assert doc["exit_code"] == code
    return code, doc, text


def test_failed_part_way_names_the_root_cause_masked(tmp_path, cloud):
    cloud.fail[("create", "projects.broken")] = [
        CloudError(f"400 Bad Request: password {SECRET} rejected", status=400)
    ]
    code, doc, text = run(tmp_path)
    assert code == 1 and doc["status"] == "failed"
    assert SECRET not in text
    (failure,) = doc["failures"]
    assert failure["address"] == "projects.broken"
    assert "(sensitive)" in failure["error"] and "400 Bad Request" in failure["error"]
    assert failure["skipped"] == ["users.bob"]
    assert doc["outcomes"]["created"] == 2 and doc["outcomes"]["skipped"] == 1
    assert doc["plan"]["create"] == 4
    assert doc["requests"]["apply"] == len(cloud.writes())
    d = doc["durations"]
    assert {"total_seconds", "plan_seconds", "apply_seconds"} <= set(d)
    assert d["total_seconds"] >= d["apply_seconds"]


def test_converged_then_no_changes(tmp_path, cloud):
    code, doc, _ = run(tmp_path, "--detailed-exitcode")
    assert (code, doc["status"]) == (0, "changed")
    assert doc["outcomes"]["created"] == 4 and doc["failures"] == []
    code, doc, _ = run(tmp_path, "--detailed-exitcode")
    assert (code, doc["status"], doc["outcomes"]) == (0, "no-changes", None)
    assert doc["plan"]["no-op"] == 4 and doc["requests"]["apply"] == 0


def test_a_manifest_refused_still_writes_it(tmp_path, cloud):
    path = write(tmp_path, "projects: [{name: a, parent: nowhere}]")
    out = tmp_path / "s.json"
    assert main(["apply", path, "--yes", "--summary-json", str(out)]) == 1
    doc = json.loads(out.read_text())
    validator("summary.schema.json").validate(doc)
    assert doc["status"] == "failed" and doc["plan"] is None
    assert "nowhere" in doc["error"]
    # Lists may have been asked for while the manifest loaded; nothing was written.
    assert [c for c in cloud.calls if c[0] != "list"] == []


def test_targeted_apply_records_the_targets(tmp_path, cloud):
    code, doc, _ = run(tmp_path, "--target", "users.carol")
    assert code == 0
    assert doc["targets"]["pulled_in"][0]["address"] == "projects.fine"
    assert sorted(cloud.store["projects"][k]["name"] for k in cloud.store["projects"]) == [
        "fine"
    ]


@pytest.mark.parametrize(
    "field, value",
    [("status", "ok"), ("exit_code", 3), ("durations", {"total_seconds": -1}), ("extra", 1)],
)
def test_a_wrong_summary_fails(tmp_path, cloud, field, value):
    _, doc, _ = run(tmp_path)
    bad = copy.deepcopy(doc)
    bad[field] = value
    with pytest.raises(jsonschema.ValidationError):
        validator("summary.schema.json").validate(bad)


def test_dash_prints_one_line_after_the_output(tmp_path, cloud, capsys):
    path = write(tmp_path, MANIFEST)
    assert main(["apply", path, "--yes", "--summary-json", "-"]) == 0
    last = capsys.readouterr().out.rstrip("\n").splitlines()[-1]
    doc = json.loads(last)
    validator("summary.schema.json").validate(doc)
    assert doc["status"] == "changed" and SECRET not in last


def test_saved_targeted_plan_is_applied_with_its_targets(tmp_path, cloud, capsys):
    path = write(tmp_path, MANIFEST)
    saved = tmp_path / "plan.json"
    assert main(["plan", path, "--target", "users.carol", "--out", str(saved)]) == 0
    validator("plan.schema.json").validate(json.loads(saved.read_text()))
    assert main(["apply", str(saved)]) == 0
    names = sorted(p["name"] for p in cloud.store["projects"].values())
    assert names == ["fine"] and [u["name"] for u in cloud.store["users"].values()] == ["carol"]
    # Applied again, the saved plan is stale: the cloud changed since.
    capsys.readouterr()
    assert main(["apply", str(saved)]) == 1
    assert "changed since the plan was saved" in capsys.readouterr().err


def test_interrupted_at_the_question_is_recorded(tmp_path, cloud, monkeypatch):
    def ctrl_c(prompt):
        raise KeyboardInterrupt

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", ctrl_c)
    path = write(tmp_path, MANIFEST)
    out = tmp_path / "s.json"
    assert main(["apply", path, "--summary-json", str(out)]) == 130
    doc = json.loads(out.read_text())
    validator("summary.schema.json").validate(doc)
    assert (doc["status"], doc["exit_code"], doc["outcomes"]) == ("interrupted", 130, None)
    assert cloud.writes() == []


def test_an_unexpected_error_is_recorded_then_raised(tmp_path, cloud, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("driver bug")

    monkeypatch.setattr(engine, "apply", boom)
    path = write(tmp_path, MANIFEST)
    out = tmp_path / "s.json"
    with pytest.raises(RuntimeError):
        main(["apply", path, "--yes", "--summary-json", str(out)])
    doc = json.loads(out.read_text())
    validator("summary.schema.json").validate(doc)
    assert (doc["status"], doc["exit_code"]) == ("failed", 1)
    assert doc["error"] == "RuntimeError: driver bug"
