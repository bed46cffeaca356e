"""Scale benchmark: each phase of a plan at 100 / 1,000 / 10,000 identity resources,
the first apply next to the cloud's own write ceiling, and the drift re-run asserted.

    python -m bench --scenario identity --sizes 100,1000 [--runs 3] [--prefix bench-]

Per size (projects 5 %, users 40 %, role assignments 55 % of the resources: 500 /
4,000 / 5,500 at 10,000, plus the two roles):

1. the ceiling: the same POSTs (projects, users with passwords, role grants, in the
   scenario's mix) sent directly with keystoneauth by a plain thread pool: a sample
   (`--ceiling-sample`, 0 skips it) at 4, 8, 16 and 32 workers finds the best count,
   then as many writes as the apply makes (at most 2,000) at that count give the rate;
2. the tool's first apply (in process, default parallelism): requests, writes, seconds,
   and its time over the time the ceiling rate would take (the ratio);
3. the no-op plan, `--runs` times, each a fresh `bootstrap plan --format json` process:
   median wall time from process start, peak RSS, requests, and every phase's median
   (the JSON plan's timings);
4. 1 % of the projects and users changed out of band; the plan + apply that follows
   must make exactly the no-op plan's reads and one write per change (asserted);
5. everything deleted (`state: absent`), unless --keep.

The load average is printed next to every figure: the numbers are only comparable
between runs on an equally busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bootstrap import engine
from bootstrap.cloud import Cloud

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = (
    "imports", "libraries", "load", "graph", "connect", "clients", "reads", "probes", "diff",
    "total",
)


def shape(resources: int) -> tuple[int, int, int]:
    """(projects, users, assignments) for about `resources` resources."""
    projects = max(1, resources * 5 // 100)
    users = max(1, resources * 40 // 100)
    return projects, users, max(users, resources - projects - users)


def generate(prefix: str, resources: int, password_file: str, state: str = "present") -> str:
    return "\n".join(identity_lines(prefix, *shape(resources), password_file, state)) + "\n"


def identity_lines(
    prefix: str, projects: int, users: int, assignments: int, password_file: str, state: str
) -> list[str]:
    """The identity part of a scenario's manifest (YAML lines): two roles, the projects,
    users with passwords (user u's default project is project u % projects), the
    assignments (the first `users` make each user a member of that project, the rest
    readers of it)."""
    absent = ["    state: absent"] if state == "absent" else []
    lines = ["roles:", "  - name: member", "  - name: reader", "projects:"]
    for p in range(projects):
        lines += [f"  - name: {prefix}p{p}", f"    description: bench project {p}", *absent]
    lines.append("users:")
    for u in range(users):
        lines += [
            f"  - name: {prefix}u{u}",
            f"    email: u{u}@example.org",
            f"    password: {{file: {password_file}}}",
            f"    default_project: {prefix}p{u % projects}",
            *absent,
        ]
    lines.append("role_assignments:")
    for i in range(assignments):
        u = i % users
        role = "member" if i < users else "reader"
        lines += [
            f"  - role: {role}",
            f"    user: {prefix}u{u}",
            f"    project: {prefix}p{u % projects}",
            *absent,
        ]
    return lines


def write_manifest(directory: Path, text: str, per_file: int = 1000) -> Path:
    """The manifest as a directory of files of at most `per_file` items each (a file is
    limited to 50,000 YAML nodes)."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    section, items = "", []  # type: ignore[var-annotated]
    chunks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if not line.startswith(" "):
            section = line
            chunks.append((section, []))
            items = []
            continue
        if line.startswith("  - "):
            if len(items) == per_file:
                chunks.append((section, []))
            items = chunks[-1][1]
            items.append(line)
        else:
            chunks[-1][1][-1] += "\n" + line
    for i, (head, lines) in enumerate(chunks):
        (directory / f"{i:04d}.yaml").write_text(head + "\n" + "\n".join(lines) + "\n")
    return directory


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# ---- the ceiling: the same writes without the tool ------------------------------------


def ceiling(cloud: Cloud, prefix: str, sample: int, password: str, full: int = 0) -> dict:
    """The best write rate of a plain thread pool: `sample` writes at each of 4, 8, 16
    and 32 workers to find the best count, then `full` writes (the apply's own number,
    capped at FULL_CEILING_CAP) at that count: the rate the apply is compared with."""
    ks = cloud.keystone
    roles = {r.name: r.id for r in ks.roles.list() if r.name in ("member", "reader")}
    domain = ks.domains.list(name="Default")[0].id
    out: dict = {"sample_writes": 0, "by_workers": {}}

    def measure(workers: int, writes_wanted: int, tag: str) -> dict:
        writer = _Writer(cloud, f"{prefix}{tag}{workers}-", roles, domain, password)
        load = load_average()
        t0 = time.monotonic()
        writes = writer.run(writes_wanted, workers)
        seconds = time.monotonic() - t0
        writer.clean_up()
        return {
            "writes": writes,
            "seconds": round(seconds, 2),
            "writes_per_s": round(writes / seconds, 2),
            "load": load,
        }

    for workers in (4, 8, 16, 32):
        out["by_workers"][workers] = measure(workers, sample, "c")
        out["sample_writes"] = out["by_workers"][workers]["writes"]
    best = max(out["by_workers"].items(), key=lambda kv: kv[1]["writes_per_s"])
    out["best_workers"], out["writes_per_s"] = best[0], best[1]["writes_per_s"]
    full = min(full, FULL_CEILING_CAP)
    if full > sample:
        # The short samples find the count; the rate comes from a run as long as the
        # apply's (caches, connection reuse and Keystone's queue settle over minutes).
        out["full"] = measure(out["best_workers"], full, "f")
        out["writes_per_s"] = out["full"]["writes_per_s"]
    return out


FULL_CEILING_CAP = 2000


class _Writer:
    """The scenario's writes as plain keystoneauth requests (what the tool's apply sends)."""

    def __init__(self, cloud: Cloud, tag: str, roles: dict, domain: str, password: str):
        self.sess, self.tag, self.roles = cloud.session, tag, roles
        self.domain, self.password = domain, password
        self.ep = {"service_type": "identity", "interface": cloud.interface}
        if cloud.region_name:
            self.ep["region_name"] = cloud.region_name
        self.pids: list[str] = []
        self.uids: list[str] = []

    def _post(self, path: str, body: dict) -> str:
        """A create; after a dropped connection, found by name or sent again (as any
        careful client must: Keystone closes pooled connections idle for ~2 s)."""
        from keystoneauth1 import exceptions as ks_exc

        try:
            resp = self.sess.post(path, json=body, endpoint_filter=self.ep)
        except ks_exc.ConnectFailure:
            name = next(iter(body.values()))["name"]
            found = self.sess.get(f"{path}?name={name}", endpoint_filter=self.ep).json()
            listed = next(v for k, v in found.items() if k != "links")
            if listed:
                return listed[0]["id"]
            resp = self.sess.post(path, json=body, endpoint_filter=self.ep)
        return next(iter(resp.json().values()))["id"]

    def project(self, p: int) -> str:
        return self._post(
            "/projects", {"project": {"name": f"{self.tag}p{p}", "domain_id": self.domain}}
        )

    def user(self, u: int) -> str:
        body = {
            "name": f"{self.tag}u{u}",
            "email": f"u{u}@example.org",
            "password": self.password,
            "default_project_id": self.pids[u % len(self.pids)],
            "domain_id": self.domain,
        }
        return self._post("/users", {"user": body})

    def grant(self, i: int) -> None:
        u = i % len(self.uids)
        role = self.roles["member" if i < len(self.uids) else "reader"]
        pid = self.pids[u % len(self.pids)]
        path = f"/projects/{pid}/users/{self.uids[u]}/roles/{role}"
        try:
            self.sess.put(path, endpoint_filter=self.ep)
        except Exception:  # noqa: BLE001 - a dropped connection: PUT is idempotent
            self.sess.put(path, endpoint_filter=self.ep)

    def run(self, sample: int, workers: int) -> int:
        projects, users, assignments = shape(sample)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            self.pids = list(pool.map(self.project, range(projects)))
            self.uids = list(pool.map(self.user, range(users)))
            list(pool.map(self.grant, range(assignments)))
        return projects + users + assignments

    def clean_up(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda i: self.sess.delete(f"/users/{i}", endpoint_filter=self.ep), self.uids
                )
            )
            list(
                pool.map(
                    lambda i: self.sess.delete(f"/projects/{i}", endpoint_filter=self.ep), self.pids
                )
            )


