"""Keystone's paged lists: users, groups and projects are asked for with a `limit` and
followed through `links.next`. A Keystone of 2025.2 on caps a list asked without one at
`[DEFAULT] max_db_limit` (1,000) and says nothing, so a plan of a cloud with more users
than that would have planned to create the missing ones."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bootstrap.drivers._keystone import PAGE_SIZE, list_all
from bootstrap.drivers.users import UserDriver
from bootstrap.errors import CloudError
from tests.unit.fake_identity import FakeIdentity


def keystone(users: int, cap: int = 1000, truncated_without_next: bool = False) -> FakeIdentity:
    rows = [
        {"id": f"u{i:05d}", "name": f"user{i}", "domain_id": "default", "enabled": True}
        for i in range(users)
    ]
    return FakeIdentity({"/users": rows}, cap, truncated_without_next)


@pytest.mark.parametrize("users, cap, requests", [(10, 1000, 1), (2500, 1000, 3), (2500, 700, 4)])
def test_every_user_is_read_whatever_the_cap(users, cap, requests):
    identity = keystone(users, cap)
    got = list_all(SimpleNamespace(identity=identity), "/users")
    assert [u.id for u in got] == [r["id"] for r in identity.collections["/users"]]
    assert len(identity.urls) == requests
    assert f"limit={PAGE_SIZE}" in identity.urls[0]


def test_the_users_driver_reads_past_the_cap():
    observed = UserDriver().read_all(SimpleNamespace(identity=keystone(1500)), [])
    assert len(observed) == 1500  # a list without `limit` would have seen 1,000


def test_a_list_cut_short_without_a_next_page_is_an_error():
    cloud = SimpleNamespace(identity=keystone(1500, truncated_without_next=True))
    with pytest.raises(CloudError, match="cut the list of users short at 1000"):
        list_all(cloud, "/users")


def test_a_filtered_list_keeps_its_filter_and_pages():
    identity = keystone(3)
    got = list_all(SimpleNamespace(identity=identity), "/users", name="user1")
    assert [u.id for u in got] == ["u00001"]
    assert "name=user1" in identity.urls[0] and f"limit={PAGE_SIZE}" in identity.urls[0]


class Untouchable:
    """A manifest resource a read must not look at."""

    def __getattr__(self, name):
        raise AssertionError(f"read_all looked at resource.{name}")


class FakeNeutron:
    """Neutron's lists: one row in every JSON collection; the SDK's lists are empty."""

    def __init__(self, row):
        self.row = row

    def get(self, url, params=None):
        key = url.strip("/").replace("-", "_")
        return SimpleNamespace(status_code=200, json=lambda: {key: [self.row]})

    def __getattr__(self, name):
        return lambda *args, **kwargs: []


def test_the_lists_read_before_the_manifest_loads_ignore_it():
    """`Driver.reads_alone` lets the command line read a kind before the manifest has
    loaded, with no resources: its read_all must not look at them."""
    from bootstrap.drivers.base import registry

    alone = {k: cls() for k, cls in registry().items() if cls.reads_alone}
    assert set(alone) == {"projects", "users", "role_assignments", "regions", "services",
                          "endpoints", "networks", "subnets", "ports", "routers",
                          "floating_ips"}
    row = {"id": "x1", "name": "x", "domain_id": "default", "type": "t", "interface": "public",
           "service_id": "s", "url": "http://x", "region_id": "r", "role": {"id": "r1"},
           "user": {"id": "u1"}, "scope": {"project": {"id": "p1"}},
           "cidr": "10.0.0.0/24", "ip_version": 4, "network_id": "n1", "fixed_ips": []}
    cloud = SimpleNamespace(identity=FakeIdentity({f"/{k}": [row] for k in alone}),
                            network=FakeNeutron(row))
    for kind, driver in alone.items():
        assert driver.clients in (("identity",), ("sdk",)), kind  # no other fakes here
        got = driver.read_all(cloud, [Untouchable()])
        assert [o.id for o in got] == [o.id for o in driver.read_all(cloud, [])], kind
