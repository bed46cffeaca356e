"""Stacks: markers that name the stack, prune of one stack only, adoption, project deletes.

The in-memory fakes keep markers where the real services do (Keystone attributes,
Neutron/Nova tags, Glance properties): a marker only exists if a planned step wrote it.
"""

from __future__ import annotations

import pytest

from bootstrap import engine
from bootstrap.drivers._keystone import STACK_ATTR
from bootstrap.drivers._neutron import MARKER_TAG
from bootstrap.errors import PlanError
from bootstrap.model import Address, Ref
from bootstrap.plan import Action
from tests.unit.fakes import MemoryCloud, fake_drivers, graph_of, manifest_of, resource


@pytest.fixture
def cloud():
    c = MemoryCloud()
    c.store["domains"]["default"] = {"name": "Default"}
    return c


def plan(cloud, manifest, stack=None, prune=False, adopt=False):
    drivers = fake_drivers()
    loaded = engine.Loaded(manifest, graph_of(manifest))
    return engine.plan(cloud, loaded, prune=prune, drivers=drivers, stack=stack, adopt=adopt)


def apply(cloud, manifest, stack=None, prune=False, adopt=False):
    drivers = fake_drivers()
    loaded = engine.Loaded(manifest, graph_of(manifest))
    the_plan, resolver = engine.plan(
        cloud, loaded, prune=prune, drivers=drivers, stack=stack, adopt=adopt
    )
    result = engine.apply(cloud, the_plan, resolver, drivers=drivers, allow_destroy=True)
    assert result.ok, [str(r.error) for r in result.failed]
    return the_plan


def proj(name, **kw):
    return resource("projects", {"name": name, **kw})


def pref(name):
    return Ref(Address("projects", (name,)))


def net(name, project, **kw):
    return resource("networks", {"name": name, "project": pref(project), **kw})


def user(name):
    return resource("users", {"name": name})


def grant(role, user_name, project):
    return resource(
        "role_assignments",
        {
            "role": Ref(Address("roles", (role,))),
            "user": Ref(Address("users", (user_name,))),
            "project": pref(project),
        },
    )


def deletes(the_plan):
    return sorted(str(c.address) for c in the_plan.changes if c.action is Action.DELETE)


def names(cloud, kind):
    return sorted(f["name"] for f in cloud.store[kind].values())


def pid(cloud, name):
    return next(i for i, f in cloud.store["projects"].items() if f["name"] == name)


# --- the stack in every marker ------------------------------------------------------------


def test_prune_without_a_stack_is_refused_before_reading(cloud):
    with pytest.raises(PlanError, match="--prune needs a stack"):
        plan(cloud, manifest_of(proj("a")), prune=True)
    assert cloud.calls == []


def test_a_bad_stack_name_is_refused(cloud):
    with pytest.raises(PlanError, match="invalid stack name"):
        plan(cloud, manifest_of(proj("a")), stack="no/slash")


def test_creates_carry_the_stack_in_their_steps(cloud):
    m = manifest_of(proj("p"), net("n", "p"))
    the_plan, _ = plan(cloud, m, stack="blue")
    steps = {str(c.address): c.steps for c in the_plan.changes}
    assert steps["projects.p"][0].args[STACK_ATTR] == "blue"
    tags = steps["networks.p/n"][1].args["tags"]
    assert set(tags.add) == {MARKER_TAG, "stack:blue"}
    assert the_plan.stack == "blue" and the_plan.to_json()["stack"] == "blue"


def test_server_and_image_markers_name_the_stack():
    from bootstrap.drivers.images import ImageDriver
    from bootstrap.drivers.servers import ServerDriver
    from bootstrap.plan import Observed, Step

    steps = [Step("create", {"tags": [MARKER_TAG]})]
    ServerDriver().mark_create(steps, "blue")
    assert steps[0].args["tags"] == [MARKER_TAG, "stack:blue"]
    legacy = Observed("s1", {}, managed=True, stack="red")
    delta = ServerDriver().mark_patch(legacy, "blue")["tags"]
    assert delta.add == ("stack:blue",) and delta.remove == ("stack:red",)
    steps = [Step("create", {"properties": {"managed_by": "openstack-bootstrap"}})]
    ImageDriver().mark_create(steps, "blue")
    assert steps[0].args["properties"]["bootstrap_stack"] == "blue"


