"""`bootstrap export`: a manifest from what the cloud's lists return. Pure.

The facts are the drivers' observations, the same reads a plan makes; a kind opts in
with `export_fields` in its driver (and an `export` override for nested references).
References are written by name (`Link`s rendered last, qualified only where a name is
shared); what lies outside the scope but is referenced becomes a `managed: false`
lookup; secrets become `{env: NAME}` placeholders. The output is what plan compares,
so exporting and planning the export against the same cloud is 0 changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from bootstrap.errors import BootstrapError
from bootstrap.model import DEFAULT_DOMAIN, Address, Resource

if TYPE_CHECKING:
    from bootstrap.drivers.base import Driver
    from bootstrap.plan import Observed

# An export_fields default meaning "always written" (a flavor's sizes).
ALWAYS = object()
# Kinds read for names even when not exported (every reference to them needs one).
NAME_KINDS = ("domains", "projects")


class ExportError(BootstrapError):
    """The scope names nothing, or something the export cannot express."""


@dataclass(frozen=True, order=True)
class Link:
    """A reference to a live resource by id; written as its name at the end."""

    kind: str
    id: str


@dataclass(frozen=True)
class Scope:
    """What to export: projects (by name), domains (by name), kinds; empty = all."""

    projects: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.projects and not self.domains


@dataclass
class Export:
    document: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # variable -> what it is for
    not_exported: list[str] = field(default_factory=list)  # kinds without export support
    lookups: list[str] = field(default_factory=list)  # addresses written as managed: false
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    read_seconds: float = 0.0

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
        )


class Names:
    """Live ids -> references, and what an entry needs beyond itself (lookups, secrets)."""

    def __init__(self, observed: dict[str, list[Observed]], default_domain_id: str):
        self.by_id = {k: {o.id: o for o in items} for k, items in observed.items()}
        self.default_domain_id = default_domain_id
        self.selected: set[Link] = set()
        self.linked: set[Link] = set()  # every resource some entry refers to
        self.env: dict[str, str] = {}
        self.warnings: list[str] = []

    def get(self, kind: str, live_id: Any) -> Observed | None:
        return self.by_id.get(kind, {}).get(live_id) if isinstance(live_id, str) else None

    def link(self, kind: str, live_id: Any) -> Link | None:
        """A reference to a live resource; None when no list returned it."""
        if kind == "domains" and live_id == self.default_domain_id:
            return Link(kind, str(live_id))
        if self.get(kind, live_id) is None:
            return None
        found = Link(kind, live_id)
        self.linked.add(found)
        return found

    def links(self, kind: str, value: Any) -> Any:
        """A reference field's value (an id or a list of ids) as Links; None if one is
        unknown (the field is then left out, with a warning)."""
        if isinstance(value, list):
            out = [self.link(kind, v) for v in value]
            return None if any(v is None for v in out) else sorted(out)
        return self.link(kind, value)

    def named(self, kind: str, name: Any, project_id: Any = None) -> Link | None:
        """A reference to what a live field names by name (Nova's flavor, keypair,
        networks): the one of that name, in `project_id` when there are several."""
        found = [o for o in self.by_id.get(kind, {}).values() if o.fields.get("name") == name]
        if len(found) > 1:
            found = [o for o in found if o.fields.get("project_id") in (project_id, None)]
        if len(found) > 1:
            found = [o for o in found if Link(kind, o.id) in self.selected]
        return self.link(kind, found[0].id) if len(found) == 1 else None

    def secret(self, variable: str, what: str) -> dict[str, str]:
        name = re.sub(r"[^A-Z0-9]+", "_", variable.upper()).strip("_")
        self.env[name] = what
        return {"env": name}


def key_spec(driver: Driver, obs: Observed, names: Names) -> dict[str, Any] | None:
    """The natural key of a live resource as manifest fields (the Default domain left
    out); None when a scope it names was not read."""
    spec: dict[str, Any] = {}
    for f in driver.key_fields:
        target = driver.references.get(f)
        if target is None:
            value = obs.fields.get(f)
            if value is not None:
                spec[f] = value
            continue
        live = obs.fields.get(f + "_id", obs.fields.get(f))
        if live is None or (f == "domain" and live == names.default_domain_id):
            continue
        ref = names.link(target, live)
        if ref is None:
            return None
        spec[f] = ref
    # The name first, as manifests are written; then the scope.
    return {k: spec[k] for k in sorted(spec, key=lambda k: k != "name")}


def entry(driver: Driver, obs: Observed, names: Names) -> dict[str, Any] | None:
    """The generic export hook: the key, then each export field unless it is the
    server's default; reference fields as Links."""
    spec = key_spec(driver, obs, names)
    if spec is None:
        return None
    for f, default in (driver.export_fields or {}).items():
        value = obs.fields.get(f)
        if f in spec or value is None or (default is not ALWAYS and value == default):
            continue
        target = driver.references.get(f) or driver.references.get(f + "[]")
        if target is not None:
            value = names.links(target, value)
            if value is None:
                names.warnings.append(
                    f"{driver.kind} {obs.fields.get('name', obs.id)}: {f} names a resource "
                    "no list returned; left out"
                )
                continue
        spec[f] = value
    return spec


