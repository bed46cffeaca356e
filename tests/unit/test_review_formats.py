"""Review and automation formats: markdown plans (golden), the published plan schema,
--target, --version. Markdown goldens live beside the text ones in tests/cases/render/
(UPDATE_GOLDEN=1 rewrites them; review the diff)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from bootstrap import engine
from bootstrap.cli import main
from bootstrap.errors import PlanError
from bootstrap.model import Address, Ref, Secret
from bootstrap.render_markdown import plan_markdown
from bootstrap.render_plan import plan_json
from tests.unit.fakes import MemoryCloud, fake_drivers, manifest_of, resource
from tests.unit.test_cli_operator import no_connect, write  # noqa: F401 (fixture)
from tests.unit.test_engine import run_apply, run_plan
from tests.unit.test_render_plan import CASES, GOLDEN, case_plan, check_golden, sample_plan

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "manifests" / "demo.yaml")


def schema(name: str) -> dict:
    return json.loads((ROOT / "schemas" / name).read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    s = schema(name)
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s, format_checker=jsonschema.FormatChecker())


# --- markdown -----------------------------------------------------------------------


def blocks(text: str) -> list[str]:
    """The <summary> line of every <details> block, in order."""
    return re.findall(r"<summary>(.*?)</summary>", text)


def test_markdown_golden_sample():
    text = plan_markdown(sample_plan())
    assert "hunter2-secret" not in text
    assert "+ password: (sensitive)" in text
    check_golden("plan.md", text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_markdown_golden_destructive_first(name):
    plan = case_plan(name)
    text = plan_markdown(plan)
    first = text.splitlines()[0]
    destructive = [c for c in plan.changes if c.destructive]
    changed = [c for c in plan.changes if c.is_change]
    assert first.startswith("### Plan: ") and f"({len(destructive)} destructive" in first
    heads = blocks(text)
    assert len(heads) == len(changed), "one collapsible block per change"
    # Every destructive change comes before every other one.
    order = [next(c for c in changed if f" {c.address}</code>" in h) for h in heads]
    flags = [c.destructive for c in order]
    assert flags == sorted(flags, reverse=True)
    for c in changed:
        if c.held_back:
            (head,) = [h for h in heads if f" {c.address}</code>" in h]
            assert "<b>held back</b>" in head
    check_golden(f"{name}.md", text)


def test_markdown_fence_outlasts_backticks_in_values():
    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    run_apply(cloud, manifest_of(resource("projects", {"name": "acme"})))
    plan, _ = run_plan(
        cloud, manifest_of(resource("projects", {"name": "acme", "description": "a ```b"}))
    )
    text = plan_markdown(plan)
    assert "````diff" in text and '+ description: "a ```b"' in text


def test_markdown_without_changes():
    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    m = manifest_of(resource("projects", {"name": "acme"}))
    run_apply(cloud, m)
    plan, _ = run_plan(cloud, m)
    text = plan_markdown(plan)
    assert "No changes." in text and "<details>" not in text


# --- the plan schema ------------------------------------------------------------------


def all_golden_plans() -> list[dict]:
    docs = [json.loads(plan_json(sample_plan(), ["m.yaml"]))]
    docs += [json.loads(plan_json(case_plan(n), ["m.yaml"])) for n in sorted(CASES)]
    docs += [json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.json"))]
    return docs


def test_every_golden_plan_validates():
    v = validator("plan.schema.json")
    docs = all_golden_plans()
    assert len(docs) >= len(CASES) + 3
    for doc in docs:
        v.validate(doc)


def test_every_driver_case_change_validates():
    """Every kind's golden decisions (tests/cases/<kind>/), as the plan JSON holds them."""
    import networkx as nx

    from bootstrap.plan import Plan
    from tests.unit.test_driver_cases import case_change, case_files

    v = validator("plan.schema.json")
    paths = case_files()
    changes = [case_change(p)[2] for p in paths]
    assert len(changes) > 100
    for path, change in zip(paths, changes, strict=True):
        doc = Plan(changes=[change], graph=nx.DiGraph()).to_json([str(path.name)])
        errors = [e.message for e in v.iter_errors(doc)]
        assert not errors, f"{path}: {errors}"


def test_saved_plan_with_prune_and_adopt_validates():
    doc = json.loads(plan_json(case_plan("destroy-prune"), ["m.yaml"]))
    validator("plan.schema.json").validate({**doc, "prune": True, "adopt": False})


def _break(doc: dict, how: str) -> dict:
    doc = copy.deepcopy(doc)
    change = next(c for c in doc["changes"] if c["fields"])
    if how == "action":
        change["action"] = "explode"
    elif how == "leaked-secret":
        change["fields"][0]["sensitive"] = True
        change["fields"][0]["after"] = "hunter2"
    elif how == "missing":
        del doc["summary"]
    elif how == "extra":
        change["surprise"] = 1
    elif how == "version":
        doc["format_version"] = 2
    elif how == "verb":
        doc["changes"][0]["steps"] = [{"verb": "reboot", "args": {}}]
    return doc