def test_two_stacks_side_by_side_each_prunes_only_its_own(cloud):
    apply(cloud, manifest_of(proj("a1"), proj("a2"), net("an", "a1")), stack="a")
    apply(cloud, manifest_of(proj("b1"), proj("b2"), net("bn", "b1")), stack="b")
    cloud.store["projects"]["foreign"] = {"name": "foreign", "domain_id": "default"}
    the_plan, _ = plan(cloud, manifest_of(proj("a1")), stack="a", prune=True)
    assert deletes(the_plan) == ["networks.a1/an", "projects.a2"]
    apply(cloud, manifest_of(proj("a1")), stack="a", prune=True)
    the_plan, _ = plan(cloud, manifest_of(proj("b2")), stack="b", prune=True)
    assert deletes(the_plan) == ["networks.b1/bn", "projects.b1"]
    apply(cloud, manifest_of(proj("b2")), stack="b", prune=True)
    assert names(cloud, "projects") == ["a1", "b2", "foreign"]


def test_markers_made_before_stacks_are_adopted_and_never_pruned(cloud):
    apply(cloud, manifest_of(proj("old"), proj("left")))  # no stack: markers without one
    m = manifest_of(proj("old"))
    the_plan, _ = plan(cloud, m, stack="s", prune=True)
    (change,) = [c for c in the_plan.changes if c.is_change]
    assert change.action is Action.UPDATE and "adopted into stack 's'" in change.reason
    assert [(f.field, f.before, f.after) for f in change.fields] == [("stack", None, "s")]
    assert change.steps[0].args == {"managed_by": "openstack-bootstrap", STACK_ATTR: "s"}
    apply(cloud, m, stack="s", prune=True)
    assert names(cloud, "projects") == ["left", "old"]  # "left" is nobody's stack: kept
    assert not plan(cloud, m, stack="s", prune=True)[0].has_changes


def test_legacy_neutron_tag_gets_the_stack_tag(cloud):
    apply(cloud, manifest_of(proj("p"), net("n", "p")))
    the_plan, _ = plan(cloud, manifest_of(proj("p"), net("n", "p")), stack="s")
    by = {str(c.address): c for c in the_plan.changes}
    assert by["networks.p/n"].steps[0].args["tags"].add == ("stack:s",)
    apply(cloud, manifest_of(proj("p"), net("n", "p")), stack="s")
    (stored,) = cloud.store["networks"].values()
    assert set(stored["tags"]) == {MARKER_TAG, "stack:s"}


def test_another_stacks_resource_is_refused_then_adopted(cloud):
    apply(cloud, manifest_of(proj("shared")), stack="a")
    with pytest.raises(PlanError, match="belongs to stack 'a'.*--adopt"):
        plan(cloud, manifest_of(proj("shared")), stack="b")
    the_plan, _ = plan(cloud, manifest_of(proj("shared")), stack="b", adopt=True)
    (change,) = [c for c in the_plan.changes if c.is_change]
    assert "taken over from stack 'a'" in change.reason
    apply(cloud, manifest_of(proj("shared")), stack="b", adopt=True)
    (stored,) = [f for f in cloud.store["projects"].values() if f["name"] == "shared"]
    assert stored[STACK_ATTR] == "b"
    # Now stack a's prune leaves it alone, stack b owns it.
    assert deletes(plan(cloud, manifest_of(proj("x")), stack="a", prune=True)[0]) == []


def test_unmarked_resources_stay_unmarked_and_are_never_pruned(cloud):
    cloud.store["projects"]["f"] = {"name": "theirs", "domain_id": "default"}
    m = manifest_of(proj("theirs", description="managed here"))
    apply(cloud, m, stack="s")
    assert cloud.store["projects"]["f"].get(STACK_ATTR) is None
    assert cloud.store["projects"]["f"]["description"] == "managed here"
    assert deletes(plan(cloud, manifest_of(proj("other")), stack="s", prune=True)[0]) == []