def stand_in(kind: str, name: str, **spec: Any) -> Resource:
    """A resource no manifest holds, handed to `read_all` so that it reads what an export
    needs beyond the lists (see Driver.export_reads)."""
    return Resource(Address(kind, (name,)), {"name": name, **spec})


# --- scope ------------------------------------------------------------------------------


def _named(observed: dict[str, list[Observed]], kind: str, wanted: Iterable[str],
           domains: set[str] | None = None) -> set[str]:
    ids = set()
    for name in wanted:
        found = [
            o.id
            for o in observed.get(kind, [])
            if o.fields.get("name") == name
            and (domains is None or o.fields.get("domain_id") in domains)
        ]
        if not found:
            raise ExportError(f"no {kind[:-1]} named {name!r} (--{kind[:-1]} {name})")
        if len(found) > 1:
            raise ExportError(
                f"{len(found)} {kind} are named {name!r}; add --domain to say which"
            )
        ids.update(found)
    return ids


def select(
    observed: dict[str, list[Observed]], drivers: dict[str, Driver], scope: Scope
) -> set[Link]:
    """The live resources in scope: those named, and what lives in them or is tied to
    them through a driver's `export_scope` fields (repeated until nothing is added)."""
    exportable = [k for k, d in drivers.items() if d.export_fields is not None]
    if scope.everything:
        chosen = {Link(k, o.id) for k in exportable for o in observed.get(k, [])}
    else:
        domains = _named(observed, "domains", scope.domains) if scope.domains else set()
        if scope.projects:
            chosen = {
                Link("projects", i)
                for i in _named(observed, "projects", scope.projects, domains or None)
            }
        else:
            chosen = {Link("domains", i) for i in domains}
        while True:
            ids = {(link.kind, link.id) for link in chosen}
            more = {
                Link(k, o.id)
                for k in exportable
                for o in observed.get(k, [])
                if Link(k, o.id) not in chosen and _tied(drivers[k], o, ids)
            }
            more |= _actors(observed.get("role_assignments", []), chosen)
            if not more:
                break
            chosen |= more
    if scope.kinds:
        chosen = {link for link in chosen if link.kind in scope.kinds}
    return {link for link in chosen if link.kind in exportable}


def _actors(assignments: list[Observed], chosen: set[Link]) -> set[Link]:
    """Users and groups whose every role assignment is in scope (a team's own); one that
    also has roles elsewhere (the operators' admin) is referred to, as a lookup."""
    grants: dict[Link, list[bool]] = {}
    for o in assignments:
        for f, kind in (("user_id", "users"), ("group_id", "groups")):
            if o.fields.get(f):
                actor = Link(kind, str(o.fields[f]))
                grants.setdefault(actor, []).append(Link("role_assignments", o.id) in chosen)
    return {a for a, inside in grants.items() if all(inside) and a not in chosen}


def _tied(driver: Driver, obs: Observed, ids: set[tuple[str, str]]) -> bool:
    for f, kind in driver.export_scope.items():
        value = obs.fields.get(f)
        values = value if isinstance(value, list) else [value]
        if any((kind, v) in ids for v in values if isinstance(v, str)):
            return True
    return False


# --- the document -----------------------------------------------------------------------


