"""Destroy gates and lifecycle: the pure decisions, and apply running only what they allow."""

from __future__ import annotations

import pytest

from bootstrap import engine, gates
from bootstrap.apply import HELD, REPLACED, SKIPPED, Retire, execution_graph, walk
from bootstrap.errors import CloudError, PlanError, Source
from bootstrap.model import Address, Lifecycle, Ref
from bootstrap.plan import Action
from tests.unit.fakes import MemoryCloud, fake_drivers, manifest_of, resource
from tests.unit.test_engine import proj, run_apply, run_plan, user

ACME = Ref(Address("projects", ("acme",)))


@pytest.fixture
def cloud():
    c = MemoryCloud()
    c.store["domains"]["default"] = {"name": "Default"}
    return c


def reparent(cloud):
    """projects.child moves under projects.parent (a destructive replace), users.alice
    refers to the child, projects.other only changes its description."""
    run_apply(cloud, manifest_of(proj("parent"), proj("child"), proj("other", description="a")))
    alice = user("alice", "child")
    return manifest_of(
        proj("parent"),
        proj("child", parent=Ref(Address("projects", ("parent",)))),
        alice,
        proj("other", description="b"),
    )


def test_held_back_is_the_destructive_change_and_what_depends_on_it(cloud):
    plan, _ = run_plan(cloud, reparent(cloud))
    held = gates.held_back(plan, gates.Permission.of(False))
    assert {str(a): why for a, why in held.items()} == {
        "projects.child": "needs --allow-destroy (or --allow-destroy 'projects.child')",
        "users.alice": "depends on projects.child, which is held back",
    }
    assert gates.held_back(plan, gates.Permission.of(True)) == {}
    assert gates.held_back(plan, gates.Permission.of(["projects.c*"])) == {}
    assert set(gates.held_back(plan, gates.Permission.of(["users.*"]))) == set(held)


def test_apply_runs_every_change_but_the_held_back_ones(cloud):
    m = reparent(cloud)
    before = len(cloud.writes())
    plan, result = run_apply(cloud, m)
    assert result.ok
    outcomes = {str(a): r.outcome for a, r in result.results.items() if r.outcome != "unchanged"}
    assert outcomes == {"projects.child": HELD, "users.alice": HELD, "projects.other": "updated"}
    assert cloud.writes()[before:] == [("update", "projects", "projects.other")]
    marked = {str(c.address) for c in plan.changes if c.held_back}
    assert marked == {"projects.child", "users.alice"}
    doc = plan.to_json([])
    assert doc["summary"]["held_back"] == 2 and doc["summary"]["destructive"] == 1
    # The next run, allowed, does the rest.
    _, result = run_apply(cloud, m, allow_destroy=["projects.child"])
    assert result.ok and not result.held and result.summary()["replaced"] == 1


def test_explicit_deletes_are_destructive_but_need_no_flag(cloud):
    run_apply(cloud, manifest_of(proj("gone"), proj("dropped")), stack="s")
    gone = proj("gone")
    gone.state = "absent"
    plan, result = run_apply(cloud, manifest_of(gone), prune=True, stack="s")
    deletes = [c for c in plan.changes if c.is_change]
    assert [c.action for c in deletes] == [Action.DELETE, Action.DELETE]
    assert all(c.destructive and not c.held_back for c in deletes)
    assert result.summary()["deleted"] == 2


def test_prevent_destroy_is_an_error_even_with_allow_destroy(cloud):
    run_apply(cloud, manifest_of(proj("parent"), proj("child"), proj("keep")))
    child = proj("child", parent=Ref(Address("projects", ("parent",))))
    child.lifecycle = Lifecycle(prevent_destroy=True)
    child.field_sources["lifecycle.prevent_destroy"] = Source("m.yaml", 7, 24)
    keep = proj("keep")
    keep.state = "absent"
    keep.lifecycle = Lifecycle(prevent_destroy=True)
    writes = len(cloud.writes())
    with pytest.raises(PlanError) as err:
        run_apply(cloud, manifest_of(proj("parent"), child, keep), allow_destroy=True)
    text = str(err.value)
    assert "m.yaml:7:24: error: lifecycle.prevent_destroy: the plan would replace it" in text
    assert "[projects.child]" in text and "would delete it (state: absent)" in text
    assert len(cloud.writes()) == writes
    # What it guards may still change in place.
    guarded = proj("keep", description="fine")
    guarded.lifecycle = Lifecycle(prevent_destroy=True)
    assert run_apply(cloud, manifest_of(guarded))[1].ok


def test_ignore_changes_leaves_drift_alone_but_creates_with_the_value(cloud):
    acme = proj("acme", description="Acme Corp", enabled=True)
    acme.lifecycle = Lifecycle(ignore_changes=frozenset({"description"}))
    run_apply(cloud, manifest_of(acme))
    (pid,) = cloud.store["projects"]
    assert cloud.store["projects"][pid]["description"] == "Acme Corp"
    cloud.store["projects"][pid]["description"] = "edited by hand"
    assert not run_plan(cloud, manifest_of(acme))[0].has_changes
    cloud.store["projects"][pid]["enabled"] = False
    (change,) = [c for c in run_plan(cloud, manifest_of(acme))[0].changes if c.is_change]
    assert [f.field for f in change.fields] == ["enabled"]