@pytest.mark.parametrize("how", ["action", "leaked-secret", "missing", "extra", "version", "verb"])
def test_a_wrong_plan_document_fails(how):
    doc = json.loads(plan_json(sample_plan(), ["m.yaml"]))
    validator("plan.schema.json").validate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validator("plan.schema.json").validate(_break(doc, how))


def test_schemas_are_generated_from_the_code():
    from bootstrap.schema.bundle import rendered_files

    for path, text in rendered_files().items():
        assert path.read_text() == text, f"{path.name} is stale: python -m bootstrap.schema"


# --- --target -------------------------------------------------------------------------


def test_target_pulls_in_dependencies_with_reasons():
    loaded = engine.target(engine.load([DEMO]), ["servers.bootstrap-demo/demo-1"])
    kept = {str(a) for a in loaded.manifest.resources}
    t = loaded.targets
    assert t.selected == ["servers.bootstrap-demo/demo-1"]
    assert kept == {"servers.bootstrap-demo/demo-1", *t.pulled_in}
    # Direct references, implicit ones, and dependencies of dependencies.
    assert "(flavor)" in t.pulled_in["flavors.demo.tiny"]
    assert "needs it" in t.pulled_in["subnets.bootstrap-demo/demo-subnet"]
    assert t.pulled_in["roles.member"].startswith("role_assignments.")
    # Not a dependency of the server: left out.
    assert "floating_ips.bootstrap-demo/demo-1" not in kept
    assert "routers.bootstrap-demo/demo-router" not in kept
    assert "subnets.admin/public-subnet" not in kept
    assert set(loaded.graph.nodes) == set(loaded.manifest.resources)


def test_target_globs_and_repeats():
    loaded = engine.target(engine.load([DEMO]), ["flavors.*", "keypairs.demo-key", "flavors.*"])
    assert loaded.targets.selected == ["flavors.demo.tiny", "keypairs.demo-key"]
    assert loaded.targets.pulled_in == {}
    assert len(loaded.manifest) == 2


def test_unknown_target_lists_near_matches():
    with pytest.raises(PlanError) as exc:
        engine.target(engine.load([DEMO]), ["projects.bootstrap-dem", "flavors.nope"])
    text = str(exc.value)
    assert "--target 'projects.bootstrap-dem'" in text and "projects.bootstrap-demo" in text
    assert "--target 'flavors.nope'" in text and "flavors.demo.tiny" in text
    assert "Nothing was read" in text


def test_target_with_prune_is_refused():
    with pytest.raises(PlanError, match="--prune cannot be combined with --target"):
        engine.target(engine.load([DEMO]), ["flavors.*"], prune=True)


def test_targeted_absent_resource_takes_its_absent_dependents():
    from bootstrap.graph import build
    from bootstrap.target import restrict

    acme = Ref(Address("projects", ("acme",)))
    m = manifest_of(
        resource("projects", {"name": "acme"}, state="absent"),
        resource("projects", {"name": "child", "parent": acme}, state="absent"),
        resource("projects", {"name": "other"}),
    )
    g, _ = build(m)
    sub, _g, t = restrict(m, g, ["projects.acme"])
    assert set(map(str, sub.resources)) == {"projects.acme", "projects.child"}
    assert "deleted before projects.acme" in t.pulled_in["projects.child"]


def test_targeted_plan_plans_only_that_part():
    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    acme = Ref(Address("projects", ("acme",)))
    m = manifest_of(
        resource("projects", {"name": "acme"}),
        resource("projects", {"name": "other"}),
        resource("users", {"name": "bob", "default_project": acme, "password": Secret("pw-x")}),
    )
    from bootstrap.graph import build

    g, _ = build(m)
    loaded = engine.target(engine.Loaded(m, g), ["users.bob"])
    plan, _ = engine.plan(cloud, loaded, drivers=fake_drivers())
    assert {str(c.address) for c in plan.changes} == {"users.bob", "projects.acme"}
    doc = json.loads(plan_json(plan, ["m.yaml"]))
    validator("plan.schema.json").validate(doc)
    assert doc["targets"]["pulled_in"] == [
        {"address": "projects.acme", "reason": "users.bob refers to it (default_project)"}
    ]
    md = plan_markdown(plan)
    assert "pulled in `projects.acme`" in md and "pw-x" not in md


def test_cli_unknown_target_fails_before_connecting(tmp_path, capsys, no_connect):  # noqa: F811
    path = write(tmp_path, "projects: [{name: acme}]")
    assert main(["plan", path, "--target", "projects.acmee"]) == 1
    err = capsys.readouterr().err
    assert "did you mean projects.acme" in err


# --- --version ------------------------------------------------------------------------


def test_version_comes_from_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"bootstrap {version('openstack-bootstrap')}"
