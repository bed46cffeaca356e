"""The engine against in-memory fakes of the drivers: plan/apply protocol and guarantees."""

from __future__ import annotations

import pytest

from bootstrap import engine
from bootstrap.apply import CREATED, FAILED, SKIPPED
from bootstrap.errors import CloudError, StalePlan
from bootstrap.model import Address, Ref, Secret
from bootstrap.plan import Action
from tests.unit.fakes import MemoryCloud, fake_drivers, graph_of, manifest_of, resource

DEFAULT = Ref(Address("domains", ("Default",)))


def proj(name, **kw):
    return resource("projects", {"name": name, **kw})


def user(name, project=None, **kw):
    spec = {"name": name, **kw}
    if project:
        spec["default_project"] = Ref(Address("projects", (project,)))
    return resource("users", spec)


def grant(role, user_name, project):
    return resource(
        "role_assignments",
        {
            "role": Ref(Address("roles", (role,))),
            "user": Ref(Address("users", (user_name,))),
            "project": Ref(Address("projects", (project,))),
        },
    )


def role(name):
    return resource("roles", {"name": name})


@pytest.fixture
def cloud():
    c = MemoryCloud()
    c.store["domains"]["default"] = {"name": "Default"}
    return c


def run_plan(cloud, manifest, prune=False, drivers=None, stack=None, adopt=False):
    drivers = drivers or fake_drivers()
    loaded = engine.Loaded(manifest, graph_of(manifest))
    return engine.plan(cloud, loaded, prune=prune, drivers=drivers, stack=stack, adopt=adopt)


def run_apply(
    cloud, manifest, allow_destroy=False, prune=False, parallelism=4, stack=None, adopt=False
):
    drivers = fake_drivers()
    plan, resolver = run_plan(cloud, manifest, prune, drivers, stack, adopt)
    result = engine.apply(
        cloud,
        plan,
        resolver,
        allow_destroy=allow_destroy,
        parallelism=parallelism,
        drivers=drivers,
    )
    return plan, result


def acme():
    return manifest_of(
        proj("acme", description="Acme Corp"),
        role("acme-admin"),
        user("alice", "acme", email="alice@example.org"),
        grant("acme-admin", "alice", "acme"),
    )


def test_first_apply_creates_everything_then_converged(cloud):
    plan, result = run_apply(cloud, acme())
    assert [c.action for c in plan.changes].count(Action.CREATE) == 4
    assert result.ok and result.count(CREATED) == 4
    # The assignment was granted with the ids created earlier in the same run.
    (assignment,) = cloud.store["role_assignments"].values()
    (user_id,) = cloud.store["users"]
    assert assignment["user_id"] == user_id
    assert cloud.store["users"][user_id]["default_project"] in cloud.store["projects"]

    writes_before = len(cloud.writes())
    plan2, result2 = run_apply(cloud, acme())
    assert not plan2.has_changes
    assert len(cloud.writes()) == writes_before, "a converged cloud must see 0 writes"


def test_reads_one_list_per_kind(cloud):
    run_apply(cloud, acme())
    cloud.calls.clear()
    run_plan(cloud, acme())
    lists = [c for c in cloud.calls if c[0] == "list"]
    assert sorted(k for _, k, _ in lists) == [
        "domains",
        "projects",
        "role_assignments",
        "roles",
        "users",
    ]


def test_drift_is_planned_exactly_and_converged(cloud):
    run_apply(cloud, acme())
    (pid,) = cloud.store["projects"]
    cloud.store["projects"][pid]["description"] = "changed by hand"
    plan, _ = run_plan(cloud, acme())
    changed = [c for c in plan.changes if c.is_change]
    assert [(str(c.address), c.action) for c in changed] == [("projects.acme", Action.UPDATE)]
    assert [(d.field, d.before, d.after) for d in changed[0].fields] == [
        ("description", "changed by hand", "Acme Corp")
    ]
    run_apply(cloud, acme())
    assert cloud.store["projects"][pid]["description"] == "Acme Corp"
    assert not run_plan(cloud, acme())[0].has_changes


