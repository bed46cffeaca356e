"""Scale benchmark, mixed: identity and Neutron resources together at 100 / 1,000 /
10,000, measured as the identity scenario is (bench/scale_bench.py), without the write
ceiling (a plain thread pool of Keystone and Neutron writes is not measured: skipped).

    python -m bench --scenario mixed --sizes 100,1000 [--runs 3] [--prefix mxb-]

Per size N (MIX): 5 % projects, 30 % users, 35 % role assignments, 10 % networks,
10 % subnets (one per network, distinct /24s, no DHCP: no DHCP ports on a shared cloud),
1 % security groups and 9 % security-group rules (nine per group, declared in the
group's `rules`). At 10,000: 500 projects, 3,000 users, 3,500 assignments, 1,000
networks and subnets, 100 groups, 900 rules. Spread over the projects to stay inside
Neutron's default quotas per project (100 networks, 100 subnets, 10 groups, 100 rules):
project p holds networks p, p + projects, ... (two each) and at most one group.

The drift re-run changes 1 % of the networks' descriptions (openstacksdk) and 1 % of the
users' emails (keystoneclient) out of band. The no-op plan's requests are asserted to be
the lists the kinds are known to send (EXPECTED, shared with the every-kind bench) plus
pagination pages, counted per kind in one extra in-process plan; the plan processes must
send the same number.
"""

from __future__ import annotations

import math
from collections import Counter

from bench.every_kind_bench import ENGINE, EXPECTED, RequestLog
from bench.scale_bench import Scenario, drift_users, identity_lines
from bench.scale_bench import main as scale_main
from bootstrap import engine
from bootstrap.cloud import Cloud

# Percent of N per part; rules are items of the groups' `rules`, not resources.
MIX = {
    "projects": 5,
    "users": 30,
    "role_assignments": 35,
    "networks": 10,
    "subnets": 10,
    "security_groups": 1,
    "rules": 9,
}
RULES_PER_GROUP = MIX["rules"] // MIX["security_groups"]
# Neutron's default quotas per project: 100 networks, 100 subnets, 10 groups (the
# project's `default` group counts) and 100 rules (the automatic ones count).
QUOTA = {"networks": 100, "subnets": 100, "security_groups": 10, "rules": 100}
# What Neutron puts into groups by itself: the default group's 4, 2 egress per new group.
AUTOMATIC_RULES = {"default": 4, "new": 2}

# Requests of a no-op plan outside the kinds' reads (engine) for a Keystone + Neutron
# manifest: the token and keystoneclient's version discovery (no Nova: no /v2.1).
ENGINE_REQUESTS = {("AUTH", "/v3/auth/tokens"): 1, ("GET", "/v3"): 1}


