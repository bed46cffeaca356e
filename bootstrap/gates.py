"""Destroy gates: which changes of a plan apply runs, decided from the plan alone (pure).

A change **needs permission** when it destroys as a side effect of a field change: a
destructive replace, a rebuild, a resize (`Change.destructive` on a replace or update).
An explicit deletion — `state: absent`, or `--prune` — is destructive too (plans mark
it), but the manifest line or the flag that asks for it is its permission.

`--allow-destroy` allows every such change; `--allow-destroy PATTERN` (repeatable,
shell-style globs on addresses: `servers.acme/*`) allows those it matches. A change that
needs permission and lacks it is **held back**, and so is everything after it in the
execution graph (what depends on it: it would otherwise run against the old resource or
wait for an id that never comes). A create-before-destroy replace whose dependents are
held back is held back too: its old resource could not be deleted while they still use
it. Every other change is applied.

`lifecycle.prevent_destroy` is stronger: a plan that would destroy such a resource is an
error (located), whatever the flags say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bootstrap.errors import Diagnostic
from bootstrap.model import Address
from bootstrap.plan import Action, Change, Plan


@dataclass(frozen=True)
class Permission:
    """What --allow-destroy allows: everything, or the addresses matching a pattern."""

    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, allow: bool | Iterable[str] | None) -> Permission:
        """True: everything; False/None: nothing; patterns: those ("*" is everything)."""
        if allow is True:
            return cls(("*",))
        if not allow:
            return cls()
        return cls(tuple(allow))

    @property
    def everything(self) -> bool:
        return "*" in self.patterns

    def allows(self, address: Address) -> bool:
        return any(fnmatchcase(str(address), p) for p in self.patterns)


def needs_permission(change: Change) -> bool:
    """Destruction as a side effect (replace, rebuild, resize), not an explicit delete."""
    return change.destructive and change.action in (Action.REPLACE, Action.UPDATE)


def held_back(plan: Plan, permission: Permission) -> dict[Address, str]:
    """address -> why apply will not run it. Only changes appear (no-ops have nothing to
    hold); apply also skips whatever else lies after a held-back node."""
    import networkx as nx

    from bootstrap.apply import execution_graph

    graph = execution_graph(plan)
    changes = plan.by_address()
    held: dict[Address, str] = {}
    for c in plan.changes:
        if needs_permission(c) and not permission.allows(c.address):
            held[c.address] = f"needs --allow-destroy (or --allow-destroy '{c.address}')"
    while True:
        grown = False
        for root in list(held):
            for d in nx.descendants(graph, root):
                if not isinstance(d, Address):
                    continue  # the old resource's delete: see below
                if d not in held and changes[d].is_change:
                    held[d] = f"depends on {root}, which is held back"
                    grown = True
        # A create-before-destroy replace cannot finish while a dependent is held back.
        for c in plan.changes:
            if c.creates_first and c.address not in held:
                waiting = sorted(str(s) for s in graph.successors(c.address) if s in held)
                if waiting:
                    held[c.address] = (
                        f"the old one stays in use by {', '.join(waiting)}, which "
                        f"{'is' if len(waiting) == 1 else 'are'} held back"
                    )
                    grown = True
        if not grown:
            return held


def hold(plan: Plan, permission: Permission) -> dict[Address, str]:
    """Decide what is held back and mark it on the plan's changes (for the renderers)."""
    held = held_back(plan, permission)
    for c in plan.changes:
        c.held_back = held.get(c.address, "")
    return held


def destroys(change: Change) -> bool:
    """Deletes, replaces (destructive or not), rebuilds, resizes: what prevent_destroy stops."""
    return change.action in (Action.DELETE, Action.REPLACE) or change.destructive


def prevent_destroy_errors(changes: Iterable[Change]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for c in changes:
        r = c.resource
        if r is None or not r.lifecycle.prevent_destroy or not destroys(c):
            continue
        verb = {Action.DELETE: "delete", Action.REPLACE: "replace"}.get(c.action, "change")
        out.append(
            Diagnostic(
                "error",
                f"lifecycle.prevent_destroy: the plan would {verb} it ({c.reason}); "
                "--allow-destroy does not override this: change the manifest",
                address=str(c.address),
                source=r.field_sources.get("lifecycle.prevent_destroy") or r.source,
            )
        )
    return out