# --- create before destroy: an image in use by a server -------------------------------


def image_in_use(cloud):
    cloud.store["projects"]["p1"] = {"name": "acme", "domain_id": "default"}
    cloud.store["images"]["i1"] = {"name": "cirros", "disk_format": "raw", "status": "active"}
    cloud.store["servers"]["s1"] = {
        "name": "web-1",
        "project_id": "p1",
        "status": "ACTIVE",
        "image": "i1",
    }
    image = resource(
        "images",
        {"name": "cirros", "source": {"url": "https://example.org/c.img"}, "disk_format": "qcow2"},
    )
    server = resource("servers", {"name": "web-1", "project": ACME, "image": Ref(image.address)})
    return manifest_of(proj("acme"), image, server)


def test_image_replace_creates_then_rebuilds_then_deletes_the_old(cloud):
    m = image_in_use(cloud)
    plan, _ = run_plan(cloud, m)
    image, server = (plan.by_address()[a] for a in m.resources if a.kind != "projects")
    assert image.creates_first and [s.verb for s in image.steps] == ["create", "delete"]
    assert "because images.cirros is replaced" in server.reason and server.destructive
    graph = execution_graph(plan)
    assert graph.has_edge(image.address, server.address)
    assert graph.has_edge(server.address, Retire(image.address))
    _, result = run_apply(cloud, m, allow_destroy=True)
    assert result.ok and result.results[image.address].outcome == REPLACED
    writes = [w for w in cloud.writes() if w[1] != "projects"]
    assert writes == [
        ("create", "images", "images.cirros"),
        ("update", "servers", "servers.web-1"),
        ("delete", "images", "i1"),
    ]
    (new_id,) = cloud.store["images"]
    assert cloud.store["servers"]["s1"]["image"] == new_id != "i1"


def test_a_failed_upload_leaves_the_old_image_and_the_server_alone(cloud):
    m = image_in_use(cloud)
    cloud.fail[("create", "images.cirros")] = [CloudError("upload failed", status=400)]
    _, result = run_apply(cloud, m, allow_destroy=True)
    outcomes = {a.kind: r.outcome for a, r in result.results.items() if a.kind != "projects"}
    assert outcomes == {"images": "failed", "servers": SKIPPED}
    assert list(cloud.store["images"]) == ["i1"]
    assert cloud.store["servers"]["s1"]["image"] == "i1"


def test_an_image_whose_server_is_held_back_is_held_back_too(cloud):
    m = image_in_use(cloud)
    plan, _ = run_plan(cloud, m)
    held = gates.held_back(plan, gates.Permission.of(["images.*"]))
    assert held == {
        Address("servers", ("acme", "web-1")): "needs --allow-destroy "
        "(or --allow-destroy 'servers.acme/web-1')",
        Address("images", ("cirros",)): "the old one stays in use by servers.acme/web-1, "
        "which is held back",
    }
    writes = len(cloud.writes())
    _, result = run_apply(cloud, m, allow_destroy=["images.*"])
    assert len(result.held) == 2 and len(cloud.writes()) == writes


def test_a_lost_create_answer_in_a_cbd_replace_does_not_adopt_the_old_one(cloud, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    # The fake stores no status: say what Glance says of an uploaded image.
    monkeypatch.setattr("bootstrap.drivers.images.ImageDriver.adoptable", lambda s, o: True)
    m = image_in_use(cloud)
    cloud.lose_response.add("images.cirros")
    _, result = run_apply(cloud, m, allow_destroy=True)
    assert result.ok
    (new_id,) = cloud.store["images"]
    assert new_id != "i1" and cloud.store["servers"]["s1"]["image"] == new_id


def test_walk_runs_nothing_after_a_held_node():
    import networkx as nx

    g = nx.DiGraph([("a", "b"), ("b", "c"), ("x", "y")])
    ran = []

    def run(n):
        ran.append(n)
        return "updated"

    results = walk(g, run, 2, held={"a": "needs --allow-destroy"})
    assert sorted(ran) == ["x", "y"]
    assert {n: r.outcome for n, r in results.items() if r.outcome == HELD} == dict.fromkeys(
        "abc", HELD
    )
    assert results["c"].detail == "depends on a, which is held back"


def test_plan_marks_held_back_under_the_given_flags(cloud):
    plan, _ = run_plan(cloud, reparent(cloud), drivers=fake_drivers())
    engine.hold(plan, ["users.*"])
    marks = {str(c.address): c.held_back for c in plan.changes if c.is_change}
    assert marks["projects.child"].startswith("needs --allow-destroy")
    assert marks["projects.other"] == ""