# ---- the tool ----------------------------------------------------------------------------


def apply_in_process(cloud_name: str, path: str) -> dict:
    cloud = Cloud.connect(cloud_name)
    load = load_average()
    t0 = time.monotonic()
    loaded = engine.load([path])
    plan, resolver = engine.plan(cloud, loaded)
    out = {
        "resources": len(loaded.manifest),
        "changes": sum(1 for c in plan.changes if c.is_change),
        "plan_requests": plan.requests,
        "load": load,
    }
    t1 = time.monotonic()
    before_total, before_writes = cloud.counter.total, cloud.counter.writes
    result = engine.apply(cloud, plan, resolver) if plan.has_changes else None
    out.update(
        apply_s=round(time.monotonic() - t1, 2),
        total_s=round(time.monotonic() - t0, 2),
        apply_requests=cloud.counter.total - before_total,
        apply_writes=cloud.counter.writes - before_writes,
        failed=result.count("failed") if result else 0,
    )
    return out


def noop_plan(cloud_name: str, path: str) -> dict:
    """One `bootstrap plan` process: wall time from start, peak RSS, its JSON plan."""
    cmd = [sys.executable, "-m", "bootstrap", "plan", path, "--format", "json"]
    if cloud_name:
        cmd += ["--cloud", cloud_name]
    load = load_average()
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read()
        proc.stdout.close()
        # Reaped here, not by Popen, for the child's own peak RSS.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"plan failed: {err.read().decode()[-2000:]}")
    doc = json.loads(stdout)
    return {
        "wall_s": round(wall, 3),
        "requests": doc["requests"],
        "changes": sum(doc["summary"].get(k, 0) for k in ("create", "update", "replace", "delete")),
        "timings": doc.get("timings", {}),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load": load,
    }


