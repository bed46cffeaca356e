"""`--target ADDRESS`: plan a part of the manifest, with what that part needs. Pure.

The targeted resources are kept, plus every resource they depend on (references and
implicit dependencies, transitively: a server needs its project, network, subnet, image
and flavor to exist and be right), plus, for a targeted `state: absent` resource, the
absent resources that depend on it (they must be deleted first). Everything else is left
out of the plan as if the manifest did not declare it: not read, not diffed, not applied.
Each resource pulled in carries the reason, shown by every plan format.

`--prune` with `--target` is refused: a prune deletes what the manifest no longer lists,
which only the whole manifest can say.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from bootstrap.errors import PlanError
from bootstrap.model import Address, Manifest


@dataclass
class Targeting:
    """What --target asked for, and what was pulled in and why (address -> reason)."""

    requested: list[str]
    selected: list[str] = field(default_factory=list)
    pulled_in: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": list(self.requested),
            "selected": list(self.selected),
            "pulled_in": [{"address": a, "reason": r} for a, r in self.pulled_in.items()],
        }


def _matches(pattern: str, names: dict[str, Address]) -> list[Address]:
    if pattern in names:
        return [names[pattern]]
    if any(ch in pattern for ch in "*?["):
        return [a for n, a in names.items() if fnmatch.fnmatchcase(n, pattern)]
    return []


def unknown_target_error(patterns: list[str], names: dict[str, Address]) -> PlanError:
    lines = []
    for p in patterns:
        kind = p.split(".", 1)[0]
        same_kind = [n for n in names if n.startswith(kind + ".")]
        # The same kind first ("users.alic" -> users.alice), then any kind.
        near = difflib.get_close_matches(p, same_kind, n=3, cutoff=0.6)
        near = near or difflib.get_close_matches(p, list(names), n=3, cutoff=0.6)
        near = near or sorted(same_kind)[:3]
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        lines.append(f"--target {p!r}: no resource of the manifest has this address{hint}")
    return PlanError(
        "\n".join(lines) + "\nAddresses are kind.key as plans show them (projects.acme, "
        "servers.acme/web-1); globs work ('servers.acme/*'). Nothing was read."
    )


def restrict(
    manifest: Manifest, graph: nx.DiGraph, patterns: Sequence[str], prune: bool = False
) -> tuple[Manifest, nx.DiGraph, Targeting]:
    """The sub-manifest and sub-graph a --target plan works on, and why each is in it."""
    if prune:
        raise PlanError(
            "--prune cannot be combined with --target: a prune deletes what the whole "
            "manifest no longer lists. Run --prune without --target. Nothing was read."
        )
    names = {str(a): a for a in manifest.resources}
    wanted: list[Address] = []
    unknown: list[str] = []
    for p in patterns:
        found = _matches(p, names)
        if not found:
            unknown.append(p)
        wanted += [a for a in found if a not in wanted]
    if unknown:
        raise unknown_target_error(unknown, names)
    reasons: dict[Address, str] = {}
    queue = deque(wanted)
    chosen = set(wanted)

    def pull(address: Address, why: str) -> None:
        if address not in chosen:
            chosen.add(address)
            reasons[address] = why
            queue.append(address)

    while queue:
        node = queue.popleft()
        for dep in sorted(graph.predecessors(node)):
            data = graph.edges[dep, node]
            field_ = data.get("field", "")
            if data.get("implicit"):
                pull(dep, f"{node} needs it ({field_})")
            else:
                pull(dep, f"{node} refers to it ({field_})")
        if graph.nodes[node].get("state") == "absent":
            for user in sorted(graph.successors(node)):
                if graph.nodes[user].get("state") == "absent":
                    pull(user, f"must be deleted before {node}, which it depends on")
    sub = Manifest(
        resources={a: r for a, r in manifest.resources.items() if a in chosen},
        files=manifest.files,
        stack=manifest.stack,
        builtins=manifest.builtins,
    )
    targeting = Targeting(
        requested=list(patterns),
        selected=[str(a) for a in wanted],
        pulled_in={str(a): reasons[a] for a in sorted(reasons)},
    )
    return sub, graph.subgraph(chosen).copy(), targeting
