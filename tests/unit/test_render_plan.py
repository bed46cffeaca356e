"""Plan rendering against golden files (tests/cases/render/*.txt).

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from rich.console import Console

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
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert "hunter2-secret" not in text
    check_golden("plan.json", text)
