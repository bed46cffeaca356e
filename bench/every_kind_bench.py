"""What a no-op plan of a manifest using every kind sends: each request, by kind.

The manifest declares one resource (or a few) of EVERY kind the tool has, under its own
stack and a unique prefix: a domain, a project with quotas, a role, a user in a group,
role assignments, an application credential, a region with a service and an endpoint,
an image, a private flavor, a keypair, a server group, a security group, a network with
a subnet shared with the admin project, a router with a gateway on the cloud's external
network (looked up, `managed: false`), a port with a floating IP, a server and a
volume of a private volume type. It is applied once, then planned `--runs` times with
nothing to do, each on a fresh connection as the CLI does. Every request of a plan is
recorded (method and path, ids as {id}) with the kind whose read sent it; requests
sent outside the kinds' reads (the token, version discovery) are the engine's.

Printed: per kind, the requests of one no-op plan and how many were list requests;
the total; the wall time. A kind that sends more than one list request in one scope is
flagged with the reason (a second collection, a read per resource where the API has
no list, pages). The run fails when a plan is not empty, when the runs differ, or when
the requests differ from what the drivers are known to send for this manifest
(EXPECTED below): a new request in a no-op plan must be explained here.
Then everything is deleted (state: absent), unless `--keep`.

Opt-in (`python -m bench --scenario every-kind`): it boots a server and makes a volume.

    .venv/bin/python bench/every_kind_bench.py [--cloud devcloud] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bootstrap import engine  # noqa: E402
from bootstrap.drivers.base import kinds  # noqa: E402
from tests.integration.engine_util import clouds_yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = "devcloud-public"  # the local cloud's default external network (admin's)
ENGINE = "(engine)"

# What one no-op plan of this manifest sends, per kind (the admin's token: every list is
# all projects at once). Each entry: (method, path) -> count. Why a kind sends more than
# one list is in WHY; a change in what a driver reads must be written here too.
EXPECTED: dict[str, dict[tuple[str, str], int]] = {
    ENGINE: {
        ("AUTH", "/v3/auth/tokens"): 1,
        ("GET", "/v3"): 1,  # keystoneclient's version discovery
        ("GET", "/v2.1"): 1,  # novaclient's microversion discovery
    },
    "domains": {("GET", "/v3/domains"): 1},
    "projects": {("GET", "/v3/projects?limit=1000"): 1},  # paged (Keystone caps lists)
    "quotas": {
        # The manifest's project ids come from the domains' and projects' lists, read
        # before quotas and handed to them (reads_after): no Keystone request here.
        ("GET", "/v2.1/os-quota-sets/{id}/defaults"): 1,
        ("GET", "/v2.1/os-quota-sets/{id}"): 1,  # per project: Nova has no list
        ("GET", "/v2.0/quotas/{id}/default"): 1,
        ("GET", "/v2.0/quotas"): 1,  # one list of every project's quotas
        ("GET", "/v3/os-quota-sets/{id}/defaults"): 1,
        ("GET", "/v3/os-quota-sets/{id}"): 1,  # per project: Cinder has no list
    },
    "roles": {("GET", "/v3/roles"): 1},
    "users": {("GET", "/v3/users?limit=1000"): 1},  # paged (Keystone caps lists)
    "application_credentials": {("GET", "/v3/users/{id}/application_credentials"): 1},
    "groups": {
        ("GET", "/v3/groups?limit=1000"): 1,  # paged (Keystone caps lists)
        ("GET", "/v3/groups/{id}/users"): 1,  # per group with members: no list
    },
    "role_assignments": {("GET", "/v3/role_assignments"): 1},
    "regions": {("GET", "/v3/regions"): 1},
    "services": {("GET", "/v3/services"): 1},
    "endpoints": {("GET", "/v3/endpoints"): 1},
    "images": {
        ("GET", "/v2/images?limit=1000&visibility=all"): 1,
        ("GET", "/v2/schemas/image"): 1,  # glanceclient's model of an image, once
    },
    "flavors": {
        ("GET", "/v2.1/flavors/detail?is_public=None"): 1,
        ("GET", "/v2.1/flavors/{id}/os-flavor-access"): 1,  # per private flavor: no list
    },
    "volume_types": {
        ("GET", "/v3/types?is_public=None"): 1,
        ("GET", "/v3/types/{id}/os-volume-type-access"): 1,  # per private type: no list
    },
    "keypairs": {("GET", "/v2.1/os-keypairs"): 1},
    "server_groups": {
        ("GET", "/v2.1/os-server-groups?all_projects=True&limit=1000"): 1,
        # Nova may cap a page below the limit asked (its max_limit): a short page is
        # followed by one more, empty here (offset: how many were read)
        ("GET", "/v2.1/os-server-groups?all_projects=True&limit=1000&offset=..."): 1,
    },
    "security_groups": {
        ("GET", "/v2.0/security-groups?fields=..."): 1,  # with each group's rules
        ("GET", "/v2.0/default-security-group-rules"): 1,  # what Neutron adds itself
    },
    "networks": {("GET", "/v2.0/networks"): 1},
    "subnets": {("GET", "/v2.0/subnets"): 1},
    "network_rbac": {("GET", "/v2.0/rbac-policies?object_type=network"): 1},
    "routers": {
        ("GET", "/v2.0/routers"): 1,
        ("GET", "/v2.0/ports?device_owner=..."): 1,  # every router's interfaces: one list
    },
    "ports": {("GET", "/v2.0/ports"): 1},
    "floating_ips": {("GET", "/v2.0/floatingips"): 1},
    "servers": {
        ("GET", "/v2.1/servers/detail?all_tenants=1"): 1,
        # novaclient's limit=-1 follows pages until an empty one: a second request
        ("GET", "/v2.1/servers/detail?all_tenants=1&marker={id}"): 1,
        # a server's group is told by the server groups' list, handed to this read
    },
    "volumes": {
        # openstacksdk's microversion discovery: keystoneauth asks Cinder's version
        # document without a token, then (401) with one
        ("GET", "/v3/"): 2,
        ("GET", "/v3/volumes/detail?all_tenants=True"): 1,
    },
}

# Why a kind sends more than one list request per scope (the flagged ones).
WHY = {
    "quotas": "no quota list in Nova or Cinder: one GET per project (+ the defaults); "
    "Neutron has one list",
    "server_groups": "pages until an empty or shorter page: Nova may answer fewer than "
    "asked (its max_limit) and gives no next link",
    "groups": "Keystone lists no memberships: one GET per group whose members are managed",
    "flavors": "Nova lists no flavor access: one GET per private flavor with `access`",
    "volume_types": "Cinder lists no type access: one GET per private type with `access`",
    "security_groups": "groups with their rules, and the rules Neutron adds itself",
    "routers": "routers, then their interface ports in one list",
    "servers": "novaclient pages until an empty page (a 2nd request for the same list)",
}

UUID = re.compile(r"^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")
ID_PARAMS = {"marker", "group_id", "user_id", "project_id", "device_id", "network_id", "id"}
ABBREVIATED = {"fields", "device_owner", "offset"}  # long repeated values shown as ...


def shape(method: str, url: str) -> tuple[str, str]:
    """(method, path) with ids as {id}; the query kept (id values as {id})."""
    parts = urlsplit(url)
    segments = ["{id}" if UUID.match(s) else s for s in parts.path.split("/")]
    path = "/".join(segments)
    query = []
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k in ABBREVIATED:
            v = "..."
        elif k in ID_PARAMS or UUID.match(v):
            v = "{id}"
        if f"{k}={v}" not in query:
            query.append(f"{k}={v}")
    if query:
        path += "?" + "&".join(sorted(query))
    if path.endswith("/auth/tokens"):
        method = "AUTH"
    return method, path


def is_list(method: str, path: str) -> bool:
    """A GET of a collection (its last path segment is not an id), not a version root."""
    if method != "GET":
        return False
    segments = [s for s in path.split("?")[0].split("/") if s]
    last = segments[-1] if segments else ""
    return (
        bool(segments)
        and last != "{id}"
        and not re.fullmatch(r"v\d+(\.\d+)?", last)  # a version document
        and last not in ("defaults", "default")  # a quota's defaults
        and "schemas" not in segments  # glance's model of an image
    )


class RequestLog:
    """Every request a Cloud (and its project-scoped twins) sends, with the kind whose
    read sent it (a thread-local set while a driver's read_all runs)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, str]] = []  # kind, method, path, token
        self._lock = threading.Lock()
        self.local = threading.local()

    def record(self, response) -> None:
        request = response.request
        method, path = shape(request.method, request.url)
        token = request.headers.get("X-Auth-Token") or ""
        kind = getattr(self.local, "kind", None) or ENGINE
        with self._lock:
            self.entries.append((kind, method, path, token[-12:]))

    def attach(self, cloud: engine.Cloud) -> None:
        counted = cloud.counter.hook

        def hook(response, *args, **kwargs):
            self.record(response)
            return counted(response, *args, **kwargs)

        cloud.counter.hook = hook  # the project-scoped twins made later get it too
        hooks = cloud.session.session.hooks["response"]
        hooks[hooks.index(counted)] = hook

    def drivers(self) -> dict[str, engine.Driver]:
        """The drivers, each read_all labelling the requests it sends with its kind."""
        drivers = engine.instantiate_drivers()
        for kind, driver in drivers.items():
            driver.read_all = self._labelled(kind, driver.read_all)
        return drivers

    def _labelled(self, kind, read_all):
        def read(cloud, resources, known=None):
            self.local.kind = kind
            try:
                return read_all(cloud, resources, known)
            finally:
                self.local.kind = None

        return read


def manifest(prefix: str, o: int) -> dict:
    """kind -> resources; `_ref: True` marks what is only referenced (never deleted)."""
    p = prefix
    proj = f"{p}proj"
    return {
        "domains": [{"name": f"{p}dom", "description": "every-kind bench"}],
        "projects": [
            {"name": "admin", "_ref": True},
            {"name": proj, "description": "every-kind bench"},
        ],
        "quotas": [
            {
                "project": proj,
                "compute": {"instances": 10, "cores": 20},
                "network": {"port": 50, "floatingip": 5},
                "volume": {"volumes": 10, "gigabytes": 100},
            }
        ],
        "roles": [{"name": "member", "_ref": True}, {"name": f"{p}role"}],
        "users": [
            {"name": "admin", "_ref": True},
            {"name": f"{p}user", "password": {"file": "password"}, "default_project": proj},
        ],
        "application_credentials": [
            {
                "name": f"{p}appcred",
                "project": proj,
                "secret_file": "appcred.secret",
                "description": "every-kind bench",
            }
        ],
        "groups": [{"name": f"{p}group", "members": [f"{p}user"]}],
        "role_assignments": [
            # the tool's own user: servers, server groups, volumes and the application
            # credential are made with a token scoped to the project
            {"role": "member", "user": "admin", "project": proj},
            {"role": "member", "user": f"{p}user", "project": proj},
            {"role": f"{p}role", "group": f"{p}group", "project": proj},
        ],
        "regions": [{"id": f"{p}region", "description": "every-kind bench"}],
        "services": [{"name": f"{p}svc", "type": f"{p}type", "description": "bench"}],
        "endpoints": [
            {
                "service": f"{p}svc",
                "interface": "public",
                "region": f"{p}region",
                "url": f"http://192.0.2.10:8080/{p}",
            }
        ],
        "images": [
            {
                "name": f"{p}img",
                "source": {"file": "disk.raw"},
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "public",
            }
        ],
        "flavors": [
            {
                "name": f"{p}flavor",
                "vcpus": 1,
                "ram": 64,
                "disk": 1,
                "is_public": False,
                "access": [proj],
            }
        ],
        "volume_types": [
            {"name": f"{p}vtype", "description": "bench", "is_public": False, "access": [proj]}
        ],
        "keypairs": [{"name": f"{p}key", "public_key_file": "id.pub"}],
        "server_groups": [{"name": f"{p}sg", "project": proj, "policy": "soft-anti-affinity"}],
        "security_groups": [
            {
                "name": f"{p}secgroup",
                "project": proj,
                "rules": [{"protocol": "tcp", "port": 22}, {"protocol": "icmp"}],
            }
        ],
        "networks": [
            {"name": EXTERNAL, "project": "admin", "managed": False, "_ref": True},
            {"name": f"{p}net", "project": proj},
        ],
        "subnets": [
            {
                "name": f"{p}sub",
                "project": proj,
                "network": f"{p}net",
                "cidr": f"10.{o // 256 + 100}.{o % 256}.0/24",
            }
        ],
        "network_rbac": [{"network": f"{p}net", "target_project": "admin"}],
        "routers": [
            {
                "name": f"{p}router",
                "project": proj,
                "external_gateway": {"network": EXTERNAL},
                "interfaces": [f"{p}sub"],
            }
        ],
        "ports": [
            {
                "name": f"{p}port",
                "project": proj,
                "network": f"{p}net",
                "fixed_ips": [{"subnet": f"{p}sub"}],
            }
        ],
        "floating_ips": [
            {"project": proj, "port": f"{p}port", "network": EXTERNAL, "description": f"{p}fip"}
        ],
        "servers": [
            {
                "name": f"{p}vm",
                "project": proj,
                "image": f"{p}img",
                "flavor": f"{p}flavor",
                "keypair": f"{p}key",
                "networks": [f"{p}net"],
                "security_groups": [f"{p}secgroup"],
                "server_group": f"{p}sg",
                "timeout": 300,
            }
        ],
        "volumes": [{"name": f"{p}vol", "project": proj, "size": 1, "volume_type": f"{p}vtype"}],
    }


def render(stack: str, resources: dict, absent: bool = False) -> str:
    doc: dict = {"version": 1, "stack": stack}
    for kind, items in resources.items():
        out = []
        for item in items:
            spec = {k: v for k, v in item.items() if k != "_ref"}
            if absent and not item.get("_ref"):
                spec["state"] = "absent"
            out.append(spec)
        doc[kind] = out
    return yaml.safe_dump(doc, sort_keys=False)


def run_apply(cloud: engine.Cloud, path: str, allow_destroy: bool = False) -> None:
    the_plan, resolver = engine.plan(cloud, engine.load([path]))
    if the_plan.has_changes:
        result = engine.apply(cloud, the_plan, resolver, allow_destroy=allow_destroy)
        if not result.ok:
            raise SystemExit(
                "apply failed: "
                + "; ".join(
                    f"{r.address}: {r.outcome} {r.error or r.detail}"
                    for r in result.results.values()
                    if r.outcome not in ("created", "updated", "deleted", "replaced", "unchanged")
                )
            )


def expected_total() -> Counter:
    want: Counter = Counter()
    for kind, reqs in EXPECTED.items():
        for (method, path), n in reqs.items():
            if n:
                want[(kind, method, path)] += n
    return want


def table(entries: list[tuple[str, str, str, str]]) -> tuple[list[str], list[str]]:
    """The per-kind table, and the kinds with more than one list per scope."""
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for kind, method, path, token in entries:
        by_kind[kind][(method, path, token)] += 1
    lines = [f"{'kind':<24} {'requests':>8} {'lists':>5}  requests (method path x count)"]
    flagged = []
    for kind in [ENGINE, *kinds()]:
        reqs = by_kind.get(kind, Counter())
        lists_per_scope: Counter = Counter()
        for (method, path, token), n in reqs.items():
            if is_list(method, path):
                lists_per_scope[token] += n
        lists = sum(lists_per_scope.values())
        shown = Counter()
        for (method, path, _), n in reqs.items():
            shown[f"{method} {path}"] += n
        detail = ", ".join(f"{k}" + (f" x{n}" if n > 1 else "") for k, n in sorted(shown.items()))
        mark = ""
        if kind != ENGINE and any(n > 1 for n in lists_per_scope.values()):
            mark = " *"
            flagged.append(f"  * {kind}: {WHY.get(kind, 'UNEXPLAINED')}")
        lines.append(f"{kind + mark:<24} {sum(reqs.values()):>8} {lists:>5}  {detail or '-'}")
    # The same list sent by several kinds (each kind reads on its own, in parallel).
    senders: dict[str, set[str]] = defaultdict(set)
    for kind, method, path, _ in entries:
        if kind != ENGINE and is_list(method, path):
            senders[f"{method} {path}"].add(kind)
    shared = [
        f"  {req}: {', '.join(k for k in kinds() if k in who)}"
        for req, who in sorted(senders.items())
        if len(who) > 1
    ]
    return lines, flagged, shared


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cloud", default="devcloud")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--token", help="the unique part of the names (to plan a kept run again)")
    args = ap.parse_args(argv)

    token = args.token or secrets.token_hex(3)
    prefix, stack = f"ek-{token}-", f"every-kind-{token}"
    resources = manifest(prefix, int(token[:4], 16) % 25600)
    missing = set(kinds()) - set(resources)
    assert not missing, f"the manifest lacks kinds: {sorted(missing)}"
    connect = lambda: engine.Cloud.connect(args.cloud, [clouds_yaml()])  # noqa: E731

    # The files the manifest names (kept with --keep: a kept run is planned again with
    # --token, and the application credential's secret file must still be there).
    tmpdir = Path(tempfile.gettempdir()) / f"every-kind-{token}"
    tmpdir.mkdir(exist_ok=True)
    try:
        if not (tmpdir / "disk.raw").exists():
            (tmpdir / "disk.raw").write_bytes(bytes(4096) + prefix.encode() + bytes(4096))
            (tmpdir / "password").write_text(secrets.token_urlsafe(16) + "\n")
            shutil.copy(REPO / "manifests" / "files" / "id_ed25519.pub", tmpdir / "id.pub")
        path = str(tmpdir / "every-kind.yaml")
        Path(path).write_text(render(stack, resources))
        t0 = time.monotonic()
        try:
            run_apply(connect(), path)
            applied = time.monotonic() - t0
            logs, times = [], []
            for _ in range(args.runs):
                log = RequestLog()
                cloud = connect()
                log.attach(cloud)
                before = cloud.counter.total
                t1 = time.monotonic()
                result, _ = engine.plan(cloud, engine.load([path]), drivers=log.drivers())
                times.append(time.monotonic() - t1)
                drift = [(str(c.address), c.action.value) for c in result.changes if c.is_change]
                assert not drift, f"the no-op plan is not empty: {drift}"
                assert cloud.counter.total - before == len(log.entries), (
                    f"the counter saw {cloud.counter.total - before} requests, the log "
                    f"{len(log.entries)}"
                )
                logs.append(log.entries)
            counts = [Counter((k, m, p) for k, m, p, _ in entries) for entries in logs]
            lines, flagged, shared = table(logs[-1])
            kinds_used = len({r for r in resources if any(not i.get("_ref") for i in resources[r])})
            print(
                f"manifest: every kind ({len(kinds())}; {kinds_used} with resources of their "
                f"own), {sum(len(v) for v in resources.values())} entries; "
                f"applied in {applied:.1f}s"
            )
            print(f"no-op plan, one run ({args.runs} runs, fresh connection each):")
            print("\n".join(lines))
            total = len(logs[-1])
            lists = sum(1 for k, m, p, _ in logs[-1] if is_list(m, p))
            scopes = len({t for *_, t in logs[-1] if t})
            print(f"total: {total} requests ({lists} lists); token scopes used: {scopes}")
            print(
                f"wall time over {args.runs} runs: median {statistics.median(times):.3f}s, "
                f"min {min(times):.3f}s, max {max(times):.3f}s "
                f"(load average {os.getloadavg()[0]:.1f})"
            )
            if flagged:
                print("more than one list request per scope (why):")
                print("\n".join(flagged))
            if shared:
                print("the same list sent by more than one kind:")
                print("\n".join(shared))
            for i, c in enumerate(counts[1:], 2):
                assert c == counts[0], f"run {i} sent other requests than run 1: {c ^ counts[0]}"
            want = expected_total()
            got = counts[-1]
            if got != want:
                extra = {
                    f"{k}: {m} {p}": n - want.get((k, m, p), 0)
                    for (k, m, p), n in got.items()
                    if n != want.get((k, m, p), 0)
                }
                short = {
                    f"{k}: {m} {p}": n - got.get((k, m, p), 0)
                    for (k, m, p), n in want.items()
                    if (k, m, p) not in got
                }
                raise AssertionError(
                    f"requests differ from EXPECTED ({sum(got.values())} sent, "
                    f"{sum(want.values())} expected): more {extra}, fewer {short}"
                )
            print(f"requests as expected: {sum(want.values())} = the sum over EXPECTED")
        finally:
            if not args.keep:
                Path(path).write_text(render(stack, resources, absent=True))
                run_apply(connect(), path, allow_destroy=True)
                left, _ = engine.plan(connect(), engine.load([path]))
                assert not left.has_changes, "resources left after the delete"
    finally:
        if not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
