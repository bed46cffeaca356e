"""Stacks: which live resources a manifest owns, and so what its plan may delete.

A manifest names its stack (`stack: NAME`, or `--stack NAME`). Every ownership marker the
tool writes carries it, in the one place each service has for it:

- Keystone entities: the extra attributes `managed_by: openstack-bootstrap` and
  `bootstrap_stack: NAME` (`_keystone.MARKER_ATTR`, `_keystone.STACK_ATTR`);
- Neutron resources and Nova servers: the tags `managed-by:openstack-bootstrap` and
  `stack:NAME` (`_neutron.MARKER_TAG`, `_neutron.STACK_TAG_PREFIX`);
- Glance images: the properties `managed_by: openstack-bootstrap` and
  `bootstrap_stack: NAME` (`_glance.MARKER_PROP`, `_glance.STACK_PROP`);
- Cinder volumes: the same two keys in the volume metadata (`volumes.MARKER_KEY`, ...).

Flavors, volume types and keypairs have no place for a marker, role assignments neither (they are
judged by their two ends). The decisions, all pure and called by `make_plan`:

- `claim`: a declared resource whose live match is marked without a stack (made before
  stacks) gets an update step that marks it as this stack's; one marked by another stack
  is an error unless `--adopt`, which plans the same update. An unmarked one (made by
  someone else, or a create whose marking step never ran) stays unmarked, matched and
  managed but never pruned, and the plan warns once; `--adopt` marks it too, as a planned
  update. Only on request: a tool-made resource that lost its marker cannot be told from
  one the operators made (the `admin` project), and a marked one becomes prunable.
- `Owner.prune_changes`: deletes for this stack's resources the manifest no longer
  declares, and for role assignments whose actor and target are both this stack's.
- `Owner.plan_project_contents`: a deleted project takes along what this stack keeps in
  it (and its `default` security group), deleted first; anything else blocks it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bootstrap.errors import Diagnostic
from bootstrap.model import Address
from bootstrap.plan import Action, Change, FieldDiff, Observed, Step

if TYPE_CHECKING:
    import networkx as nx

    from bootstrap.drivers.base import Driver

# Letters, digits, ".", "_", "-"; at most 48: "stack:" + 48 fits Nova's 60-character
# tags, and no marker refuses these characters ("/" and "," are what Neutron and Nova
# refuse in tags). schemas/parts/_common.schema.json holds the same pattern.
STACK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$"
CREATING = (Action.CREATE, Action.REPLACE)
DEFAULT_GROUP = "default"


def valid_stack(name: str) -> bool:
    return re.fullmatch(STACK_PATTERN, name) is not None


def whose(obs: Observed) -> str:
    """Who owns a live resource, as a plan message says it."""
    if obs.managed and obs.stack:
        return f"stack '{obs.stack}'"
    if obs.managed:
        return "openstack-bootstrap without a stack (made before stacks)"
    return "no stack: openstack-bootstrap did not make it"


def claim(
    driver: Driver,
    change: Change,
    live: Observed | None,
    stack: str | None,
    adopt: bool,
    diagnostics: list[Diagnostic],
) -> Change:
    """Put the stack into what the change creates; re-mark or refuse what another owns."""
    resource = change.resource
    if stack is None or driver.ownership is None or resource is None or not resource.managed:
        return change
    if change.action in CREATING:
        driver.mark_create(change.steps, stack)
    if live is None or live.stack == stack and live.managed:
        return change
    if not live.managed and not (adopt and driver.claimable(live)):
        return change
    if live.stack is not None and not adopt:
        diagnostics.append(
            Diagnostic(
                "error",
                f"it belongs to stack '{live.stack}' (its marker says so), not to stack "
                f"'{stack}'; pass --adopt to take it over, or leave it out of this manifest",
                address=str(change.address),
                source=resource.source,
            )
        )
        return change
    if change.action in (Action.DELETE, Action.REPLACE):
        return change  # deleted; a replacement is created with this stack's marker
    if not live.managed:
        why = f"carries no ownership marker: adopted into stack '{stack}' (--adopt)"
    elif live.stack is None:
        why = f"marked without a stack (made before stacks): adopted into stack '{stack}'"
    else:
        why = f"taken over from stack '{live.stack}' (--adopt)"
    step = Step("update", driver.mark_patch(live, stack), note=f"marks it as stack {stack}'s")
    diff = FieldDiff("stack", live.stack if live.managed else "(unmarked)", stack)
    if change.action is Action.NOOP:
        return Change(
            change.address,
            Action.UPDATE,
            [diff],
            reason=why,
            resource=resource,
            observed=change.observed or live,
            steps=[step],
        )
    change.fields.append(diff)
    change.steps.append(step)
    change.reason = f"{change.reason}; {why}" if change.reason else why
    return change


def unmarked_warning(
    drivers: dict[str, Driver], changes: list[Change], stack: str | None
) -> Diagnostic | None:
    """One warning for the declared resources that stay unmarked (never pruned)."""
    if stack is None:
        return None
    left = [
        str(c.address)
        for c in changes
        if c.resource is not None
        and c.resource.managed
        and c.observed is not None
        and not c.observed.managed
        and drivers[c.address.kind].ownership is not None
        and drivers[c.address.kind].claimable(c.observed)
        and c.action not in (Action.DELETE, Action.REPLACE)
        and not any(f.field == "stack" for f in c.fields)
    ]
    if not left:
        return None
    shown = ", ".join(left[:8]) + (f" and {len(left) - 8} more" if len(left) > 8 else "")
    return Diagnostic(
        "warning",
        f"{len(left)} declared resource(s) exist without an ownership marker, so --prune "
        f"never deletes them: {shown}",
        detail=(
            "made outside this tool, or a create interrupted before its marking step; "
            f"`--adopt` marks them as stack '{stack}'s (shown in the plan)"
        ),
    )


class Owner:
    """What one stack owns among the observed resources."""

    def __init__(
        self, drivers: dict[str, Driver], observed: dict[str, list[Observed]], stack: str | None
    ):
        self.drivers = drivers
        self.observed = observed
        self.stack = stack
        self.by_id = {(k, o.id): o for k, items in observed.items() for o in items}

    def ours(self, obs: Observed) -> bool:
        """Marked with this stack (with no stack: marked by the tool before stacks)."""
        return obs.managed and obs.stack == self.stack

    def _ours(self, kind: str, live_id: str | None) -> bool:
        obs = self.by_id.get((kind, live_id)) if live_id else None
        return obs is not None and self.ours(obs)

    def assignment_ours(self, fields: dict) -> bool:
        """A role assignment is this stack's when its actor and its target both are."""
        actor = self._ours("users", fields.get("user_id")) or self._ours(
            "groups", fields.get("group_id")
        )
        target = self._ours("projects", fields.get("project_id")) or self._ours(
            "domains", fields.get("domain_id")
        )
        return actor and target and not fields.get("system")

    # --- --prune ----------------------------------------------------------------------
    def prune_changes(
        self, matched: dict[str, set[str]], taken: set[Address]
    ) -> list[Change]:
        from bootstrap.drivers.base import kinds

        found: list[tuple[Driver, Observed, str]] = []
        # Dependents before what they depend on: walk kinds in reverse manifest order.
        for kind in reversed(kinds()):
            driver = self.drivers.get(kind)
            if driver is None:
                continue
            for obs in self.observed.get(kind, []):
                if obs.id in matched.get(kind, set()):
                    continue
                if driver.ownership is not None and self.ours(obs):
                    why = (
                        f"stack '{self.stack}' made it and the manifest no longer has it "
                        "(--prune)"
                    )
                elif kind == "role_assignments" and self.assignment_ours(obs.fields):
                    why = (
                        f"its user or group and its target belong to stack '{self.stack}' "
                        "and the manifest no longer has it (--prune)"
                    )
                else:
                    continue
                found.append((driver, obs, why))
        return self._deletes(found, taken)

    def _deletes(
        self, found: list[tuple[Driver, Observed, str]], taken: set[Address]
    ) -> list[Change]:
        """Delete changes, each at its own address: two live resources whose names
        collide (or collide with a declared one) get their ids appended."""
        addresses = [self._address(d, o) for d, o, _ in found]
        seen: dict[Address, int] = {}
        for a in addresses:
            seen[a] = seen.get(a, 0) + 1
        out = []
        for (_driver, obs, why), address in zip(found, addresses, strict=True):
            if seen[address] > 1 or address in taken:
                address = Address(address.kind, (*address.key[:-1], f"{address.name}#{obs.id}"))
            taken.add(address)
            out.append(
                Change(
                    address=address,
                    action=Action.DELETE,
                    reason=why,
                    observed=obs,
                    destructive=True,
                    steps=[Step("delete", {"id": obs.id})],
                )
            )
        return out

    def _address(self, driver: Driver, obs: Observed) -> Address:
        """Where a live resource the manifest does not name shows in the plan: its
        project by name when the project is known (as a manifest would write it)."""
        if driver.kind != "role_assignments":
            address = driver.address_of_observed(obs)
            project = self.by_id.get(("projects", driver.project_of(obs)))
            if project is not None and address.key and address.key[0] == project.id:
                name = str(project.fields.get("name") or project.id)
                address = Address(address.kind, (name, *address.key[1:]))
            return address
        # role/actor/target by name where the names are known: what a manifest would say.
        f = obs.fields

        def name(kind: str, live_id: str | None) -> str:
            o = self.by_id.get((kind, live_id))
            return str(o.fields.get("name")) if o is not None else str(live_id)

        actor = next(
            (f"{k}:{name(k + 's', f[k + '_id'])}" for k in ("user", "group") if f.get(k + "_id")),
            "-",
        )
        target = next(
            (
                f"{k}:{name(k + 's', f[k + '_id'])}"
                for k in ("project", "domain")
                if f.get(k + "_id")
            ),
            f"system:{f.get('system')}",
        )
        if f.get("inherited"):
            target += ":inherited"
        return Address(driver.kind, (name("roles", f.get("role_id")), actor, target))

    # --- deleting a project -------------------------------------------------------------
    def plan_project_contents(
        self,
        changes: list[Change],
        graph: nx.DiGraph,
        matched: dict[str, set[str]],
        diagnostics: list[Diagnostic],
    ) -> nx.DiGraph:
        """Deletes for what lives in the projects this plan deletes, run before them.

        Returns the plan's graph with the order: every delete in a deleted project
        depends on the project (deletes run reversed, so it goes first), and between a
        declared delete and a planned one the kinds' order decides (a server before its
        network). Anything in the project that is not this stack's is an error.
        """
        from bootstrap.drivers.base import kinds

        gone = {
            c.observed.id: c
            for c in changes
            if c.address.kind == "projects" and c.action is Action.DELETE and c.observed
        }
        if not gone:
            return graph
        deleting = {
            (c.address.kind, c.observed.id)
            for c in changes
            if c.action is Action.DELETE and c.observed
        }
        found: list[tuple[Driver, Observed, str]] = []
        for kind in reversed(kinds()):
            driver = self.drivers.get(kind)
            if driver is None or driver.project_field is None:
                continue
            for obs in self.observed.get(kind, []):
                project = gone.get(driver.project_of(obs) or "")
                if project is None or (kind, obs.id) in deleting:
                    continue
                default_group = (
                    kind == "security_groups"
                    and obs.fields.get("name") == DEFAULT_GROUP
                    and not obs.managed
                )
                declared = obs.id in matched.get(kind, set())
                if not declared and (self.ours(obs) or default_group):
                    found.append((driver, obs, f"in {project.address}, which is deleted"))
                    continue
                what = "declared by this manifest" if declared else f"it belongs to {whose(obs)}"
                diagnostics.append(
                    Diagnostic(
                        "error",
                        f"cannot delete {project.address}: it holds {kind[:-1]} "
                        f"'{obs.fields.get('name') or obs.fields.get('address') or obs.id}' "
                        f"({obs.id}), {what}; delete or move it first",
                        address=str(project.address),
                        source=project.resource.source if project.resource else None,
                    )
                )
        contents = self._deletes(found, {c.address for c in changes})
        changes.extend(contents)
        return self._order(changes, graph, gone)

    def _order(
        self, changes: list[Change], graph: nx.DiGraph, gone: dict[str, Change]
    ) -> nx.DiGraph:
        from bootstrap.drivers.base import kinds

        rank = {k: i for i, k in enumerate(kinds())}
        g = graph.copy()
        inside: dict[str, list[Change]] = {}
        for c in changes:
            driver = self.drivers.get(c.address.kind)
            if c.action is not Action.DELETE or c.observed is None or driver is None:
                continue
            pid = driver.project_of(c.observed)
            if pid in gone:
                inside.setdefault(pid, []).append(c)
        for pid, members in inside.items():
            project = gone[pid].address
            for c in members:
                g.add_edge(project, c.address, field="project (deleted with it)", implicit=True)
            for a in members:
                for b in members:
                    # "b depends on a": b is deleted first. Only where one of the two is
                    # planned here (declared pairs keep the manifest's own edges).
                    if (a.resource is None or b.resource is None) and rank[a.address.kind] < rank[
                        b.address.kind
                    ]:
                        g.add_edge(a.address, b.address, field="deleted first", implicit=True)
        return g
