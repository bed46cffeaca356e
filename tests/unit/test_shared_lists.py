"""One request per list and plan: a kind whose read builds on another kind's list
(`Driver.reads_after`) is handed it by the engine instead of listing it again; and the
server groups' list pages past a cloud's lower `max_limit`.

The real drivers read through an in-memory stand-in of the clients they call, which
counts every call.
"""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest

from bootstrap import engine
from bootstrap.drivers import server_groups
from bootstrap.drivers.base import registry
from bootstrap.model import Address, Manifest, Ref, Resource
from bootstrap.retry import RetryPolicy
from tests.unit.fake_identity import FakeIdentity


class Calls:
    """Counts calls by name (the reads run in threads)."""

    def __init__(self):
        self.count: Counter = Counter()
        self._lock = threading.Lock()

    def __call__(self, name, result):
        def call(*args, **kwargs):
            with self._lock:
                self.count[name] += 1
            return result(*args, **kwargs) if callable(result) else result

        return call


def group_obj(i, members=()):
    info = {"id": f"g{i}", "name": f"sg{i}", "project_id": "p-acme", "policy": "affinity",
            "rules": {}, "members": list(members)}
    return SimpleNamespace(to_dict=lambda: dict(info), **info)


def server_obj(sid, name):
    info = {"id": sid, "name": name, "tenant_id": "p-acme", "status": "ACTIVE",
            "flavor": {"original_name": "m1"}, "addresses": {}, "tags": []}
    return SimpleNamespace(to_dict=lambda: dict(info), **info)


def groups_listing(groups, max_limit):
    """Nova's `common.limited`: at most min(limit, max_limit) from `offset`."""

    def list_(limit=None, offset=None, **kw):
        start = offset or 0
        return groups[start : start + min(limit or max_limit, max_limit)]

    return list_


def fake_cloud(calls, groups, max_limit=1000):
    quota = SimpleNamespace(to_dict=lambda: {"instances": 10, "cores": 20})
    identity = FakeIdentity({
        "/domains": [{"id": "d-default", "name": "Default", "description": "", "enabled": True}],
        "/projects": [{"id": "p-acme", "name": "acme", "domain_id": "d-default",
                       "description": "", "enabled": True, "parent_id": "d-default",
                       "tags": []}],
    })
    nova = SimpleNamespace(
        quotas=SimpleNamespace(
            defaults=calls("nova.quotas.defaults", quota), get=calls("nova.quotas.get", quota)
        ),
        server_groups=SimpleNamespace(
            list=calls("nova.server_groups.list", groups_listing(groups, max_limit))
        ),
        servers=SimpleNamespace(
            list=calls("nova.servers.list", [server_obj("s1", "web-1")])
        ),
    )
    return SimpleNamespace(
        identity=identity, nova=nova, roles={"admin"}, retry=RetryPolicy(), project_id="p-acme"
    )


ACME = Ref(Address("projects", ("acme",)))


def manifest() -> Manifest:
    resources = [
        Resource(Address("domains", ("Default",)), {"name": "Default"}),
        Resource(Address("projects", ("acme",)), {"name": "acme"}),
        Resource(Address("quotas", ("acme",)), {"project": ACME, "compute": {"instances": 10}}),
        Resource(
            Address("server_groups", ("acme", "sg0")),
            {"name": "sg0", "project": ACME, "policy": "affinity"},
        ),
        Resource(
            Address("servers", ("acme", "web-1")),
            {"name": "web-1", "project": ACME,
             "server_group": Ref(Address("server_groups", ("acme", "sg0")))},
        ),
    ]
    return Manifest(resources={r.address: r for r in resources})


def test_each_list_is_requested_once_per_plan():
    calls = Calls()
    cloud = fake_cloud(calls, [group_obj(0, members=["s1"])])
    drivers = {kind: cls() for kind, cls in registry().items()}
    kinds = ["domains", "projects", "quotas", "server_groups", "servers"]
    observed = engine.read_state(cloud, manifest(), drivers, kinds)

    lists = {name: n for name, n in calls.count.items() if name.endswith(".list")}
    lists.update({f"keystone {path}": n for path, n in cloud.identity.requests().items()})
    # server groups: the page and the empty one after it (a short page may be a capped one)
    assert lists == {
        "keystone /domains": 1,
        "keystone /projects": 1,
        "nova.server_groups.list": 2,
        "nova.servers.list": 1,
    }, lists
    # What the dependents made of the lists handed to them.
    assert [o.id for o in observed["quotas"]] == ["p-acme"]
    assert observed["servers"][0].fields["server_group"] == "g0"
    assert list(observed) == kinds


def test_the_lists_a_read_builds_on_are_read_first_even_when_not_asked_for():
    calls = Calls()
    cloud = fake_cloud(calls, [group_obj(0, members=["s1"])])
    drivers = {kind: cls() for kind, cls in registry().items()}
    observed = engine.read_state(cloud, manifest(), drivers, ["quotas", "servers"])
    assert list(observed) == ["quotas", "servers", "domains", "projects", "server_groups"]
    assert cloud.identity.requests()["/projects"] == 1
    assert observed["servers"][0].fields["server_group"] == "g0"


def test_servers_without_a_server_group_do_not_read_the_groups():
    drivers = {kind: cls() for kind, cls in registry().items()}
    m = Manifest()
    web = Resource(Address("servers", ("acme", "web-1")), {"name": "web-1", "project": ACME})
    m.resources[web.address] = web
    assert engine.read_order(m, drivers, ["servers"]) == {"servers": frozenset()}


def test_every_declared_read_dependency_is_a_kind_and_acyclic():
    drivers = {kind: cls() for kind, cls in registry().items()}
    for kind, driver in drivers.items():
        assert driver.reads_after <= set(drivers), kind
    # the order exists (graphlib raises CycleError otherwise)
    everything = Manifest(resources=manifest().resources)
    engine.read_order(everything, drivers, list(drivers))


@pytest.mark.parametrize("max_limit", [1, 2, 3, 7, 1000])
def test_server_groups_page_past_a_lower_max_limit(max_limit):
    calls = Calls()
    groups = [group_obj(i) for i in range(7)]
    cloud = fake_cloud(calls, groups, max_limit=max_limit)
    got = server_groups.list_groups(cloud, [])
    assert [g.id for g in got] == [f"g{i}" for i in range(7)]
    full = 7 // min(max_limit, server_groups.PAGE)
    # The full pages, then one more: the last, shorter than a full one, or an empty one.
    # All in a first short page: one more (empty), a cap cannot be told from the end.
    expected = full + 1 if full else 2
    assert calls.count["nova.server_groups.list"] == expected


def test_server_groups_none_is_one_request():
    calls = Calls()
    cloud = fake_cloud(calls, [])
    assert server_groups.list_groups(cloud, []) == []
    assert calls.count["nova.server_groups.list"] == 1


def test_the_one_re_read_at_apply_reads_what_the_kind_builds_on():
    """A create whose answer was lost is looked for again: quotas with the projects'
    and domains' lists (read then, since apply may have made the project)."""
    from bootstrap.apply import Applier
    from bootstrap.plan import Resolver

    calls = Calls()
    cloud = fake_cloud(calls, [])
    drivers = {kind: cls() for kind, cls in registry().items()}
    applier = Applier(cloud, drivers, Resolver({}))
    quota = manifest().resources[Address("quotas", ("acme",))]
    found = applier._read_again(drivers["quotas"], [quota])
    assert [o.id for o in found] == ["p-acme"]
    assert cloud.identity.requests() == {"/projects": 1, "/domains": 1}
