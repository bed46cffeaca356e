"""Lookups and names: what a plan says about resources it only reads.

`managed: false` resources are looked up, never written: finding them (by name when
their project is invisible to the user) and saying why a missing one matters or not.
Live ids of things outside the manifest are shown by the names the reads returned.
Pure: only the observations are used.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bootstrap.errors import Diagnostic
from bootstrap.model import Address, Manifest, Resource

if TYPE_CHECKING:
    import networkx as nx

    from bootstrap.drivers.base import Driver
    from bootstrap.plan import Observed, Resolver


def look_up(
    driver: Driver,
    resource: Resource,
    candidates: list[Observed],
    resolver: Resolver,
    diagnostics: list[Diagnostic],
    needed: bool = True,
    used: bool = True,
) -> Observed | None:
    """Find a `managed: false` resource the natural key alone did not find.

    Its project or domain may be invisible to the user (a non-admin cannot read the admin
    project that owns the external network): then the name alone must single it out.
    """
    where = str(resource.address)
    if driver.identity(resource, resolver) is None:
        found = [o for o in candidates if o.fields.get("name") == resource.spec.get("name")]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            diagnostics.append(
                Diagnostic(
                    "error",
                    f"{len(found)} visible {resource.kind} are named "
                    f"{resource.spec.get('name')!r}; qualify the lookup",
                    address=where,
                    source=resource.source,
                )
            )
            return None
    if getattr(candidates, "partial", False) or not needed:
        diagnostics.append(
            Diagnostic(
                "warning",
                lookup_missing(getattr(candidates, "partial", False), used),
                address=where,
                source=resource.source,
            )
        )
        return None
    diagnostics.append(
        Diagnostic(
            "error",
            "managed: false resource does not exist in the cloud (it is looked up, never created)",
            address=where,
            source=resource.source,
        )
    )
    return None


def _project_names(observed: dict[str, list[Observed]]) -> dict[str, str]:
    """Project id -> name, for names that single out one project among those read."""
    projects = observed.get("projects", [])
    counts: dict[str, int] = {}
    for o in projects:
        name = o.fields.get("name")
        if isinstance(name, str):
            counts[name] = counts.get(name, 0) + 1
    return {
        o.id: o.fields["name"]
        for o in projects
        if isinstance(o.fields.get("name"), str) and counts[o.fields["name"]] == 1
    }


_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)


def observed_names(observed: dict[str, list[Observed]]) -> dict[str, Address]:
    """Every named live resource read, by id: its kind and name (with its project's name
    for project-owned kinds). Pure: only what the reads returned. Only uuid-shaped ids:
    a short id ("default", a flavor's "1") could be mistaken for an ordinary value."""
    projects = _project_names(observed)
    out: dict[str, Address] = {}
    for kind, items in observed.items():
        for o in items:
            name = o.fields.get("name")
            if not isinstance(name, str) or not name or not _UUID.match(str(o.id)):
                continue
            owner = o.fields.get("project_id")
            key = (str(projects.get(owner, owner)), name) if isinstance(owner, str) else (name,)
            out.setdefault(o.id, Address(kind, key))
    return out


def used_by_present(manifest: Manifest, graph: nx.DiGraph, address: Address) -> bool:
    """Does anything present build on this lookup, directly or through other lookups
    (the admin project of the looked-up external network a router uses)?"""
    import networkx as nx

    return any(
        d in manifest.resources and not manifest.resources[d].absent
        for d in nx.descendants(graph, address)
    )


def lookup_missing(partial: bool, used: bool) -> str:
    """The warning for a lookup not found where that proves nothing or harms nothing."""
    if partial:
        # The list showed only what this user may see: not finding it proves nothing.
        return "managed: false resource not visible to this user" + (
            "; assumed to exist" if used else ""
        )
    if used:
        return "managed: false resource not found; only other lookups refer to it"
    return "managed: false resource not found; nothing present depends on it"
