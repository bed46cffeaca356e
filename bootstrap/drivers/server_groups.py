"""server_groups: Nova server groups (affinity policies), in the project the manifest names.

Nova cannot change a group: a new policy or rules is a replace (destructive: the servers
in the group are replaced with it, through the servers' `server_group` reference — Nova
places a server in a group only when it boots). Policy and rules need compute
microversion 2.64 (the tool speaks 2.90). Read with one list call (`all_projects` for an
admin; a non-admin lists its own project and each other manifest project it has a role
on), paged by `limit`/`offset` since Nova gives no next link (see `pages`); the servers'
read is handed this list (`reads_after`) instead of listing again. Groups have no place
for an ownership marker: --prune never deletes them; deleting their project deletes
them first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bootstrap.drivers import _nova
from bootstrap.drivers._keystone import my_projects
from bootstrap.drivers.base import Driver
from bootstrap.model import Address, Ref
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

PAGE = 1000  # asked for; Nova answers at most its `[api]max_limit` (1000 by default)


def pages(nova: Any, **kw: Any) -> list[Any]:
    """Every server group of one listing, paged by `limit`/`offset` (Nova gives no next
    link). A page may be shorter than asked because the cloud's max_limit is lower: the
    pages go on until an empty one, or one shorter than an earlier page (that one was
    the cloud's full page, so a shorter one is the last)."""
    out: list[Any] = []
    longest = 0
    while True:
        page = list(nova.server_groups.list(limit=PAGE, offset=len(out), **kw))
        out.extend(page)
        if not page or len(page) < longest:
            return out
        longest = max(longest, len(page))


def list_groups(cloud: Any, resources: list[Any]) -> list[Any]:
    """Every server group the credentials can see."""
    if _nova.is_admin(cloud):
        return pages(cloud.nova, all_projects=True)
    groups = pages(cloud.nova)
    wanted = {
        r.spec["project"].address.name for r in resources if isinstance(r.spec.get("project"), Ref)
    }
    wanted.discard(getattr(cloud.access, "project_name", None))
    if wanted:
        for p in my_projects(cloud):
            if p.name in wanted and p.id != cloud.project_id:
                groups.extend(pages(_nova.project_cloud(cloud, p.id).nova))
    return groups


class ServerGroupDriver(Driver):
    clients = ("nova", "identity")
    made_in_token_project = True
    kind = "server_groups"
    key_fields = ("project", "name")
    references = {"project": "projects"}
    immutable = frozenset({"policy", "rules"})
    ownership = None
    project_field = "project_id"
    position = 125
    required_for_create = frozenset({"policy"})

    @classmethod
    def check(cls, c: Checker) -> None:
        rules = c.spec.get("rules") or {}
        if rules and c.spec.get("policy") != "anti-affinity":
            c.error(("rules",), "rules (max_server_per_host) are for policy: anti-affinity only")

    def observe(self, g: Any) -> Observed:
        info = g.to_dict() if hasattr(g, "to_dict") else dict(g)
        fields = {
            "name": info.get("name"),
            "project_id": info.get("project_id"),
            "policy": info.get("policy"),
            "rules": {k: int(v) for k, v in (info.get("rules") or {}).items()},
            "members": sorted(info.get("members") or []),
        }
        return Observed(info["id"], fields, g)

    def normalise(self, field_name, value):
        if field_name == "rules":
            return {k: int(v) for k, v in (value or {}).items()}
        return value

    def replace_reason(self, fields: list[str]) -> str:
        return (
            f"Nova cannot change a server group's {', '.join(fields)}: the group is deleted "
            "and created again, and its servers must be booted again to join the new one"
        )

    def address_of_observed(self, observed: Observed) -> Address:
        f = observed.fields
        return Address(self.kind, (str(f.get("project_id") or ""), str(f.get("name"))))

    def read_all(self, cloud, resources, known=None):
        return [self.observe(g) for g in list_groups(cloud, resources)]

    def create(self, cloud, args, ctx):
        scoped = _nova.project_cloud(cloud, args["project_id"], args["name"])
        group = scoped.nova.server_groups.create(
            args["name"], args["policy"], rules=args.get("rules") or None
        )
        return self.observe(group)

    def delete(self, cloud, observed, ctx):
        cloud.nova.server_groups.delete(observed.id)