def test_unmarked_declared_resources_are_warned_about_then_marked_with_adopt(cloud):
    """A create whose marking step never ran (kill -9 between Neutron's create and its tag
    step) leaves a declared resource unmarked: the plan says so, --adopt marks it."""
    apply(cloud, manifest_of(proj("p"), net("n", "p")), stack="s")
    (stored,) = cloud.store["networks"].values()
    stored["tags"] = []  # the tag step that completes the create never ran
    m = manifest_of(proj("p"), net("n", "p"))
    the_plan, _ = plan(cloud, m, stack="s")
    assert not the_plan.has_changes
    (warning,) = [d for d in the_plan.diagnostics if "ownership marker" in d.summary]
    assert warning.severity == "warning" and "networks.p/n" in warning.summary
    assert "projects.p" not in warning.summary
    the_plan, _ = plan(cloud, m, stack="s", adopt=True)
    (change,) = [c for c in the_plan.changes if c.is_change]
    assert str(change.address) == "networks.p/n" and change.action is Action.UPDATE
    assert "carries no ownership marker" in change.reason
    assert [(f.field, f.before, f.after) for f in change.fields] == [
        ("stack", "(unmarked)", "s")
    ]
    assert set(change.steps[0].args["tags"].add) == {MARKER_TAG, "stack:s"}
    apply(cloud, m, stack="s", adopt=True)
    assert set(stored["tags"]) == {MARKER_TAG, "stack:s"}
    again, _ = plan(cloud, m, stack="s")
    assert not again.has_changes
    assert not [d for d in again.diagnostics if "ownership marker" in d.summary]


def test_adopt_never_marks_a_projects_default_security_group(cloud):
    apply(cloud, manifest_of(proj("p")), stack="s")
    cloud.store["security_groups"]["sg"] = {
        "name": "default", "project_id": pid(cloud, "p"), "tags": [], "rules": [],
    }
    sg = resource("security_groups", {"name": "default", "project": pref("p")})
    the_plan, _ = plan(cloud, manifest_of(proj("p"), sg), stack="s", adopt=True)
    assert not [c for c in the_plan.changes if c.is_change and "marker" in (c.reason or "")]
    assert not [d for d in the_plan.diagnostics if "ownership marker" in d.summary]


def test_role_assignments_are_pruned_only_when_both_ends_are_the_stacks(cloud):
    cloud.store["roles"]["r1"] = {"name": "member"}
    cloud.store["users"]["u-foreign"] = {"name": "guest", "domain_id": "default"}
    role = resource("roles", {"name": "member"})
    role.managed = False
    full = manifest_of(proj("p"), user("alice"), role, grant("member", "alice", "p"))
    apply(cloud, full, stack="s")
    guest = user("guest")
    apply(cloud, manifest_of(proj("p"), guest, role, grant("member", "guest", "p")), stack="s")
    kept = manifest_of(proj("p"), user("alice"), guest, role)
    the_plan, _ = plan(cloud, kept, stack="s", prune=True)
    # alice (the stack's) on p (the stack's): pruned; guest is not the stack's: kept.
    assert deletes(the_plan) == ["role_assignments.member/user:alice/project:p"]


def test_pruned_names_that_collide_get_their_ids(cloud):
    apply(cloud, manifest_of(proj("p")), stack="s")
    p = pid(cloud, "p")
    for i in ("n1", "n2"):
        cloud.store["networks"][i] = {
            "name": "dup",
            "project_id": p,
            "tags": [MARKER_TAG, "stack:s"],
        }
    the_plan, _ = plan(cloud, manifest_of(proj("p")), stack="s", prune=True)
    assert deletes(the_plan) == ["networks.p/dup#n1", "networks.p/dup#n2"]


