"""Compute benchmark: servers to ACTIVE through apply, and what a no-op plan costs.

    python -m bench.compute_bench [--servers 5] [--keep]

Manifest: 1 image (1 MiB raw file), 3 flavors, 2 keypairs, N servers (plus the network,
subnet and security group they need, in project admin). Measures: first apply (wall
time, requests, the poller's list calls), create-to-ACTIVE per server (Nova's created ->
launched_at) and for one more server added to a converged manifest (apply wall time),
the no-op plan (requests per kind, median wall time of 5) and the no-op apply (writes).
Removes everything at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bootstrap import engine
from bootstrap.apply import ApplyContext
from bootstrap.cloud import Cloud

RESULTS = Path(__file__).resolve().parent / "results"
PUBKEY = (
    Path(__file__).resolve().parents[1] / "manifests" / "files" / "id_ed25519.pub"
).read_text()


def generate(prefix: str, servers: int, state: str = "present") -> str:
    absent = "\n    state: absent" if state == "absent" else ""
    key = " ".join(PUBKEY.split()[:2])
    lines = [
        "projects:",
        "  - name: admin",
        "images:",
        f"  - name: {prefix}img",
        "    source: {file: disk.raw}",
        "    disk_format: raw",
        f"    container_format: bare{absent}",
        "flavors:",
    ]
    for i, ram in enumerate((64, 128, 256)):
        lines += [
            f"  - name: {prefix}f{i}",
            "    vcpus: 1",
            f"    ram: {ram}",
            f"    disk: 1{absent}",
        ]
    lines.append("keypairs:")
    for i in range(2):
        lines += [f"  - name: {prefix}k{i}", f'    public_key: "{key}"{absent}']
    lines += [
        "networks:",
        f"  - {{name: {prefix}net, project: admin{', state: absent' if absent else ''}}}",
        "subnets:",
        f"  - {{name: {prefix}sub, project: admin, network: {prefix}net, cidr: 10.250.0.0/24"
        f"{', state: absent' if absent else ''}}}",
        "security_groups:",
        f"  - {{name: {prefix}sg, project: admin{', state: absent' if absent else ''}}}",
        "servers:",
    ]
    for i in range(servers):
        lines += [
            f"  - name: {prefix}vm{i}",
            "    project: admin",
            f"    image: {prefix}img",
            f"    flavor: {prefix}f{i % 3}",
            f"    keypair: {prefix}k{i % 2}",
            f"    networks: [{prefix}net]",
            f"    security_groups: [{prefix}sg]",
            f"    metadata: {{index: '{i}'}}",
            f"    known_hosts: known_hosts{absent}",
        ]
    return "\n".join(lines) + "\n"


def run(cloud_name: str, path: str, do_apply: bool, parallelism: int = 8) -> dict:
    cloud = Cloud.connect(cloud_name)
    t0 = time.monotonic()
    loaded = engine.load([path])
    plan, resolver = engine.plan(cloud, loaded)
    out = {
        "resources": len(loaded.manifest),
        "changes": sum(1 for c in plan.changes if c.is_change),
        "plan_requests": plan.requests,
        "plan_s": round(time.monotonic() - t0, 3),
    }
    if do_apply and plan.has_changes:
        before_total, before_writes = cloud.counter.total, cloud.counter.writes
        t1 = time.monotonic()
        ctx = ApplyContext()
        result = engine.apply(
            cloud, plan, resolver, allow_destroy=True, parallelism=parallelism, ctx=ctx
        )
        out.update(
            apply_s=round(time.monotonic() - t1, 3),
            apply_requests=cloud.counter.total - before_total,
            apply_writes=cloud.counter.writes - before_writes,
            poller_list_calls=ctx.poller.polls,
            failed={str(r.address): str(r.error) for r in result.failed},
        )
    elif do_apply:
        out.update(apply_s=0.0, apply_requests=0, apply_writes=0)
    return out


def requests_per_kind(cloud_name: str, path: str) -> dict[str, int]:
    cloud = Cloud.connect(cloud_name)
    cloud.keystone, cloud.nova, cloud.glance  # noqa: B018 - version discovery apart
    cloud.access  # noqa: B018
    loaded = engine.load([path])
    drivers = engine.instantiate_drivers()
    kinds = engine.kinds_to_read(loaded.manifest, drivers, prune=False)
    out, observed = {}, {}
    for kind, needs in engine.read_order(loaded.manifest, drivers, kinds).items():
        before = cloud.counter.total
        known = {k: observed[k] for k in needs}
        observed[kind] = drivers[kind].read_all(cloud, loaded.manifest.of_kind(kind), known)
        out[kind] = cloud.counter.total - before
    return out


def create_to_active(cloud_name: str, prefix: str) -> dict[str, float]:
    """Nova's own timestamps: record created -> launched_at (whole seconds)."""
    nova = Cloud.connect(cloud_name).nova
    out = {}
    for s in nova.servers.list(search_opts={"all_tenants": 1}):
        if s.name.startswith(prefix):
            created = datetime.datetime.fromisoformat(s.created.replace("Z", "+00:00"))
            launched = datetime.datetime.fromisoformat(
                getattr(s, "OS-SRV-USG:launched_at") + "+00:00"
            )
            out[s.name] = round((launched - created).total_seconds(), 1)
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cloud", default="devcloud")
    ap.add_argument("--servers", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    prefix = f"bench-{uuid.uuid4().hex[:6]}-"
    report: dict = {"servers": args.servers}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "disk.raw").write_bytes(bytes(1 << 20))
        path = Path(tmp, "compute.yaml")
        path.write_text(generate(prefix, args.servers))
        try:
            report["first_apply"] = run(args.cloud, str(path), True)
            report["create_to_active_nova_s"] = create_to_active(args.cloud, prefix)
            plans = [run(args.cloud, str(path), False) for _ in range(5)]
            report["noop_plan"] = {
                "requests": sorted({p["plan_requests"] for p in plans}),
                "median_s": statistics.median(p["plan_s"] for p in plans),
                "requests_per_kind": requests_per_kind(args.cloud, str(path)),
            }
            report["noop_apply"] = run(args.cloud, str(path), True)
            path.write_text(generate(prefix, args.servers + 1))
            one_more = run(args.cloud, str(path), True)
            report["one_server_apply"] = one_more
        finally:
            if not args.keep:
                path.write_text(generate(prefix, args.servers + 1, "absent"))
                report["cleanup"] = run(args.cloud, str(path), True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compute.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