def median_of(runs: list[dict]) -> dict:
    out = {
        "runs": len(runs),
        "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "requests": max(r["requests"] for r in runs),
        "rss_mb": max(r["rss_mb"] or 0 for r in runs),
        "load": [r["load"] for r in runs],
        "phases": {
            p: round(statistics.median(r["timings"].get(p, 0.0) for r in runs), 3)
            for p in {k for r in runs for k in r["timings"]}
        },
    }
    return out


def drift(cloud_name: str, prefix: str, resources: int) -> int:
    """Change 1 % of the projects and users out of band; returns how many."""
    ks = Cloud.connect(cloud_name).keystone
    projects, users, _ = shape(resources)
    n_p = max(1, projects // 100)
    for p in range(n_p):
        (proj,) = ks.projects.list(name=f"{prefix}p{p}")
        ks.projects.update(proj, description="drifted")
    return n_p + drift_users(ks, prefix, max(1, users // 100))


def drift_users(ks, prefix: str, n: int) -> int:
    """Change the first `n` users' emails out of band with keystoneclient."""
    for u in range(n):
        (user,) = ks.users.list(name=f"{prefix}u{u}")
        ks.users.update(user, email="drifted@example.org")
    return n


@dataclass(frozen=True)
class Scenario:
    """What differs between the scale scenarios; run_size is the same for all."""

    name: str
    generate: Callable[..., str]  # (prefix, size, password_file, state) -> manifest text
    drift: Callable[[str, str, int], int]  # (cloud, prefix, size) -> changes made
    ceiling: int = 100  # default --ceiling-sample (0: the ceiling is skipped)
    # (cloud, manifest path, median no-op plan, report): asserts what a no-op plan sends
    check_noop: Callable[..., None] | None = None
    label: Callable[[dict], str] = lambda r: str(r["first_apply"]["resources"])


IDENTITY = Scenario("identity", generate, drift)


def run_size(
    args: argparse.Namespace, size: int, tmp: Path, pw: Path, scenario: Scenario = IDENTITY
) -> dict:
    prefix = f"{args.prefix}{uuid.uuid4().hex[:6]}-"
    path = write_manifest(tmp / f"{scenario.name}-{size}", scenario.generate(prefix, size, str(pw)))
    report: dict = {"size": size, "prefix": prefix}
    try:
        if args.ceiling_sample:
            cloud = Cloud.connect(args.cloud)
            report["ceiling"] = ceiling(
                cloud, prefix, args.ceiling_sample, pw.read_text().strip(), full=size
            )
        first = report["first_apply"] = apply_in_process(args.cloud, str(path))
        if first["failed"]:
            raise SystemExit(f"first apply failed for {first['failed']} resources")
        if "ceiling" in report and first["apply_writes"]:
            ideal = first["apply_writes"] / report["ceiling"]["writes_per_s"]
            report["ratio_to_ceiling"] = round(first["apply_s"] / ideal, 2)
        runs = [noop_plan(args.cloud, str(path)) for _ in range(args.runs)]
        assert all(r["changes"] == 0 for r in runs), "the no-op plan has changes"
        noop = report["noop_plan"] = median_of(runs)
        assert all(r["requests"] == noop["requests"] for r in runs), [r["requests"] for r in runs]
        if scenario.check_noop:
            scenario.check_noop(args.cloud, str(path), noop, report)
        changed = report["drifted"] = scenario.drift(args.cloud, prefix, size)
        again = report["drift_apply"] = apply_in_process(args.cloud, str(path))
        # The drift re-run: the no-op reads, then exactly one write per change.
        assert again["changes"] == changed, again
        assert again["plan_requests"] == noop["requests"], (again, noop["requests"])
        assert again["apply_writes"] == changed == again["apply_requests"], again
        report["drift_asserted"] = True
    finally:
        if not args.keep:
            write_manifest(path, scenario.generate(prefix, size, str(pw), "absent"))
            report["cleanup"] = apply_in_process(args.cloud, str(path))
    return report


def table(reports: list[dict], scenario: Scenario = IDENTITY) -> str:
    head = (
        "| resources | no-op wall s (median) | requests | peak RSS MB | "
        + " | ".join(PHASES)
        + " | first apply s | writes | ceiling w/s (workers) | ratio | drift | load |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in reports:
        n, first, c = r["noop_plan"], r["first_apply"], r.get("ceiling")
        ceil = f"{c['writes_per_s']} ({c['best_workers']})" if c else "skipped"
        drift_cell = f"{r['drifted']} changed: +{r['drift_apply']['apply_writes']} writes"
        rows.append(
            f"| {scenario.label(r)} | {n['wall_s']} | {n['requests']} | "
            f"{n['rss_mb']} | "
            + " | ".join(str(n["phases"].get(p, "-")) for p in PHASES)
            + f" | {first['apply_s']} | {first['apply_writes']} | {ceil} | "
            f"{r.get('ratio_to_ceiling', '-')} | {drift_cell} | "
            f"{'/'.join(str(x) for x in n['load'])} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None, scenario: Scenario = IDENTITY) -> list[dict]:
    ap = argparse.ArgumentParser(prog=f"python -m bench --scenario {scenario.name}")
    ap.add_argument("--cloud", default=os.environ.get("OS_CLOUD", "devcloud"))
    ap.add_argument("--sizes", default="100,1000", help="resources per run (comma-separated)")
    ap.add_argument("--runs", type=int, default=3, help="no-op plans per size (median)")
    ap.add_argument(
        "--ceiling-sample", type=int, default=scenario.ceiling, help="writes per worker count"
    )
    ap.add_argument("--prefix", default="bench-")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        pw = Path(tmp, "password")
        pw.write_text("bench-Secret-1\n")
        for size in (int(s) for s in args.sizes.split(",")):
            reports.append(run_size(args, size, Path(tmp), pw, scenario))
            print(table(reports[-1:], scenario), flush=True)
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"scale-{scenario.name}-{stamp}.json").write_text(json.dumps(reports, indent=2))
    print(table(reports, scenario))
    return reports


if __name__ == "__main__":
    main()