def mix(resources: int) -> dict[str, int]:
    """How many of each part for about `resources` objects (at least one of each)."""
    out = {k: max(1, resources * pct // 100) for k, pct in MIX.items()}
    out["subnets"] = out["networks"]
    out["rules"] = out["security_groups"] * RULES_PER_GROUP
    return out


def per_project(resources: int) -> dict[str, int]:
    """The most of each Neutron part one project holds (the quota check)."""
    m = mix(resources)
    groups = math.ceil(m["security_groups"] / m["projects"])
    return {
        "networks": math.ceil(m["networks"] / m["projects"]),
        "subnets": math.ceil(m["subnets"] / m["projects"]),
        "security_groups": groups + 1,  # + the project's default group
        "rules": AUTOMATIC_RULES["default"] + groups * (AUTOMATIC_RULES["new"] + RULES_PER_GROUP),
    }


def cidr(i: int) -> str:
    """Subnet i's own /24 (distinct for i < 65,536)."""
    return f"10.{i // 256}.{i % 256}.0/24"


def network(prefix: str, i: int) -> dict:
    """Network i's fields (the name first); in project i % projects, as its subnet."""
    return {"name": f"{prefix}n{i}", "description": f"bench network {i}"}


def subnet(prefix: str, i: int) -> dict:
    return {
        "name": f"{prefix}s{i}",
        "network": f"{prefix}n{i}",
        "cidr": cidr(i),
        "enable_dhcp": "false",
    }


def generate(prefix: str, resources: int, password_file: str, state: str = "present") -> str:
    m = mix(resources)
    over = {k: n for k, n in per_project(resources).items() if n > QUOTA[k]}
    assert not over, f"over Neutron's default quotas per project: {over}"
    absent = ["    state: absent"] if state == "absent" else []
    lines = identity_lines(
        prefix, m["projects"], m["users"], m["role_assignments"], password_file, state
    )
    for kind, fields in (("networks", network), ("subnets", subnet)):
        lines.append(f"{kind}:")
        for i in range(m[kind]):
            spec = {**fields(prefix, i), "project": f"{prefix}p{i % m['projects']}"}
            lines += [f"  - {k}: {v}" if k == "name" else f"    {k}: {v}" for k, v in spec.items()]
            lines += absent
    lines.append("security_groups:")
    for g in range(m["security_groups"]):
        lines += [f"  - name: {prefix}g{g}", f"    project: {prefix}p{g % m['projects']}"]
        if state == "absent":
            lines += absent
            continue
        lines.append("    rules:")
        lines += [
            f"      - {{protocol: tcp, port: {8000 + r}, remote_ip_prefix: 10.0.0.0/8}}"
            for r in range(RULES_PER_GROUP)
        ]
    return "\n".join(lines) + "\n"


def drift(cloud_name: str, prefix: str, resources: int) -> int:
    """Change 1 % of the networks' descriptions and of the users' emails out of band."""
    cloud = Cloud.connect(cloud_name)
    m = mix(resources)
    n_net = max(1, m["networks"] // 100)
    for i in range(n_net):
        net = cloud.network.find_network(f"{prefix}n{i}", ignore_missing=False)
        cloud.network.update_network(net, description="drifted")
    return n_net + drift_users(cloud.keystone, prefix, max(1, m["users"] // 100))


def expected_requests(kinds: list[str]) -> Counter:
    """What a no-op plan sends for these kinds, pagination aside: (kind, method, path)."""
    want: Counter = Counter({(ENGINE, m, p): n for (m, p), n in ENGINE_REQUESTS.items()})
    for kind in kinds:
        for (method, path), n in EXPECTED[kind].items():
            want[(kind, method, path)] += n
    return want


def is_page(method: str, path: str, listed: set[tuple[str, str]]) -> bool:
    """A next page of an expected list: the same path with a `marker` (and a `limit`,
    unless the list was asked for with that limit already: Keystone's)."""
    if "marker=" not in path:
        return False
    base, _, query = path.partition("?")
    for dropped in (("marker=",), ("marker=", "limit=")):
        rest = "&".join(q for q in query.split("&") if not q.startswith(dropped))
        if (method, base + ("?" + rest if rest else "")) in listed:
            return True
    return False


def check_noop(cloud_name: str, path: str, noop: dict, report: dict) -> None:
    """One more no-op plan in process, every request labelled with the kind that sent
    it: it must be the expected lists plus pagination pages, and as many as each plan
    process sent."""
    log = RequestLog()
    cloud = Cloud.connect(cloud_name)
    log.attach(cloud)
    loaded = engine.load([path])
    drivers = log.drivers()
    result, _ = engine.plan(cloud, loaded, drivers=drivers)
    assert not result.has_changes, "the labelled no-op plan has changes"
    kinds = engine.kinds_to_read(loaded.manifest, drivers, False)
    want = expected_requests(kinds)
    got = Counter((k, m, p) for k, m, p, _ in log.entries)
    listed = {(m, p) for _, m, p in want}
    pages = Counter(
        (k, m, p) for (k, m, p), n in got.items() for _ in range(n) if is_page(m, p, listed)
    )
    unexpected = got - want - pages
    missing = want - got
    assert not unexpected and not missing, f"more: {dict(unexpected)}, fewer: {dict(missing)}"
    total = sum(want.values()) + sum(pages.values())
    assert noop["requests"] == total == len(log.entries), (noop["requests"], total)
    report["expected_requests"] = {
        "lists": sum(n for (k, _, _), n in want.items() if k != ENGINE),
        "engine": sum(n for (k, _, _), n in want.items() if k == ENGINE),
        "pages": sum(pages.values()),
        "by_kind": {k: sum(n for (kk, _, _), n in got.items() if kk == k) for k in kinds},
    }


def label(report: dict) -> str:
    m = mix(report["size"])
    return f"{report['first_apply']['resources']} + {m['rules']} rules"


MIXED = Scenario("mixed", generate, drift, ceiling=0, check_noop=check_noop, label=label)


def main(argv: list[str] | None = None) -> list[dict]:
    return scale_main(argv, MIXED)


if __name__ == "__main__":
    main()
