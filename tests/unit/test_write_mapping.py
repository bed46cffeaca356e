"""The integration tier's check that apply sends only planned writes can fail."""

from __future__ import annotations

import networkx as nx

from bootstrap.model import Address
from bootstrap.plan import Action, Change, Observed, Plan, Step
from tests.integration.engine_util import unplanned_writes


def plan_of(*changes):
    return Plan(list(changes), nx.DiGraph())


UPDATE = Change(
    Address("projects", ("acme",)),
    Action.UPDATE,
    observed=Observed("p1", {}),
    steps=[Step("update", {"description": "x"})],
)
CREATE = Change(
    Address("networks", ("acme", "net")), Action.CREATE, steps=[Step("create"), Step("update")]
)


def test_writes_on_changed_resources_and_planned_creates_are_explained():
    writes = [
        ("PATCH", "/v3/projects/p1"),
        ("POST", "/v2.0/networks"),
        ("PUT", "/v2.0/networks/n9/tags/managed-by:openstack-bootstrap"),
    ]
    assert unplanned_writes(plan_of(UPDATE, CREATE), writes, {"p1", "n9"}) == []


def test_a_write_to_something_the_plan_does_not_change_is_caught():
    writes = [("PATCH", "/v3/projects/p1"), ("DELETE", "/v3/users/u7"), ("POST", "/v2.1/servers")]
    assert unplanned_writes(plan_of(UPDATE), writes, {"p1"}) == [
        ("DELETE", "/v3/users/u7"),
        ("POST", "/v2.1/servers"),
    ]


def test_writes_to_what_a_planned_create_made_are_explained():
    """An upload that fails is cleaned up by its create: the id is gone afterwards, but
    the writes went to what the planned create had just made."""
    image = Change(Address("images", ("cirros",)), Action.CREATE, steps=[Step("create")])
    writes = [
        ("POST", "/v2/images#i1"),
        ("PUT", "/v2/images/i1/file"),
        ("DELETE", "/v2/images/i1"),
        ("DELETE", "/v2/images/i2"),
    ]
    assert unplanned_writes(plan_of(image), writes, set()) == [("DELETE", "/v2/images/i2")]
