"""The mixed scale benchmark's arithmetic and manifests (bench/mixed_scale.py): the mix
per size, Neutron's default quotas per project, and manifests that load."""

import pytest

from bench.mixed_scale import QUOTA, cidr, generate, is_page, mix, per_project
from bench.scale_bench import write_manifest
from bootstrap import engine


def test_mix_at_ten_thousand():
    assert mix(10_000) == {
        "projects": 500,
        "users": 3000,
        "role_assignments": 3500,
        "networks": 1000,
        "subnets": 1000,
        "security_groups": 100,
        "rules": 900,
    }
    assert sum(mix(100).values()) == 100


@pytest.mark.parametrize("size", [1, 100, 1000, 10_000, 100_000])
def test_every_project_stays_inside_the_default_quotas(size):
    held = per_project(size)
    assert all(held[k] <= QUOTA[k] for k in QUOTA), held


def test_subnet_cidrs_are_distinct():
    assert len({cidr(i) for i in range(mix(10_000)["subnets"])}) == 1000


@pytest.mark.parametrize("state", ["present", "absent"])
def test_the_manifest_loads(tmp_path, state):
    pw = tmp_path / "password"
    pw.write_text("secret\n")
    text = generate("mxb-t-", 1000, str(pw), state)
    loaded = engine.load([str(write_manifest(tmp_path / "m", text))])
    kinds = {k: len(loaded.manifest.of_kind(k)) for k in ("networks", "subnets", "users")}
    assert kinds == {"networks": 100, "subnets": 100, "users": 300}
    groups = loaded.manifest.of_kind("security_groups")
    assert len(groups) == 10
    if state == "present":
        assert sum(len(g.spec["rules"]) for g in groups) == 90
    else:
        assert all(r.absent for r in loaded.manifest if r.kind != "roles")


def test_a_next_page_is_a_marker_on_an_expected_list():
    listed = {("GET", "/v2.0/networks"), ("GET", "/v2.0/security-groups?fields=...")}
    assert is_page("GET", "/v2.0/networks?limit=1000&marker={id}", listed)
    assert is_page("GET", "/v2.0/security-groups?fields=...&marker={id}", listed)
    assert not is_page("GET", "/v2.0/networks", listed)
    assert not is_page("GET", "/v2.0/ports?marker={id}", listed)


def test_a_keystone_page_keeps_the_limit_it_was_asked_with():
    # Keystone's next link repeats `limit=1000` (the first request's own query).
    listed = {("GET", "/v3/users?limit=1000")}
    assert is_page("GET", "/v3/users?limit=1000&marker={id}", listed)
    assert not is_page("GET", "/v3/groups?limit=1000&marker={id}", listed)
