"""What a no-op plan of a network manifest costs: requests and wall time.

The manifest: 1 project, 1 security group with 100 rules, 5 networks with a subnet
each, 2 routers (interfaces on the subnets). It is applied once, then planned
`--runs` times with nothing to do, each on a fresh connection as the CLI does (the
token request is counted as AUTH and is part of the time); the requests each plan sent
(by HTTP method) and the wall time are printed. `--keep` leaves the resources;
otherwise they are deleted.

    .venv/bin/python bench/network_bench.py [--cloud devcloud] [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bootstrap import engine  # noqa: E402
from tests.integration.engine_util import clouds_yaml  # noqa: E402


def manifest(prefix: str, rules: int = 100, networks: int = 5, routers: int = 2) -> str:
    p = f"{prefix}proj"
    out = [f"projects:\n  - name: {p}", "security_groups:"]
    out.append(f"  - name: {prefix}sg\n    project: {p}\n    rules:")
    out += [f"      - {{protocol: tcp, port: {2000 + i}}}" for i in range(rules)]
    out.append("networks:")
    out += [f"  - {{name: {prefix}net{i}, project: {p}}}" for i in range(networks)]
    out.append("subnets:")
    out += [
        f"  - {{name: {prefix}sub{i}, project: {p}, network: {prefix}net{i}, "
        f"cidr: 10.{200 + i}.0.0/24}}"
        for i in range(networks)
    ]
    out.append("routers:")
    for r in range(routers):
        subs = ", ".join(f"{prefix}sub{i}" for i in range(networks) if i % routers == r)
        out.append(f"  - {{name: {prefix}router{r}, project: {p}, interfaces: [{subs}]}}")
    return "\n".join(out) + "\n"


def absent(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("  - {"):
            line = line[:-1] + ", state: absent}"
        lines.append(line)
        if line.startswith("  - name:"):
            lines.append("    state: absent")
    return "\n".join(lines) + "\n"


def run_apply(cloud: engine.Cloud, path: str, allow_destroy: bool = False) -> None:
    loaded = engine.load([path])
    the_plan, resolver = engine.plan(cloud, loaded)
    if the_plan.has_changes:
        result = engine.apply(cloud, the_plan, resolver, allow_destroy=allow_destroy)
        if not result.ok:
            raise SystemExit(f"apply failed: {[(str(r.address), r.error) for r in result.failed]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cloud", default="devcloud")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)

    prefix = f"bench-{secrets.token_hex(3)}-"
    text = manifest(prefix)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.yaml")
        Path(path).write_text(text)
        connect = lambda: engine.Cloud.connect(args.cloud, [clouds_yaml()])  # noqa: E731
        # The project first: its rule quota (100 by default, automatic rules included)
        # must make room for the 100 rules.
        project_only = Path(tmp) / "project.yaml"
        project_only.write_text(text.split("security_groups:")[0])
        run_apply(connect(), str(project_only))
        admin = connect()
        pid = next(p.id for p in admin.keystone.projects.list() if p.name == f"{prefix}proj")
        admin.network.update_quota(pid, security_group_rules=1000)
        run_apply(connect(), path)
        try:
            times, counts = [], []
            for _ in range(args.runs):
                cloud = connect()
                before = cloud.counter.snapshot()
                t0 = time.monotonic()
                result, _ = engine.plan(cloud, engine.load([path]))
                times.append(time.monotonic() - t0)
                after = cloud.counter.snapshot()
                counts.append({m: after.get(m, 0) - before.get(m, 0) for m in after})
                drift = [(str(c.address), c.action.value) for c in result.changes if c.is_change]
                assert not drift, drift
            print("manifest: 1 security group x 100 rules, 5 networks + 5 subnets, 2 routers")
            print(f"no-op plan requests (per run): {counts[-1]} total={sum(counts[-1].values())}")
            print(
                f"no-op plan wall time over {args.runs} runs: "
                f"median {statistics.median(times):.3f}s, min {min(times):.3f}s, "
                f"max {max(times):.3f}s"
            )
        finally:
            if not args.keep:
                Path(path).write_text(absent(text))
                run_apply(connect(), path, allow_destroy=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