def test_absent_deletes_once(cloud):
    run_apply(cloud, acme())
    gone = manifest_of(proj("acme", description="Acme Corp"), user("alice", state="absent"))
    gone.resources[Address("users", ("alice",))].state = "absent"
    plan, result = run_apply(cloud, gone)
    assert [c.action for c in plan.changes if c.is_change] == [Action.DELETE]
    assert not cloud.store["users"]
    writes = len(cloud.writes())
    plan2, _ = run_apply(cloud, gone)
    assert not plan2.has_changes and len(cloud.writes()) == writes


def test_failure_skips_only_dependents(cloud):
    m = manifest_of(proj("broken"), user("bob", "broken"), proj("fine"), user("carol", "fine"))
    cloud.fail[("create", "projects.broken")] = [CloudError("bad request", status=400)]
    _, result = run_apply(cloud, m)
    outcomes = {str(a): r.outcome for a, r in result.results.items()}
    assert outcomes == {
        "projects.broken": FAILED,
        "users.bob": SKIPPED,
        "projects.fine": CREATED,
        "users.carol": CREATED,
    }
    assert str(result.results[Address("users", ("bob",))].error).endswith(
        "skipped because projects.broken failed"
    )
    assert len(result.failed) == 1  # the root cause, once


def test_lost_create_response_is_adopted_not_duplicated(cloud):
    cloud.lose_response.add("projects.acme")
    _, result = run_apply(cloud, manifest_of(proj("acme")))
    assert result.ok
    assert len(cloud.store["projects"]) == 1
    assert [c[0] for c in cloud.calls if c[1] == "projects"].count("create") == 1