def test_files_of_one_manifest_must_agree_on_the_stack(tmp_path):
    from bootstrap import manifest as manifest_mod

    (tmp_path / "a.yaml").write_text("stack: one\nprojects: [{name: a}]\n")
    (tmp_path / "b.yaml").write_text("stack: two\nprojects: [{name: b}]\n")
    (tmp_path / "c.yaml").write_text("projects: [{name: c}]\n")
    m, diags = manifest_mod.load([str(tmp_path)])
    assert [d.summary for d in diags if d.is_error] == [
        f"stack 'two' differs from stack 'one' at {tmp_path}/a.yaml:1:8"
    ]
    (tmp_path / "b.yaml").write_text("stack: one\nprojects: [{name: b}]\n")
    m, diags = manifest_mod.load([str(tmp_path)])
    assert m.stack == "one" and not any(d.is_error for d in diags)
    (tmp_path / "b.yaml").write_text("stack: 'a/b'\nprojects: [{name: b}]\n")
    m, diags = manifest_mod.load([str(tmp_path)])
    assert any("stack" in d.summary for d in diags if d.is_error)


# --- deleting a project -------------------------------------------------------------------


def stacked(stack):
    return [MARKER_TAG, f"stack:{stack}"]


def fill_project(cloud, p, stack="s"):
    store = cloud.store
    store["servers"]["srv"] = {"name": "web", "project_id": p, "tags": stacked(stack)}
    store["floating_ips"]["fip"] = {
        "address": "203.0.113.9",
        "project_id": p,
        "tags": stacked(stack),
    }
    store["routers"]["rt"] = {"name": "rt", "project_id": p, "tags": stacked(stack)}
    store["subnets"]["sub"] = {"name": "sub", "project_id": p, "tags": stacked(stack)}
    store["networks"]["net"] = {"name": "net", "project_id": p, "tags": stacked(stack)}
    store["security_groups"]["sg"] = {"name": "web", "project_id": p, "tags": stacked(stack)}
    store["security_groups"]["dflt"] = {"name": "default", "project_id": p, "tags": []}


@pytest.mark.parametrize("how", ["absent", "pruned"])
def test_deleting_a_project_deletes_what_the_stack_keeps_in_it_first(cloud, how):
    apply(cloud, manifest_of(proj("p"), proj("other")), stack="s")
    p = pid(cloud, "p")
    fill_project(cloud, p)
    if how == "absent":
        m = manifest_of(proj("other"), resource("projects", {"name": "p"}, "absent"))
        the_plan, _ = plan(cloud, m, stack="s")
    else:
        m = manifest_of(proj("other"))
        the_plan, _ = plan(cloud, m, stack="s", prune=True)
    gone = {str(c.address): c.reason for c in the_plan.changes if c.action is Action.DELETE}
    assert set(gone) == {
        "projects.p",
        "servers.p/web",
        "floating_ips.p/203.0.113.9",
        "routers.p/rt",
        "subnets.p/sub",
        "networks.p/net",
        "security_groups.p/web",
        "security_groups.p/default",
    }
    assert gone["security_groups.p/default"] == "in projects.p, which is deleted"
    cloud.calls.clear()
    apply(cloud, m, stack="s", prune=how == "pruned")
    order = [kind for op, kind, _ in cloud.calls if op == "delete"]
    assert order.index("projects") == len(order) - 1
    assert order.index("servers") < order.index("networks")
    assert order.index("routers") < order.index("subnets") < order.index("networks")
    assert cloud.store["security_groups"] == {} and cloud.store["servers"] == {}


def test_what_is_not_the_stacks_blocks_a_project_delete(cloud):
    apply(cloud, manifest_of(proj("p")), stack="s")
    p = pid(cloud, "p")
    fill_project(cloud, p)
    cloud.store["networks"]["theirs"] = {"name": "theirs", "project_id": p, "tags": []}
    cloud.store["networks"]["b"] = {"name": "bnet", "project_id": p, "tags": stacked("b")}
    m = manifest_of(resource("projects", {"name": "p"}, "absent"))
    with pytest.raises(PlanError) as err:
        plan(cloud, m, stack="s")
    text = str(err.value)
    assert "cannot delete projects.p: it holds network 'theirs'" in text
    assert "openstack-bootstrap did not make it" in text
    assert "network 'bnet' (b), it belongs to stack 'b'" in text
    assert "'net'" not in text  # the stack's own network is deleted, not a blocker