def build(
    observed: dict[str, list[Observed]],
    drivers: dict[str, Driver],
    scope: Scope,
    default_domain_id: str,
    stack: str | None = None,
) -> Export:
    names = Names(observed, default_domain_id)
    names.selected = select(observed, drivers, scope)
    entries: dict[Link, dict[str, Any]] = {}
    for link in sorted(names.selected):
        if _default_domain(link, names):
            continue  # built in: never declared
        obs = names.get(link.kind, link.id)
        spec = drivers[link.kind].export(obs, names) if obs is not None else None
        if spec is not None:
            entries[link] = spec
    # Lookups: what entries refer to outside the scope, and what those refer to.
    lookups: dict[Link, dict[str, Any]] = {}
    while True:
        todo = sorted(
            x
            for x in names.linked
            if x not in entries and x not in lookups and not _default_domain(x, names)
        )
        if not todo:
            break
        for link in todo:
            obs = names.get(link.kind, link.id)
            driver = drivers[link.kind]
            spec = key_spec(driver, obs, names) if obs is not None else None
            more = {
                f: obs.fields[f] for f in driver.export_lookup_fields if obs and f in obs.fields
            }
            lookups[link] = {**(spec or {"name": link.id}), **more, "managed": False}
    keys = _keys(drivers, {**entries, **lookups}, names)
    document: dict[str, Any] = {"version": 1}
    if stack:
        document["stack"] = stack
    for kind in drivers:
        items = [(keys[x], x) for x in [*entries, *lookups] if x.kind == kind]
        if items:
            specs = {**entries, **lookups}
            document[kind] = [
                _render(specs[x], keys, drivers[kind]) for _, x in sorted(items, key=_order)
            ]
    dup = _duplicates(keys)
    if dup:
        raise ExportError(
            "two live resources share a natural key, which a manifest cannot tell apart: "
            + ", ".join(dup)
        )
    return Export(
        document,
        dict(sorted(names.env.items())),
        not_exported=sorted(k for k, d in drivers.items() if d.export_fields is None),
        lookups=sorted(_address(keys[x], x.kind) for x in lookups),
        warnings=names.warnings,
    )


def _order(item: tuple[tuple[str, ...], Link]) -> tuple:
    return (item[0], item[1].id)


def _default_domain(link: Link, names: Names) -> bool:
    return link.kind == "domains" and link.id == names.default_domain_id


def _address(key: tuple[str, ...], kind: str) -> str:
    return f"{kind}.{'/'.join(key)}"


def _keys(
    drivers: dict[str, Driver], specs: dict[Link, dict[str, Any]], names: Names
) -> dict[Link, tuple[str, ...]]:
    """Every written resource's natural key, by the names of its scope (for order,
    duplicates and qualifying shared names)."""
    keys: dict[Link, tuple[str, ...]] = {}

    def key(link: Link) -> tuple[str, ...]:
        if _default_domain(link, names):
            return (DEFAULT_DOMAIN,)
        if link not in keys:
            spec = specs.get(link, {})
            parts: list[str] = []
            for f in drivers[link.kind].key_fields:
                value = spec.get(f)
                if isinstance(value, Link):
                    parts.extend(key(value) if value.kind != "domains" else key(value)[-1:])
                elif value is not None:
                    parts.append(str(value))
            keys[link] = tuple(parts)
        return keys[link]

    for link in specs:
        key(link)
    return keys


def _duplicates(keys: dict[Link, tuple[str, ...]]) -> list[str]:
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for link, k in keys.items():
        seen[(link.kind, k)] = seen.get((link.kind, k), 0) + 1
    return sorted(_address(k, kind) for (kind, k), n in seen.items() if n > 1)


def _render(spec: dict[str, Any], keys: dict[Link, tuple[str, ...]], driver: Driver) -> Any:
    """Links as names, qualified by project/domain only when the name is shared."""
    shared: dict[tuple[str, str], int] = {}
    for link, k in keys.items():
        shared[(link.kind, k[-1])] = shared.get((link.kind, k[-1]), 0) + 1

    def name_of(link: Link) -> Any:
        if link.kind == "domains" and link not in keys:
            return DEFAULT_DOMAIN
        k = keys[link]
        if shared.get((link.kind, k[-1]), 0) <= 1 or len(k) == 1:
            return k[-1]
        # (scope name, name): the key's qualifiers are its project or domain.
        from bootstrap.drivers.base import registry

        scopes = [f for f in registry()[link.kind].key_fields[:-1] if f in ("project", "domain")]
        return {"name": k[-1], scopes[-1]: k[-2]} if scopes else k[-1]

    def walk(value: Any) -> Any:
        if isinstance(value, Link):
            return name_of(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(spec)
