"""Property: for generated manifests, apply then plan again gives only no-ops, and every
write apply sends is a step of the plan (apply decides nothing new).

The cloud is the in-memory fake of tests/unit/fakes.py: creates store what their
arguments would make on a real cloud, updates apply the planned patch. The manifests
are identity kinds (their fake read-back is Keystone's); other kinds are covered by
golden cases and the integration tier.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bootstrap import engine
from bootstrap.model import Address, Ref
from tests.unit.fakes import MemoryCloud, fake_drivers, graph_of, manifest_of, resource

NAMES = st.sampled_from(["a", "b", "c", "d"])
TEXT = st.sampled_from(["", "x", "team", "Acme Corp"])


@st.composite
def manifests(draw):
    projects = sorted(draw(st.sets(NAMES, max_size=3)))
    users = sorted(draw(st.sets(NAMES, max_size=3)))
    out = []
    for p in projects:
        spec = {"name": f"p-{p}"}
        if draw(st.booleans()):
            spec["description"] = draw(TEXT)
        if draw(st.booleans()):
            spec["enabled"] = draw(st.booleans())
        if draw(st.booleans()):
            spec["tags"] = draw(st.lists(st.sampled_from(["x", "y", "z"]), unique=True))
        out.append(resource("projects", spec))
    for u in users:
        spec = {"name": f"u-{u}"}
        if draw(st.booleans()):
            spec["email"] = f"{u}@{draw(st.sampled_from(['one', 'two']))}.example"
        if projects and draw(st.booleans()):
            spec["default_project"] = Ref(
                Address("projects", (f"p-{draw(st.sampled_from(projects))}",))
            )
        out.append(resource("users", spec))
    if draw(st.booleans()):
        members = draw(st.lists(st.sampled_from(users), unique=True)) if users else []
        out.append(
            resource(
                "groups",
                {
                    "name": "ops",
                    "description": draw(TEXT),
                    "members": [Ref(Address("users", (f"u-{m}",))) for m in members],
                },
            )
        )
    if projects and users and draw(st.booleans()):
        out.append(resource("roles", {"name": "member"}))
        for u in draw(st.lists(st.sampled_from(users), unique=True, max_size=2)):
            p = draw(st.sampled_from(projects))
            out.append(
                resource(
                    "role_assignments",
                    {
                        "role": Ref(Address("roles", ("member",))),
                        "user": Ref(Address("users", (f"u-{u}",))),
                        "project": Ref(Address("projects", (f"p-{p}",))),
                    },
                )
            )
    return manifest_of(*out)


def plan_of(cloud, manifest, drivers):
    return engine.plan(cloud, engine.Loaded(manifest, graph_of(manifest)), drivers=drivers)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=manifests(), second=manifests())
def test_apply_then_plan_is_noop_and_writes_are_planned_steps(first, second):
    cloud = MemoryCloud()
    cloud.store["domains"]["default"] = {"name": "Default"}
    drivers = fake_drivers()
    for manifest in (first, second):  # the second converges from the first's cloud
        plan, resolver = plan_of(cloud, manifest, drivers)
        before = len(cloud.writes())
        result = engine.apply(cloud, plan, resolver, allow_destroy=True, drivers=drivers)
        assert result.ok, [str(r.error) for r in result.failed]
        planned = Counter((step.verb, c.address.kind) for c in plan.changes for step in c.steps)
        sent = Counter((op, kind) for op, kind, _ in cloud.writes()[before:])
        assert sent == planned, f"apply sent {sent}, the plan said {planned}"
        again, _ = plan_of(cloud, manifest, drivers)
        left = [(str(c.address), c.action.value) for c in again.changes if c.is_change]
        assert left == [], f"not converged after apply: {left}"