def test_transient_update_error_is_retried(cloud, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    run_apply(cloud, manifest_of(proj("acme", description="a")))
    cloud.fail[("update", "projects.acme")] = [CloudError("busy", status=503, retryable=True)]
    _, result = run_apply(cloud, manifest_of(proj("acme", description="b")))
    assert result.ok
    (p,) = cloud.store["projects"].values()
    assert p["description"] == "b"


def test_client_error_is_not_retried(cloud):
    cloud.fail[("create", "projects.acme")] = [CloudError("nope", status=400)]
    _, result = run_apply(cloud, manifest_of(proj("acme")))
    assert not result.ok
    assert [c for c in cloud.calls if c[0] == "create"] == [("create", "projects", "projects.acme")]


def test_destructive_replace_held_back_without_flag(cloud):
    run_apply(cloud, manifest_of(proj("parent"), proj("child")))
    moved = manifest_of(proj("parent"), proj("child", parent=Ref(Address("projects", ("parent",)))))
    writes = len(cloud.writes())
    _, held = run_apply(cloud, moved)
    assert held.ok and [str(r.address) for r in held.held] == ["projects.child"]
    assert "--allow-destroy" in held.held[0].detail
    assert len(cloud.writes()) == writes, "a held-back change is not run"
    _, result = run_apply(cloud, moved, allow_destroy=True)
    assert result.ok and result.summary()["replaced"] == 1


def test_saved_plan_refused_after_cloud_changed(cloud):
    run_apply(cloud, manifest_of(proj("acme", description="a")))
    m = manifest_of(proj("acme", description="b"))
    saved, _ = run_plan(cloud, m)
    doc = saved.to_json([])
    engine.check_saved_plan(doc, run_plan(cloud, m)[0])  # unchanged: accepted
    (pid,) = cloud.store["projects"]
    cloud.store["projects"][pid]["description"] = "meddled"
    with pytest.raises(StalePlan, match="projects.acme"):
        engine.check_saved_plan(doc, run_plan(cloud, m)[0])


def test_prune_deletes_only_what_the_tool_created(cloud):
    run_apply(cloud, manifest_of(proj("keep"), proj("drop")), stack="s")
    cloud.store["projects"]["foreign"] = {"name": "foreign", "domain_id": "default"}
    plan, result = run_apply(cloud, manifest_of(proj("keep")), prune=True, stack="s")
    deleted = [c for c in plan.changes if c.action is Action.DELETE]
    assert [c.observed.fields["name"] for c in deleted] == ["drop"]
    names = sorted(f["name"] for f in cloud.store["projects"].values())
    assert names == ["foreign", "keep"]
    plan2, _ = run_plan(cloud, manifest_of(proj("keep")))
    assert not plan2.has_changes  # without --prune nothing is deleted


def test_password_is_write_only_and_masked(cloud):
    m = manifest_of(user("alice", password=Secret("hunter22", "env:PW")))
    plan, _ = run_plan(cloud, m)
    text = repr(plan.to_json([]))
    assert "hunter22" not in text and "(sensitive)" in text
    run_apply(cloud, m)
    # on_create: a password is never compared, so a re-plan is clean.
    assert not run_plan(cloud, m)[0].has_changes


def test_ambiguous_live_resources_are_an_error(cloud):
    cloud.store["projects"]["a"] = {"name": "dup", "domain_id": "default"}
    cloud.store["projects"]["b"] = {"name": "dup", "domain_id": "default"}
    from bootstrap.errors import AmbiguousResource

    with pytest.raises(AmbiguousResource, match="projects.dup"):
        run_plan(cloud, manifest_of(proj("dup")))


def lookup(kind, spec):
    r = resource(kind, spec)
    r.managed = False
    return r


def test_lookup_is_read_never_written(cloud):
    cloud.store["projects"]["p0"] = {"name": "ops", "domain_id": "default", "description": "x"}
    m = manifest_of(
        lookup("projects", {"name": "ops", "description": "differs: ignored for lookups"}),
        user("bob", "ops"),
    )
    plan, result = run_apply(cloud, m)
    assert [str(c.address) for c in plan.changes if c.is_change] == ["users.bob"]
    (bob,) = cloud.store["users"].values()
    assert bob["default_project"] == "p0"
    assert not any(op for op, kind, _ in cloud.writes() if kind == "projects")


def test_missing_lookup_fails_the_plan_before_any_write(cloud):
    from bootstrap.errors import PlanError

    m = manifest_of(lookup("projects", {"name": "nowhere"}), user("bob", "nowhere"))
    with pytest.raises(PlanError, match="projects.nowhere"):
        run_plan(cloud, m)
    assert cloud.writes() == []


def test_lookup_in_an_invisible_project_matches_by_name(cloud):
    # A non-admin sees the external network but not the admin project that owns it.
    cloud.store["networks"]["n1"] = {"name": "public", "project_id": "admin-id"}
    drivers = fake_drivers()
    cloud.partial.add("projects")
    admin = lookup("projects", {"name": "admin"})
    net = lookup("networks", {"name": "public", "project": Ref(admin.address)})
    plan, resolver = run_plan(cloud, manifest_of(admin, net), drivers=drivers)
    assert resolver.live(net.address) == "n1"
    assert [d.severity for d in plan.diagnostics] == ["warning"]


def test_invisible_lookup_used_through_another_lookup_is_not_said_unused(cloud):
    """A non-admin: projects.admin is the project of the looked-up external network a
    router uses. It is not visible, and something present depends on it."""
    cloud.store["networks"]["n1"] = {"name": "public", "project_id": "admin-id"}
    cloud.partial.add("projects")
    admin = lookup("projects", {"name": "admin"})
    demo = lookup("projects", {"name": "demo"})
    cloud.store["projects"]["d1"] = {"name": "demo", "domain_id": "default"}
    net = lookup("networks", {"name": "public", "project": Ref(admin.address)})
    router = resource(
        "routers",
        {
            "name": "r",
            "project": Ref(demo.address),
            "external_gateway": {"network": Ref(net.address)},
        },
    )
    plan, _ = run_plan(cloud, manifest_of(admin, demo, net, router))
    (d,) = plan.diagnostics
    assert (d.severity, d.address) == ("warning", "projects.admin")
    assert d.summary == "managed: false resource not visible to this user; assumed to exist"


def test_missing_lookup_nothing_uses_says_so(cloud):
    plan, _ = run_plan(cloud, manifest_of(lookup("projects", {"name": "gone"})))
    (d,) = plan.diagnostics
    assert d.summary == "managed: false resource not found; nothing present depends on it"
    cloud.partial.add("projects")
    plan, _ = run_plan(cloud, manifest_of(lookup("projects", {"name": "gone"})))
    (d,) = plan.diagnostics
    assert d.summary == "managed: false resource not visible to this user"


def test_lost_create_answer_then_the_planned_rest_runs(cloud, monkeypatch):
    """A group's create answer is lost: the re-read finds it, and the plan's next step
    (adding the members) runs on what was found; nothing is created twice."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    alice = user("alice")
    ops = resource("groups", {"name": "ops", "members": [Ref(alice.address)]})
    cloud.lose_response.add("groups.ops")
    m = manifest_of(alice, ops)
    plan, result = run_apply(cloud, m)
    assert result.ok
    assert [s.verb for s in plan.by_address()[ops.address].steps] == ["create", "update"]
    (group,) = cloud.store["groups"].values()
    (alice_id,) = cloud.store["users"]
    assert group["members"] == [alice_id]
    assert [c[0] for c in cloud.calls if c[1] == "groups"].count("create") == 1
    assert not run_plan(cloud, m)[0].has_changes


def test_apply_runs_the_planned_steps_not_a_new_decision(cloud):
    """Apply executes the plan it is given: a plan made before an out-of-band change is
    executed as planned (a fresh plan would differ; `apply plan.json` refuses that)."""
    run_apply(cloud, manifest_of(proj("acme", description="a")))
    drivers = fake_drivers()
    plan, resolver = run_plan(cloud, manifest_of(proj("acme", description="b")), drivers=drivers)
    (pid,) = cloud.store["projects"]
    cloud.store["projects"][pid]["description"] = "b"  # someone did it meanwhile
    writes = len(cloud.writes())
    engine.apply(cloud, plan, resolver, drivers=drivers)
    assert cloud.writes()[writes:] == [("update", "projects", "projects.acme")]


class _Token:
    def __init__(self, *roles):
        self.roles = set(roles)


def _plan_of(*changes):
    import networkx as nx

    from bootstrap.plan import Plan

    return Plan(list(changes), nx.DiGraph())


def _change(kind, spec, action, fields=()):
    from bootstrap.plan import Change, FieldDiff

    r = resource(kind, spec)
    return Change(r.address, action, [FieldDiff(f, None, spec[f]) for f in fields], resource=r)


def test_preflight_refuses_admin_kinds_without_admin():
    plan_ = _plan_of(_change("flavors", {"name": "m1", "vcpus": 1, "ram": 512}, Action.CREATE))
    with pytest.raises(engine.PreflightError, match="changes flavors which needs the admin"):
        engine.preflight(_Token("member"), plan_)
    engine.preflight(_Token("admin"), plan_)


def test_preflight_refuses_admin_only_fields_without_admin():
    project = Ref(Address("projects", ("acme",)))
    net = {"name": "ext", "project": project, "external": True, "description": "x"}
    create = _change("networks", net, Action.CREATE)
    with pytest.raises(engine.PreflightError, match=r"networks\.acme/ext\.external"):
        engine.preflight(_Token("member"), _plan_of(create))
    # An update that leaves the admin-only field alone needs no admin.
    engine.preflight(
        _Token("member"), _plan_of(_change("networks", net, Action.UPDATE, ["description"]))
    )
    private = _change("networks", {**net, "external": False}, Action.CREATE)
    engine.preflight(_Token("member"), _plan_of(private))
    public = _change("images", {"name": "cirros", "visibility": "public"}, Action.CREATE)
    with pytest.raises(engine.PreflightError, match=r"images\.cirros\.visibility"):
        engine.preflight(_Token("member"), _plan_of(public))


def test_preflight_refuses_a_chosen_floating_address_without_admin():
    """Neutron's default policy lets only admins pick the floating IP address."""
    project = Ref(Address("projects", ("acme",)))
    spec = {
        "project": project,
        "server": Ref(Address("servers", ("acme", "web"))),
        "network": Ref(Address("networks", ("admin", "public"))),
        "address": "203.0.113.7",
    }
    create = _change("floating_ips", spec, Action.CREATE)
    with pytest.raises(engine.PreflightError, match=r"floating_ips\.acme/web\.address"):
        engine.preflight(_Token("member"), _plan_of(create))
    engine.preflight(_Token("admin"), _plan_of(create))
    any_address = {k: v for k, v in spec.items() if k != "address"}
    engine.preflight(
        _Token("member"), _plan_of(_change("floating_ips", any_address, Action.CREATE))
    )


def test_a_create_without_its_required_fields_fails_the_plan_with_its_location(cloud):
    from bootstrap.errors import PlanError, Source

    image = resource("images", {"name": "cirros"})  # no source, no disk_format
    image.source = Source("m.yaml", 3, 5)
    where = r"m.yaml:3:5: error: cannot be created without disk_format and source"
    with pytest.raises(PlanError, match=where + r".*images.cirros"):
        run_plan(cloud, manifest_of(image))
    # The same entry naming an image that exists is a fine lookup of it.
    cloud.store["images"]["i1"] = {"name": "cirros", "status": "active"}
    plan, _ = run_plan(cloud, manifest_of(image))
    assert not plan.has_changes
    assert cloud.writes() == []


# --- names, not ids, for what the manifest does not list -------------------------------

BOB = "0b0b0b0b0b0b4b0b8b0b0b0b0b0b0b0b"
ACME = "ac3eac3eac3e4c3e8c3eac3eac3eac3e"
SG_OTHER = "50000000-0000-4000-8000-000000000001"


def test_members_and_remote_groups_outside_the_manifest_show_by_name(cloud):
    cloud.store["users"]["a1"] = {"name": "alice", "domain_id": "default"}
    cloud.store["users"][BOB] = {"name": "bob", "domain_id": "default"}
    cloud.store["groups"]["g1"] = {"name": "ops", "domain_id": "default", "members": ["a1", BOB]}
    alice = user("alice")
    ops = resource("groups", {"name": "ops", "members": [Ref(alice.address)]})
    plan, _ = run_plan(cloud, manifest_of(alice, ops))
    (diff,) = plan.by_address()[ops.address].fields
    assert (diff.before, diff.after) == (["users.alice", "users.bob"], ["users.alice"])


def test_pruned_project_resources_are_addressed_by_project_name(cloud):
    cloud.store["projects"][ACME] = {"name": "acme", "domain_id": "default"}
    cloud.store["networks"]["n1"] = {
        "name": "old-net",
        "project_id": ACME,
        "tags": ["managed-by:openstack-bootstrap", "stack:s"],
    }
    cloud.store["security_groups"][SG_OTHER] = {"name": "web", "project_id": ACME}
    plan, _ = run_plan(
        cloud, manifest_of(lookup("projects", {"name": "acme"})), prune=True, stack="s"
    )
    deleted = [str(c.address) for c in plan.changes if c.action is Action.DELETE]
    assert deleted == ["networks.acme/old-net"]
    from bootstrap.lookups import observed_names

    names = observed_names({"security_groups": [_obs(SG_OTHER, "web", ACME)],
                            "projects": [_obs(ACME, "acme")]})  # fmt: skip
    assert str(names[SG_OTHER]) == "security_groups.acme/web"
    # Short ids are never taken for names (a value "default" stays "default").
    assert observed_names({"domains": [_obs("default", "Default")]}) == {}


def _obs(live_id, name, project=None):
    from bootstrap.plan import Observed

    return Observed(live_id, {"name": name, **({"project_id": project} if project else {})})


def test_missing_lookup_used_only_by_lookups_says_so(cloud):
    cloud.store["networks"]["n1"] = {"name": "public", "project_id": "x"}
    admin = lookup("projects", {"name": "admin"})
    net = lookup("networks", {"name": "public", "project": Ref(admin.address)})
    plan, resolver = run_plan(cloud, manifest_of(admin, net))
    (d,) = plan.diagnostics
    assert (d.address, d.summary) == (
        "projects.admin",
        "managed: false resource not found; only other lookups refer to it",
    )
    assert resolver.live(net.address) == "n1"


def test_lost_image_create_leaves_no_second_image(cloud, monkeypatch):
    """The re-read finds the record the lost create made, without data (not adoptable):
    it is deleted before the retry, so one image remains under the name."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    cloud.lose_response.add("images.cirros")
    image = resource(
        "images", {"name": "cirros", "source": {"file": "cirros.img"}, "disk_format": "raw"}
    )
    _, result = run_apply(cloud, manifest_of(image))
    assert result.ok
    assert len(cloud.store["images"]) == 1
    ops = [c[0] for c in cloud.calls if c[1] == "images"]
    assert ops.count("create") == 2 and ops.count("delete") == 1
