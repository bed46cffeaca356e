"""An in-memory Keystone v3 as the drivers read it: `cloud.identity.get(url).json()`.

Collections are served by path with the query's filters applied (`name=`, `domain_id=`)
and paged as Keystone 30 pages them: at most `cap` items per answer (its max_db_limit),
and a `links.next` only when a `limit` was asked for and the page is full.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse


class FakeIdentity:
    def __init__(
        self,
        collections: dict[str, list[dict]],
        cap: int = 1000,
        truncated_without_next: bool = False,
    ):
        self.collections = collections
        self.cap, self.truncated_without_next = cap, truncated_without_next
        self.urls: list[str] = []

    def get(self, url: str):
        self.urls.append(url)
        parsed = urlparse(url)
        path = parsed.path.removeprefix("/v3")
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        rows = [
            r
            for r in self.collections[path]
            if all(str(r.get(k)) == v for k, v in q.items() if k not in ("limit", "marker"))
        ]
        limit = min(int(q["limit"]), self.cap) if "limit" in q else self.cap
        start = next((i + 1 for i, r in enumerate(rows) if r["id"] == q.get("marker")), 0)
        page = rows[start : start + limit]
        key = path.rsplit("/", 1)[-1]
        body: dict = {key: page, "links": {"next": None}}
        if "limit" in q and len(page) == limit and not self.truncated_without_next:
            body["links"]["next"] = f"http://keystone/v3{path}?limit={limit}&marker={page[-1]['id']}"
        if self.truncated_without_next and start + limit < len(rows):
            body["truncated"] = True
        return SimpleNamespace(json=lambda: body)

    def requests(self) -> Counter:
        """Requests per collection path."""
        return Counter(urlparse(u).path.removeprefix("/v3") for u in self.urls)
