"""Drive the engine against the real local cloud the way the CLI does.

Every helper returns what a test needs to assert on: the plan, the apply result and
the number of write requests (POST/PUT/PATCH/DELETE, token requests excluded) it cost.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Run:
    plan: Plan
    result: ApplyResult | None
    writes: int
    requests: int

    def actions(self) -> dict[str, str]:
        """address -> action for every change that is not a no-op."""
        return {str(c.address): c.action.value for c in self.plan.changes if c.is_change}


def plan(
    paths: list[str] | str,
    cloud_name: str = "devcloud",
    prune: bool = False,
    stack: str | None = None,
    adopt: bool = False,
) -> Plan:
    """A plan; `prune` needs a stack (the manifest's or `stack`): never prune without one
    on a shared cloud, it would take other runs' resources."""
    paths = [paths] if isinstance(paths, str) else paths
    cloud = connect(cloud_name)
    result, _ = engine.plan(cloud, engine.load(paths), prune=prune, stack=stack, adopt=adopt)
    return result


def apply(
    paths: list[str] | str,
    cloud_name: str = "devcloud",
    prune: bool = False,
    allow_destroy: bool = False,
    parallelism: int = 8,
    stack: str | None = None,
    adopt: bool = False,
) -> Run:
    paths = [paths] if isinstance(paths, str) else paths
    cloud = connect(cloud_name)
    loaded = engine.load(paths)
    the_plan, resolver = engine.plan(cloud, loaded, prune=prune, stack=stack, adopt=adopt)
    writes_before = cloud.counter.writes
    result = None
    if the_plan.has_changes:
        result = engine.apply(
            cloud, the_plan, resolver, allow_destroy=allow_destroy, parallelism=parallelism
        )
    return Run(the_plan, result, cloud.counter.writes - writes_before, cloud.counter.total)


def assert_converged(paths: list[str] | str, cloud_name: str = "devcloud") -> None:
    """Apply again: the plan must be all no-op and the apply must write nothing."""
    run = apply(paths, cloud_name)
    assert run.actions() == {}, f"not converged: {run.actions()}"
    assert run.writes == 0


__all__ = ["Action", "apply", "assert_converged", "connect", "plan", "write_manifest"]
