"""Plan rendering against golden files (tests/cases/render/*.txt).

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from bootstrap import engine
from bootstrap.model import Address, Ref, Secret
from bootstrap.plan import Plan
from bootstrap.render_plan import plan_json, print_plan
from tests.unit.fakes import MemoryCloud, fake_drivers, manifest_of, resource
from tests.unit.test_engine import run_apply, run_plan

GOLDEN = Path(__file__).resolve().parent.parent / "cases" / "render"


def sample_plan() -> Plan:
    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    before = manifest_of(
        resource("projects", {"name": "acme", "description": "old"}),
        resource("projects", {"name": "legacy"}),
        resource("projects", {"name": "child"}),
    )
    run_apply(cloud, before)
    after = manifest_of(
        resource("projects", {"name": "acme", "description": "Acme Corp", "tags": ["x"]}),
        resource("projects", {"name": "legacy"}, state="absent"),
        resource("projects", {"name": "child", "parent": Ref(Address("projects", ("acme",)))}),
        resource(
            "users",
            {
                "name": "alice",
                "password": Secret("hunter2-secret", "env:PW"),
                "default_project": Ref(Address("projects", ("acme",))),
            },
        ),
    )
    plan, _ = run_plan(cloud, after, drivers=fake_drivers())
    plan.requests, plan.read_seconds = 7, 0.25
    return plan


def render(plan: Plan) -> str:
    buf = io.StringIO()
    print_plan(Console(file=buf, width=100, no_color=True, soft_wrap=True), plan)
    return buf.getvalue()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs; UPDATE_GOLDEN=1 to accept"


def test_plan_text_golden():
    text = render(sample_plan())
    assert "hunter2-secret" not in text
    check_golden("plan.txt", text)


def test_plan_json_golden():
    doc = json.loads(plan_json(sample_plan(), ["manifest.yaml"]))
    assert doc["format_version"] == 1
    # Measured seconds differ on every run: present, but not part of the golden text.
    assert set(doc.pop("timings")) >= {"connect", "reads", "probes", "diff"}
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert "hunter2-secret" not in text
    check_golden("plan.json", text)


# --- one golden rendering per destructive case: marker, reason, held back ---------------


def _server_world(cloud: MemoryCloud, image_spec: dict, server_spec: dict):
    cloud.store["projects"]["p1"] = {"name": "acme", "domain_id": "default"}
    cloud.store["images"]["i1"] = {"name": "cirros", "disk_format": "raw", "status": "active"}
    cloud.store["images"]["i2"] = {"name": "ubuntu", "disk_format": "raw", "status": "active"}
    cloud.store["flavors"]["f1"] = {"name": "m1.tiny"}
    cloud.store["flavors"]["f2"] = {"name": "m1.small"}
    cloud.store["servers"]["s1"] = {
        "name": "web-1",
        "project_id": "p1",
        "status": "ACTIVE",
        "image": "i1",
        "flavor": "m1.tiny",
        "metadata": {"role": "web"},
    }
    acme = Ref(Address("projects", ("acme",)))
    return manifest_of(
        resource("projects", {"name": "acme"}),
        resource(
            "images",
            {
                "name": "cirros",
                "source": {"url": "https://example.org/cirros.img"},
                "disk_format": "raw",
                **image_spec,
            },
        ),
        resource("images", {"name": "ubuntu", "disk_format": "raw"}),
        resource("flavors", {"name": "m1.tiny"}),
        resource("flavors", {"name": "m1.small"}),
        resource(
            "servers",
            {
                "name": "web-1",
                "project": acme,
                "image": Ref(Address("images", ("cirros",))),
                "flavor": Ref(Address("flavors", ("m1.tiny",))),
                **server_spec,
            },
        ),
    )


def _reparent(cloud: MemoryCloud):
    run_apply(
        cloud,
        manifest_of(
            resource("projects", {"name": "parent"}),
            resource("projects", {"name": "child"}),
            resource("projects", {"name": "other"}),
        ),
    )
    return manifest_of(
        resource("projects", {"name": "parent"}),
        resource("projects", {"name": "child", "parent": Ref(Address("projects", ("parent",)))}),
        resource("projects", {"name": "other", "description": "safe"}),
        resource("users", {"name": "bob", "default_project": Ref(Address("projects", ("child",)))}),
    )


def _absent(cloud: MemoryCloud):
    run_apply(cloud, manifest_of(resource("projects", {"name": "legacy"})), stack="demo")
    return manifest_of(resource("projects", {"name": "legacy"}, state="absent"))


RAW = {"disk_format": "raw"}
CASES = {
    # name: (world, --allow-destroy, --prune)
    "destroy-replace-held": (_reparent, [], False),
    "destroy-replace-allowed": (_reparent, ["projects.*"], False),
    "destroy-absent": (_absent, [], False),
    "destroy-prune": (lambda c: (_absent(c), manifest_of())[1], [], True),
    "destroy-rebuild": (
        lambda c: _server_world(
            c, {}, {"image": Ref(Address("images", ("ubuntu",))), "metadata": {"role": "db"}}
        ),
        [],
        False,
    ),
    "destroy-resize": (
        lambda c: _server_world(c, {}, {"flavor": Ref(Address("flavors", ("m1.small",)))}),
        ["servers.acme/*"],
        False,
    ),
    "destroy-image-create-before-destroy": (
        lambda c: _server_world(c, {"disk_format": "qcow2"}, {}),
        ["*"],
        False,
    ),
    "destroy-image-held-with-its-server": (
        lambda c: _server_world(c, {"disk_format": "qcow2"}, {}),
        ["images.*"],
        False,
    ),
}


def case_plan(name: str) -> Plan:
    world, allow, prune = CASES[name]
    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    manifest = world(cloud)
    plan, _ = run_plan(
        cloud, manifest, prune=prune, drivers=fake_drivers(), stack="demo" if prune else None
    )
    engine.hold(plan, allow)
    plan.requests, plan.read_seconds = 5, 0.1
    return plan


@pytest.mark.parametrize("name", sorted(CASES))
def test_destructive_plan_golden(name):
    plan = case_plan(name)
    text = render(plan)
    destructive = [c for c in plan.changes if c.destructive]
    assert destructive, "each case destroys something"
    for c in destructive:
        # The marker and the reason, on the change's own line.
        (line,) = [x for x in text.splitlines() if f" {c.address}  (" in x]
        assert line.startswith("!") and "(destructive: " in line and c.reason in line
    assert f"({len(destructive)} destructive" in text
    check_golden(f"{name}.txt", text)


def test_held_back_plan_json_golden():
    doc = json.loads(plan_json(case_plan("destroy-replace-held"), ["manifest.yaml"]))
    doc.pop("timings")  # measured seconds: differ on every run
    held = {c["address"]: c["held_back_reason"] for c in doc["changes"] if c["held_back"]}
    assert set(held) == {"projects.child", "users.bob"}
    assert doc["summary"]["destructive"] == 1 and doc["summary"]["held_back"] == 2
    check_golden("destroy-replace-held.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")


@pytest.mark.parametrize("rows", [[], [{"a": 1, "b": ["x", None]}, {"a": "@x@", "c": {}}]])
def test_json_rows_is_the_same_document_one_row_per_line(rows):
    from bootstrap.render_plan import json_rows

    doc = {"format_version": 1, "files": ["a.yaml"], "changes": rows, "after": {"k": [1]}}
    text = json_rows(doc, "changes")
    assert json.loads(text) == doc
    assert list(json.loads(text)) == list(doc)  # the keys' order is kept
    lines = text.splitlines()
    assert len([ln for ln in lines if ln.startswith('    {"a"')]) == len(rows)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "a", "enabled": True, "size": 1, "ratio": 0.5, "parent": None},
        {"name": "a", "members": {"u2", "u1"}, "owner": Address("users", ("bob",))},
        {"name": "a", "tags": ["x"], "meta": {"k": Secret("hunter2", "env X")}},
    ],
)
def test_an_observed_fingerprint_is_that_of_its_json_fields(fields):
    """A saved plan compares fingerprints: plain fields (taken as they are) and others
    (made JSON first: sets sorted, addresses as text, secrets masked) digest alike."""
    import hashlib

    from bootstrap.plan import Observed, _jsonable

    blob = json.dumps({"id": "x1", "fields": _jsonable(fields)}, sort_keys=True)
    expected = hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert Observed("x1", fields).fingerprint() == expected
    assert "hunter2" not in blob
