"""Shared pieces of the Keystone (identity v3) drivers."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from bootstrap.drivers.base import Driver
from bootstrap.errors import CloudError
from bootstrap.plan import Observed

# Keystone keeps unknown attributes of most entities ("extra") and returns them on
# reads: an invisible place for the ownership marker that --prune relies on.
MARKER_ATTR = "managed_by"
MARKER_VALUE = "openstack-bootstrap"
# The stack whose manifest declares the entity: a second attribute next to the marker.
STACK_ATTR = "bootstrap_stack"


# Keystone (2025.2 on) answers a list of users, groups or projects without `limit` with at
# most `[DEFAULT] max_db_limit` items (1,000 by default) and says nothing: no next link,
# no `truncated` flag. With a `limit`, a full page carries `links.next`. Those lists are
# therefore always asked for with one and followed to the end.
PAGED = frozenset({"users", "groups", "projects"})
PAGE_SIZE = 1000


class Record:
    """One entity of a Keystone list as its JSON gave it, read like keystoneclient's
    Resource (`user.name`, `_info`) but without its per-attribute copying."""

    __slots__ = ("_info",)

    def __init__(self, info: dict[str, Any]):
        self._info = info

    def __getattr__(self, name: str) -> Any:
        try:
            return self._info[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict[str, Any]:
        return dict(self._info)


def list_all(cloud: Any, path: str, key: str | None = None, **query: Any) -> list[Record]:
    """Every entity of a Keystone collection (`/users`, `/groups/<id>/users`), read as JSON
    on the session. keystoneclient stays the writes' client: its import alone took a sixth
    of a 1,000-resource no-op plan, and the reads then waited for it.

    The collections in PAGED are asked for PAGE_SIZE at a time and followed through
    `links.next`; a list the cloud cut short without a way on is an error (older
    Keystones with `list_limit` say `truncated` and give no next link)."""
    key = key or path.rsplit("/", 1)[-1]
    params = {k: v for k, v in query.items() if v is not None}
    if path.lstrip("/") in PAGED:
        params["limit"] = PAGE_SIZE
    url: str | None = f"{path}?{urlencode(params)}" if params else path
    items: list[Record] = []
    while url:
        body = cloud.identity.get(url).json()
        items += [Record(i) for i in body[key] if i]
        url = (body.get("links") or {}).get("next")
        if body.get("truncated") and not url:
            raise CloudError(
                f"Keystone cut the list of {key} short at {len(items)} and gave no next "
                "page; raise its [DEFAULT] list_limit, or a plan would see only part of them"
            )
    return items


def my_projects(cloud: Any) -> list[Record]:
    """The projects the credentials' user has a role on (what a non-admin may list)."""
    return list_all(cloud, f"/users/{cloud.user_id}/projects")


def marker() -> dict[str, str]:
    return {MARKER_ATTR: MARKER_VALUE}


def attr(raw: Any, name: str, default: Any = None) -> Any:
    """An attribute as the API returned it.

    keystoneclient's Resource answers a missing attribute with a GET of the whole
    resource (lazy loading): one request per created object. Read the body instead.
    """
    info = getattr(raw, "_info", None)
    if isinstance(info, dict):
        return info.get(name, default)
    return getattr(raw, name, default)


def is_managed(raw: Any) -> bool:
    return attr(raw, MARKER_ATTR) == MARKER_VALUE


def stack_of(raw: Any) -> str | None:
    """The stack a marked entity belongs to (None: unmarked, or marked before stacks)."""
    value = attr(raw, STACK_ATTR) if is_managed(raw) else None
    return str(value) if value else None


def text(value: Any) -> str:
    """Keystone returns "" or omits empty descriptions; compare both as ""."""
    return "" if value is None else str(value)


def with_marker(args: dict[str, Any]) -> dict[str, Any]:
    """Create arguments plus the ownership marker; None values left out (server defaults)."""
    return {**{k: v for k, v in args.items() if v is not None}, **marker()}


def ref_id(value: Any) -> Any:
    """Keystone links (role_assignments) carry {"id": ...}; pass ids through."""
    if isinstance(value, dict):
        return value.get("id")
    return value


class KeystoneDriver(Driver):
    """What every Keystone entity driver shares: one manager, list/update/delete by id.

    A subclass names its keystoneclient manager (also the collection's path and JSON key)
    and writes `observe` and `create`.
    """

    manager: ClassVar[str]
    # Reads are JSON on the session (list_all); writes go through keystoneclient.
    clients = ("identity",)
    write_clients = ("keystone",)
    reads_alone = True  # one list of the whole collection (subclasses that look say so)
    ownership = "extra"
    # Identity and catalog writes need the admin role under Keystone's default policy.
    needs_admin = True

    def api(self, cloud: Any) -> Any:
        return getattr(cloud.keystone, self.manager)

    def normalise(self, field_name: str, value: Any) -> Any:
        return text(value) if field_name == "description" else value

    def read_all(self, cloud, resources, known=None):
        return [self.observe(x) for x in list_all(cloud, f"/{self.manager}")]

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        if "domain_id" in args:
            args["domain"] = args.pop("domain_id")  # keystoneclient's name for it
        return args

    def mark_create(self, steps, stack):
        for step in steps:
            if step.verb == "create":
                step.args[STACK_ATTR] = stack  # with_marker adds managed_by at the call

    def mark_patch(self, observed, stack):
        return {**marker(), STACK_ATTR: stack}

    def observe(self, raw: Any) -> Observed:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def update(self, cloud, observed, patch, ctx):
        self.api(cloud).update(observed.id, **patch)

    def delete(self, cloud, observed, ctx):
        self.api(cloud).delete(observed.id)
