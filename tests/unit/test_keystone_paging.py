"""Keystone's paged lists: users, groups and projects are asked for with a `limit` and
followed through `links.next`. A Keystone of 2025.2 on caps a list asked without one at
`[DEFAULT] max_db_limit` (1,000) and says nothing, so a plan of a cloud with more users
than that would have planned to create the missing ones."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest

from bootstrap.drivers._keystone import PAGE_SIZE, list_all
from bootstrap.drivers.users import UserDriver
from bootstrap.errors import CloudError


class Keystone:
    """Keystone's list users: at most `cap` items per answer (its max_db_limit), a next
    link only when a `limit` was asked for and the page is full (as Keystone 30 does)."""

    def __init__(self, users: int, cap: int = 1000, truncated_without_next: bool = False):
        self.rows = [
            {"id": f"u{i:05d}", "name": f"user{i}", "domain_id": "default", "enabled": True}
            for i in range(users)
        ]
        self.cap, self.truncated_without_next = cap, truncated_without_next
        self.urls: list[str] = []

    def get(self, url: str):
        self.urls.append(url)
        q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        limit = min(int(q["limit"]), self.cap) if "limit" in q else self.cap
        start = next(
            (i + 1 for i, r in enumerate(self.rows) if r["id"] == q.get("marker")), 0
        )
        page = self.rows[start : start + limit]
        body = {"users": page, "links": {"next": None}}
        if "limit" in q and len(page) == limit and not self.truncated_without_next:
            body["links"]["next"] = f"http://keystone/v3/users?limit={limit}&marker={page[-1]['id']}"
        if self.truncated_without_next and start + limit < len(self.rows):
            body["truncated"] = True
        return None, body


def manager(keystone: Keystone):
    return SimpleNamespace(
        collection_key="users",
        client=keystone,
        resource_class=lambda mgr, info, loaded=True: SimpleNamespace(_info=info, **info),
        list=lambda: [SimpleNamespace(_info=r, **r) for r in keystone.rows[: keystone.cap]],
    )


@pytest.mark.parametrize("users, cap, requests", [(10, 1000, 1), (2500, 1000, 3), (2500, 700, 4)])
def test_every_user_is_read_whatever_the_cap(users, cap, requests):
    keystone = Keystone(users, cap)
    got = list_all(manager(keystone))
    assert [u.id for u in got] == [r["id"] for r in keystone.rows]
    assert len(keystone.urls) == requests
    assert f"limit={PAGE_SIZE}" in keystone.urls[0]


def test_the_users_driver_reads_past_the_cap():
    keystone = Keystone(1500)
    cloud = SimpleNamespace(keystone=SimpleNamespace(users=manager(keystone)))
    observed = UserDriver().read_all(cloud, [])
    assert len(observed) == 1500  # `users.list()` would have seen 1,000


def test_a_list_cut_short_without_a_next_page_is_an_error():
    with pytest.raises(CloudError, match="cut the list of users short at 1000"):
        list_all(manager(Keystone(1500, truncated_without_next=True)))
