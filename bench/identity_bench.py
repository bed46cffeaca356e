"""Identity benchmark: requests and wall time per scenario on the local cloud.

    python -m bench.identity_bench [--projects 50 --users 400] [--keep]

Generates a manifest of P projects, U users (each with a default project and a password
from a file) and 2 role assignments per user (member + reader on its project), then
measures: first apply, no-op plan, no-op apply, and a 1% out-of-band drift plan + apply
(writes must equal the number of changes). Removes everything at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from bootstrap import engine
from bootstrap.cloud import Cloud

RESULTS = Path(__file__).resolve().parent / "results"


def generate(prefix: str, projects: int, users: int, password_file: str, state: str) -> str:
    lines = ["roles:", "  - name: member", "  - name: reader", "projects:"]
    for p in range(projects):
        lines += [f"  - name: {prefix}p{p}", f"    description: bench project {p}"]
        if state == "absent":
            lines.append("    state: absent")
    lines.append("users:")
    for u in range(users):
        lines += [
            f"  - name: {prefix}u{u}",
            f"    email: u{u}@example.org",
            f"    password: {{file: {password_file}}}",
            f"    default_project: {prefix}p{u % projects}",
        ]
        if state == "absent":
            lines.append("    state: absent")
    lines.append("role_assignments:")
    for u in range(users):
        for role in ("member", "reader"):
            lines += [
                f"  - role: {role}",
                f"    user: {prefix}u{u}",
                f"    project: {prefix}p{u % projects}",
            ]
            if state == "absent":
                lines.append("    state: absent")
    return "\n".join(lines) + "\n"


def measure(cloud_name: str, path: str, do_apply: bool, parallelism: int) -> dict:
    cloud = Cloud.connect(cloud_name)
    t0 = time.monotonic()
    loaded = engine.load([path])
    t_load = time.monotonic() - t0
    plan, resolver = engine.plan(cloud, loaded)
    t_plan = time.monotonic() - t0
    out = {
        "resources": len(loaded.manifest),
        "changes": sum(1 for c in plan.changes if c.is_change),
        "plan_requests": plan.requests,
        "load_s": round(t_load, 3),
        "plan_s": round(t_plan, 3),
    }
    if do_apply and plan.has_changes:
        before_total, before_writes = cloud.counter.total, cloud.counter.writes
        t1 = time.monotonic()
        result = engine.apply(cloud, plan, resolver, parallelism=parallelism)
        out.update(
            apply_s=round(time.monotonic() - t1, 3),
            apply_requests=cloud.counter.total - before_total,
            apply_writes=cloud.counter.writes - before_writes,
            failed=result.count("failed"),
            errors=sorted({str(r.error)[:200] for r in result.failed})[:5],
        )
    elif do_apply:
        out.update(apply_s=0.0, apply_requests=0, apply_writes=0, failed=0)
    out["total_s"] = round(time.monotonic() - t0, 3)
    return out


def drift(cloud_name: str, prefix: str, projects: int, users: int) -> int:
    """Change 1% of the projects and users out of band; returns how many."""
    ks = Cloud.connect(cloud_name).keystone
    n_p, n_u = max(1, projects // 100), max(1, users // 100)
    for p in range(n_p):
        (proj,) = ks.projects.list(name=f"{prefix}p{p}")
        ks.projects.update(proj, description="drifted")
    for u in range(n_u):
        (user,) = ks.users.list(name=f"{prefix}u{u}")
        ks.users.update(user, email="drifted@example.org")
    return n_p + n_u


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cloud", default="devcloud")
    ap.add_argument("--projects", type=int, default=50)
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--parallelism", type=int, default=8)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    prefix = f"bench-{uuid.uuid4().hex[:6]}-"
    report: dict = {"projects": args.projects, "users": args.users}
    with tempfile.TemporaryDirectory() as tmp:
        pw = Path(tmp, "password")
        pw.write_text("bench-Secret-1\n")
        path = Path(tmp, "identity.yaml")
        path.write_text(generate(prefix, args.projects, args.users, str(pw), "present"))
        try:
            report["first_apply"] = measure(args.cloud, str(path), True, args.parallelism)
            report["noop_plan"] = measure(args.cloud, str(path), False, args.parallelism)
            report["noop_apply"] = measure(args.cloud, str(path), True, args.parallelism)
            report["drifted"] = drift(args.cloud, prefix, args.projects, args.users)
            report["drift_apply"] = measure(args.cloud, str(path), True, args.parallelism)
        finally:
            if not args.keep:
                path.write_text(generate(prefix, args.projects, args.users, str(pw), "absent"))
                report["cleanup"] = measure(args.cloud, str(path), True, args.parallelism)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "identity.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
