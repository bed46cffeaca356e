"""Mixed benchmark: images, flavors, a routed network, a security group with 100 rules and
N servers (default 20), each with a neutron port and a floating IP.

    python -m bench.mixed_bench [--servers 20] [--cloud devcloud] [--keep]

Measures requests and wall time of the first apply, a no-op plan and a no-op apply (each
on a fresh connection, as the CLI does), then removes everything unless --keep. The
project's quotas (instances, cores, ram, floating IPs, rules) are raised first: the
defaults allow 10 servers and 100 rules including Neutron's automatic ones.
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

FILES = Path(__file__).resolve().parents[1] / "manifests" / "files"
RESULTS = Path(__file__).resolve().parent / "results"


def manifest(p: str, servers: int, rules: int, state: str = "present") -> str:
    absent = "\n    state: absent" if state == "absent" else ""
    out = [
        "projects:",
        "  - name: admin",
        f"  - name: {p}proj{absent}",
        "users:\n  - name: admin",
        "roles:\n  - name: member",
        "role_assignments:",
        f"  - {{role: member, user: admin, project: {p}proj}}" if not absent else
        f"  - {{role: member, user: admin, project: {p}proj, state: absent}}",
        "images:",
        f"  - name: {p}img\n    source: {{file: {FILES / 'tiny.raw'}}}\n"
        f"    disk_format: raw\n    container_format: bare\n    visibility: public{absent}",
        "flavors:",
        f"  - {{name: {p}small, vcpus: 1, ram: 64, disk: 1{', state: absent' * bool(absent)}}}",
        f"  - {{name: {p}large, vcpus: 2, ram: 128, disk: 1{', state: absent' * bool(absent)}}}",
        "keypairs:",
        f"  - name: {p}key\n    public_key_file: {FILES / 'id_ed25519.pub'}{absent}",
        "networks:",
        f"  - name: {p}ext\n    project: admin\n    external: true\n    provider: "
        f"{{network_type: vlan, physical_network: public, segmentation_id: "
        f"{100 + int(p[6:10], 16) % 800}}}{absent}",
        f"  - name: {p}net\n    project: {p}proj{absent}",
        "subnets:",
        f"  - name: {p}extsub\n    project: admin\n    network: {p}ext\n"
        f"    cidr: 198.51.100.0/24\n    enable_dhcp: false{absent}",
        f"  - name: {p}sub\n    project: {p}proj\n    network: {p}net\n"
        f"    cidr: 10.77.0.0/24{absent}",
        "routers:",
        f"  - name: {p}router\n    project: {p}proj\n    external_gateway: {{network: {p}ext}}\n"
        f"    interfaces: [{p}sub]{absent}",
        "security_groups:",
        f"  - name: {p}sg\n    project: {p}proj{absent}",
    ]
    if not absent:
        out.append("    rules:")
        out += [f"      - {{protocol: tcp, port: {3000 + i}}}" for i in range(rules)]
    out.append("servers:")
    for i in range(servers):
        out.append(
            f"  - name: {p}vm{i}\n    project: {p}proj\n    image: {p}img\n"
            f"    flavor: {p}small\n    keypair: {p}key\n    networks: [{p}net]\n"
            f"    security_groups: [{p}sg]{absent}"
        )
    out.append("floating_ips:")
    for i in range(servers):
        out.append(
            f"  - project: {p}proj\n    server: {p}vm{i}\n    network: {p}ext{absent}"
        )
    return "\n".join(out) + "\n"


def measure(cloud_name: str, path: str, do_apply: bool) -> dict:
    t0 = time.monotonic()
    cloud = Cloud.connect(cloud_name)
    loaded = engine.load([path])
    plan, resolver = engine.plan(cloud, loaded)
    out = {
        "resources": len(loaded.manifest),
        "changes": sum(1 for c in plan.changes if c.is_change),
        "plan_requests": plan.requests,
        "plan_s": round(time.monotonic() - t0, 3),
    }
    if do_apply:
        before_total, before_writes = cloud.counter.total, cloud.counter.writes
        t1 = time.monotonic()
        failed = []
        if plan.has_changes:
            result = engine.apply(cloud, plan, resolver, parallelism=8)
            failed = sorted({str(r.error)[:200] for r in result.failed})
        out.update(
            apply_s=round(time.monotonic() - t1, 3),
            apply_requests=cloud.counter.total - before_total,
            apply_writes=cloud.counter.writes - before_writes,
            failed=failed,
        )
    return out


def raise_quotas(cloud_name: str, project_name: str) -> None:
    cloud = Cloud.connect(cloud_name)
    (project,) = cloud.keystone.projects.list(name=project_name)
    cloud.nova.quotas.update(project.id, instances=100, cores=200, ram=512000)
    cloud.network.update_quota(
        project.id, security_group_rules=1000, floatingip=200, port=500
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cloud", default="devcloud")
    ap.add_argument("--servers", type=int, default=20)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    p = f"bmix-{uuid.uuid4().hex[:6]}-"
    report: dict = {"servers": args.servers, "rules": args.rules}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "mixed.yaml")
        # The project first, so its quotas can be raised before the servers come.
        path.write_text(f"projects:\n  - name: {p}proj\n")
        measure(args.cloud, str(path), True)
        raise_quotas(args.cloud, f"{p}proj")
        path.write_text(manifest(p, args.servers, args.rules))
        try:
            report["first_apply"] = measure(args.cloud, str(path), True)
            report["noop_plan"] = measure(args.cloud, str(path), False)
            report["noop_apply"] = measure(args.cloud, str(path), True)
        finally:
            if not args.keep:
                path.write_text(manifest(p, args.servers, args.rules, "absent"))
                report["cleanup"] = measure(args.cloud, str(path), True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mixed.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
