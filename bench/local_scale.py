"""The local phases (load + schema, diff) at 100 / 1,000 / 10,000 / 20,000 identity
resources, without the cloud: the observed state is what Keystone would list had the
manifest been applied, built with the drivers' own `observe`. Shows the phases are
linear without creating ten thousand users on a shared cloud.

    python -m bench --scenario local --sizes 100,1000,10000 [--runs 3]

Each size runs in its own process (peak RSS is per process); medians of --runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from bench.scale_bench import RESULTS, generate, load_average, write_manifest


def synthetic_observed(loaded, drivers) -> dict:
    """Keystone's lists for the manifest, as the drivers observe them."""
    ids = {}
    domain = SimpleNamespace(id="default", name="Default", description="", enabled=True)
    out: dict = {"domains": [drivers["domains"].observe(domain)]}

    def raw(info: dict) -> SimpleNamespace:
        return SimpleNamespace(**info, _info=info)

    for r in loaded.manifest.of_kind("roles"):
        ids[r.address] = f"role-{r.spec['name']}"
        info = {"id": ids[r.address], "name": r.spec["name"], "domain_id": None}
        out.setdefault("roles", []).append(drivers["roles"].observe(raw(info)))
    for r in loaded.manifest.of_kind("projects"):
        ids[r.address] = f"p-{r.spec['name']}"
        info = {
            "id": ids[r.address],
            "name": r.spec["name"],
            "domain_id": "default",
            "description": r.spec.get("description", ""),
            "enabled": True,
            "parent_id": "default",
            "tags": [],
        }
        out.setdefault("projects", []).append(drivers["projects"].observe(raw(info)))
    for r in loaded.manifest.of_kind("users"):
        ids[r.address] = f"u-{r.spec['name']}"
        info = {
            "id": ids[r.address],
            "name": r.spec["name"],
            "domain_id": "default",
            "email": r.spec.get("email"),
            "enabled": True,
            "default_project_id": ids[r.spec["default_project"].address],
        }
        out.setdefault("users", []).append(drivers["users"].observe(raw(info)))
    for r in loaded.manifest.of_kind("role_assignments"):
        info = {
            "role": {"id": ids[r.spec["role"].address]},
            "user": {"id": ids[r.spec["user"].address]},
            "scope": {"project": {"id": ids[r.spec["project"].address]}},
        }
        out.setdefault("role_assignments", []).append(
            drivers["role_assignments"].observe(raw(info))
        )
    return out


def measure_one(path: str, runs: int) -> dict:
    """In this process: load and diff `runs` times each."""
    t0 = time.perf_counter()
    from bootstrap import engine
    from bootstrap.plan import make_plan

    imports = time.perf_counter() - t0
    loads, diffs = [], []
    for _ in range(runs):
        t = time.perf_counter()
        loaded = engine.load([path])
        loads.append(time.perf_counter() - t)
        drivers = engine.instantiate_drivers()
        observed = synthetic_observed(loaded, drivers)
        t = time.perf_counter()
        builtin = engine.builtin_ids(observed)
        plan, _ = make_plan(loaded.manifest, loaded.graph, drivers, observed, builtin, False, {})
        diffs.append(time.perf_counter() - t)
        changes = sum(1 for c in plan.changes if c.is_change)
        assert changes == 0, f"the synthetic cloud should match: {changes} changes"
    import resource

    return {
        "resources": len(loaded.manifest),
        "imports_s": round(imports, 3),
        "load_s": round(statistics.median(loads), 3),
        "diff_s": round(statistics.median(diffs), 3),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m bench --scenario local")
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # the child process: one manifest
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(args.one, args.runs)))
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pw = Path(tmp, "password")
        pw.write_text("bench-Secret-1\n")
        for size in (int(s) for s in args.sizes.split(",")):
            path = write_manifest(Path(tmp, f"identity-{size}"), generate("local-", size, str(pw)))
            load = load_average()
            cmd = [sys.executable, "-m", "bench.local_scale", "--one", str(path)]
            out = subprocess.run(
                [*cmd, "--runs", str(args.runs)], capture_output=True, text=True, check=True
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["load"] = load
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [
        "| resources | load + schema s | diff s | per 1,000: load / diff | RSS MB | load avg |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        k = r["resources"] / 1000
        lines.append(
            f"| {r['resources']} | {r['load_s']} | {r['diff_s']} | "
            f"{r['load_s'] / k:.3f} / {r['diff_s'] / k:.3f} | {r['rss_mb']} | {r['load']} |"
        )
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"local-identity-{stamp}.json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
