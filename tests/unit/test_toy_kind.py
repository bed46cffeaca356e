"""A kind is its driver: a toy kind, declared only as a Driver subclass in this test,
is planned and applied by the engine with nothing else registered anywhere.

(A real kind also needs its schema part, golden cases and lifecycle test; the
conformance test in test_driver_cases.py checks those.)
"""

from __future__ import annotations

from bootstrap.apply import Applier
from bootstrap.drivers.base import Driver, registry
from bootstrap.model import Address, Ref, Resource
from bootstrap.plan import Observed, make_plan
from bootstrap.retry import RetryPolicy
from tests.unit.fakes import graph_of, manifest_of, resource


class Widgets(Driver, register=False):
    """A widget lives in a project and has a set of labels."""

    kind = "widgets"
    position = 999
    key_fields = ("project", "name")
    references = {"project": "projects"}
    updatable = frozenset({"size", "labels"})
    set_fields = frozenset({"labels"})
    set_after_create = frozenset({"labels"})  # the toy API adds labels one by one

    def read_all(self, cloud, resources, known=None):
        return [Observed(i, dict(f)) for i, f in cloud["widgets"].items()]

    def create(self, cloud, args, ctx):
        live_id = f"w{len(cloud['widgets']) + 1}"
        cloud["widgets"][live_id] = {
            "name": args["name"],
            "project_id": args["project_id"],
            "size": args.get("size"),
            "labels": [],
        }
        return Observed(live_id, dict(cloud["widgets"][live_id]))

    def update(self, cloud, observed, patch, ctx):
        stored = cloud["widgets"][observed.id]
        if "size" in patch:
            stored["size"] = patch["size"]
        if "labels" in patch:
            kept = [x for x in stored["labels"] if x not in patch["labels"].remove]
            stored["labels"] = sorted(kept + list(patch["labels"].add))

    def delete(self, cloud, observed, ctx):
        del cloud["widgets"][observed.id]

    def normalise(self, field_name, value):
        return sorted(value) if field_name == "labels" else value


class ToyCloud(dict):
    """The toy kind's whole cloud: a dict of widgets, and the one retry policy."""

    retry = RetryPolicy()


def plan_and_apply(cloud, resources):
    drivers = {**{k: c() for k, c in registry().items()}, "widgets": Widgets()}
    manifest = manifest_of(*resources)
    observed = {
        "projects": [Observed("p1", {"name": "acme", "domain_id": "default"})],
        "widgets": Widgets().read_all(cloud, []),
    }
    plan, resolver = make_plan(
        manifest,
        graph_of(manifest),
        drivers,
        observed,
        {Address("domains", ("Default",)): "default"},
    )
    result = Applier(cloud, drivers, resolver).apply(plan)
    return plan, result


def widget(**spec):
    spec = {"name": "w", "project": Ref(Address("projects", ("acme",))), **spec}
    return Resource(Widgets.address(spec), spec)


def test_a_toy_kind_is_planned_applied_and_converges():
    cloud = ToyCloud(widgets={})
    acme = resource("projects", {"name": "acme"})
    acme.managed = False
    plan, result = plan_and_apply(cloud, [acme, widget(size=2, labels=["b", "a"])])
    change = plan.by_address()[Address("widgets", ("acme", "w"))]
    assert [s.verb for s in change.steps] == ["create", "update"]
    assert result.ok
    assert list(cloud["widgets"].values()) == [
        {"name": "w", "project_id": "p1", "size": 2, "labels": ["a", "b"]}
    ]
    plan2, _ = plan_and_apply(cloud, [acme, widget(size=3, labels=["a", "c"])])
    (step,) = plan2.by_address()[change.address].steps
    assert step.to_json() == {
        "verb": "update",
        "args": {"size": 3, "labels": {"add": ["c"], "remove": ["b"]}},
    }
    assert list(cloud["widgets"].values())[0]["labels"] == ["a", "c"]
    plan3, _ = plan_and_apply(cloud, [acme, widget(size=3, labels=["c", "a"])])
    assert not plan3.has_changes
