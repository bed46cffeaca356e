"""Drive the engine against the real local cloud the way the CLI does.

Every helper returns what a test needs to assert on: the plan, the apply result and
the number of write requests (POST/PUT/PATCH/DELETE, token requests excluded) it cost.
"""

from __future__ import annotations

import os
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bootstrap import engine
from bootstrap.apply import ApplyResult
from bootstrap.cloud import Cloud
from bootstrap.plan import Action, Plan

REPO = Path(__file__).resolve().parents[2]


def clouds_yaml() -> str:
    return os.environ.get("OS_CLIENT_CONFIG_FILE") or str(REPO / ".devcloud" / "clouds.yaml")


def connect(cloud_name: str = "devcloud") -> Cloud:
    return Cloud.connect(cloud_name, config_files=[clouds_yaml()])


def write_manifest(tmp_path: Path, text: str, name: str = "manifest.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# The collection a create POSTs to -> the kind whose planned create explains it.
COLLECTIONS = {
    "projects": "projects",
    "users": "users",
    "groups": "groups",
    "roles": "roles",
    "domains": "domains",
    "regions": "regions",
    "services": "services",
    "endpoints": "endpoints",
    "images": "images",
    "flavors": "flavors",
    "os-keypairs": "keypairs",
    "servers": "servers",
    "networks": "networks",
    "subnets": "subnets",
    "routers": "routers",
    "security-groups": "security_groups",
    "security-group-rules": "security_groups",
    "floatingips": "floating_ips",
    "os-server-groups": "server_groups",
    "application_credentials": "application_credentials",
}


class WriteLog:
    """Every write request a Cloud sends (token requests excepted), as (method, path)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, response) -> None:
        request = response.request
        path = urlsplit(request.url).path
        if request.method in ("GET", "HEAD") or path.endswith("/auth/tokens"):
            return
        if request.method == "POST":
            made = created_id(response)
            if made:
                path = f"{path}#{made}"  # what the create answered: later writes use it
        with self._lock:
            self.entries.append((request.method, path))

    def attach(self, cloud: Cloud) -> None:
        # The counter's hook is installed on every session of this Cloud, project-scoped
        # twins included: wrap it so they are recorded too.
        counted = cloud.counter.hook

        def hook(response, *args, **kwargs):
            self.record(response)
            return counted(response, *args, **kwargs)

        cloud.counter.hook = hook
        hooks = cloud.session.session.hooks["response"]
        hooks[hooks.index(counted)] = hook


def created_id(response) -> str | None:
    """The id in a create's answer ({"id": ...} or {"network": {"id": ...}})."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("id"), str):
        return body["id"]
    inner = next(iter(body.values()), None) if len(body) == 1 else None
    return inner.get("id") if isinstance(inner, dict) else None


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def unplanned_writes(the_plan: Plan, writes: list[tuple[str, str]], live_ids: set[str]):
    """Writes that no planned step explains: each must touch a changed resource's id, or
    create (POST to the collection of) a kind with a planned create or replace."""
    changed = [c for c in the_plan.changes if c.is_change]
    creating = {c.address.kind for c in changed for step in c.steps if step.verb == "create"}
    grants = any(c.address.kind == "role_assignments" for c in changed)
    rules_change = any(
        c.address.kind == "security_groups" and "rules" in step.args
        for c in changed
        for step in c.steps
    )
    # Ids the planned steps name (a rule to remove, a subnet to attach) and the last part
    # of composite ids (a keypair's "user/name" is deleted by its name).
    live_ids = set(live_ids) | {i.rsplit("/", 1)[-1] for i in live_ids}
    live_ids |= {v for c in changed for step in c.steps for v in strings(step.to_json())}
    out = []
    for method, entry in writes:
        path, _, made = entry.partition("#")
        segments = [s for s in path.split("/") if s]
        if any(s in live_ids for s in segments):
            continue
        if segments and segments[-1] == "security-group-rules" and rules_change:
            continue  # rules added to a group the plan creates or updates
        if method == "POST" and COLLECTIONS.get(segments[-1] if segments else "") in creating:
            if made:
                live_ids.add(made)  # a planned create: what it made may be written to next
            continue
        if grants and "roles" in segments and method in ("PUT", "DELETE"):
            continue  # a grant's URL holds its ends' ids, which need not change
        out.append((method, path))
    return out


@dataclass
class Run:
    plan: Plan
    result: ApplyResult | None
    writes: int
    requests: int
    write_log: list[tuple[str, str]] = field(default_factory=list)

    def actions(self) -> dict[str, str]:
        """address -> action for every change that is not a no-op."""
        return {str(c.address): c.action.value for c in self.plan.changes if c.is_change}


def plan(
    paths: list[str] | str,
    cloud_name: str = "devcloud",
    prune: bool = False,
    stack: str | None = None,
    adopt: bool = False,
    options=None,
) -> Plan:
    """A plan; `prune` needs a stack (the manifest's or `stack`): never prune without one
    on a shared cloud, it would take other runs' resources."""
    paths = [paths] if isinstance(paths, str) else paths
    cloud = connect(cloud_name)
    loaded = engine.load(paths, options)
    result, _ = engine.plan(cloud, loaded, prune=prune, stack=stack, adopt=adopt)
    return result


def apply(
    paths: list[str] | str,
    cloud_name: str = "devcloud",
    prune: bool = False,
    allow_destroy: bool = False,
    parallelism: int = 8,
    stack: str | None = None,
    adopt: bool = False,
    options=None,
) -> Run:
    """`options`: a manifest.LoadOptions (environment layers, variables)."""
    paths = [paths] if isinstance(paths, str) else paths
    cloud = connect(cloud_name)
    loaded = engine.load(paths, options)
    the_plan, resolver = engine.plan(cloud, loaded, prune=prune, stack=stack, adopt=adopt)
    writes_before = cloud.counter.writes
    log = WriteLog()
    log.attach(cloud)
    result = None
    if the_plan.has_changes:
        result = engine.apply(
            cloud, the_plan, resolver, allow_destroy=allow_destroy, parallelism=parallelism
        )
        check_writes_were_planned(the_plan, log.entries, cloud_name, paths, prune, options)
    run = Run(the_plan, result, cloud.counter.writes - writes_before, cloud.counter.total)
    run.write_log = log.entries
    return run


def check_writes_were_planned(the_plan, writes, cloud_name, paths, prune, options=None) -> None:
    """Apply sends nothing the plan does not list: every write maps to a planned change.

    The ids of what the plan created are read back with a fresh plan.
    """
    live_ids = {c.observed.id for c in the_plan.changes if c.is_change and c.observed}
    changed = {c.address for c in the_plan.changes if c.is_change}
    after, _ = engine.plan(connect(cloud_name), engine.load(paths, options), prune=prune)
    live_ids |= {c.observed.id for c in after.changes if c.address in changed and c.observed}
    stray = unplanned_writes(the_plan, writes, live_ids)
    assert not stray, f"apply sent writes no planned change explains: {stray}"


def assert_converged(
    paths: list[str] | str, cloud_name: str = "devcloud", options=None
) -> None:
    """Apply again: the plan must be all no-op and the apply must write nothing."""
    run = apply(paths, cloud_name, options=options)
    assert run.actions() == {}, f"not converged: {run.actions()}"
    assert run.writes == 0


__all__ = ["Action", "apply", "assert_converged", "connect", "plan", "write_manifest"]
