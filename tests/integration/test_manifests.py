"""The example manifests in manifests/ converge on the local cloud.

Each is applied, applied again (0 changes, 0 writes), then removed with a generated
`state: absent` twin (resources that are only referenced, looked up or shared stay).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from tests.integration.engine_util import REPO, apply, assert_converged

MANIFESTS = REPO / "manifests"
# What the local cloud has by itself: the manifests declare these to refer to them.
SHARED = {
    ("projects", "admin"),
    ("projects", "demo"),
    ("roles", "member"),
    ("users", "admin"),
    ("regions", "RegionOne"),
    ("services", "glance"),
}


@pytest.fixture(autouse=True)
def cloud_env(devcloud_clouds_yaml, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(devcloud_clouds_yaml))
    monkeypatch.setenv("ACME_ADMIN_PASSWORD", "acme-Secret-1")


def absent_twin(doc: dict) -> dict:
    """Everything the manifest creates marked absent; references and lookups kept."""
    out = {}
    for section, items in doc.items():
        if not isinstance(items, list):
            out[section] = items
            continue
        kept = []
        for item in items:
            item = dict(item)
            name = item.get("name", item.get("id"))
            shared = (section, name) in SHARED or item.get("managed") is False
            catalog = section == "endpoints" and item.get("service") == "glance"
            if section == "security_groups" and name == "default":
                # Neutron's own group: it goes with its project, or stays as it is.
                if ("projects", item["project"]) in SHARED:
                    kept.append(item)
                continue
            if not (shared or catalog):
                item["state"] = "absent"
                item.pop("security_groups", None)  # may name the dropped default group
            kept.append(item)
        out[section] = kept
    return out


def copy_manifest(tmp_path: Path, name: str, edit=None) -> tuple[str, str]:
    """The manifest (with its files/) in tmp_path, optionally edited, and its absent twin."""
    shutil.copytree(MANIFESTS / "files", tmp_path / "files", dirs_exist_ok=True)
    doc = yaml.safe_load((MANIFESTS / name).read_text())
    if edit:
        edit(doc)
    path, gone = tmp_path / name, tmp_path / f"absent-{name}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    gone.write_text(yaml.safe_dump(absent_twin(doc), sort_keys=False))
    return str(path), str(gone)


def converge_then_remove(path: str, gone: str, cloud: str = "devcloud") -> None:
    apply(gone, cloud)  # leftovers of an interrupted earlier run
    try:
        first = apply(path, cloud)
        assert first.result is not None and first.result.ok, [
            str(r.error) for r in first.result.failed
        ]
        assert_converged(path, cloud)
    finally:
        removed = apply(gone, cloud)
        assert removed.result is None or removed.result.ok, [
            str(r.error) for r in removed.result.failed
        ]


def test_demo_manifest(tmp_path):
    converge_then_remove(*copy_manifest(tmp_path, "demo.yaml"))


def test_seed_manifests_admin_then_non_admin(tmp_path):
    acme, acme_gone = copy_manifest(tmp_path, "seed-acme.yaml")
    demo, demo_gone = copy_manifest(tmp_path, "seed-demo-user.yaml")
    apply(demo_gone, "devcloud-demo")
    apply(acme_gone)
    try:
        first = apply(acme)
        assert first.result.ok, [str(r.error) for r in first.result.failed]
        assert_converged(acme)
        # The non-admin user's compute steps in its own project, on what the admin made.
        mine = apply(demo, "devcloud-demo")
        assert mine.result.ok, [str(r.error) for r in mine.result.failed]
        assert "servers.demo/test" in mine.actions()
        assert_converged(demo, "devcloud-demo")
    finally:
        apply(demo_gone, "devcloud-demo")
        apply(acme_gone)


@pytest.fixture
def image_server(tmp_path):
    """Serves manifests/files on 127.0.0.1: the local cloud has no internet."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(MANIFESTS / "files")
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_kolla_init_runonce(tmp_path, image_server):
    """kolla-ansible's init-runonce as a manifest, with what the local cloud lacks swapped:
    the cirros URL (no internet) for the test image over local HTTP, physnet1 for the
    local cloud's physnet `public`, vxlan for its tenant type geneve."""

    def local(doc):
        (image,) = doc["images"]
        image["source"] = {"url": f"{image_server}/tiny.raw"}
        image["disk_format"] = "raw"
        for net in doc["networks"]:
            provider = net.get("provider", {})
            if provider.get("physical_network") == "physnet1":
                provider["physical_network"] = "public"
                provider["network_type"] = "vlan"  # flat is exclusive; others may hold it
                provider["segmentation_id"] = 998
            if provider.get("network_type") == "vxlan":
                provider["network_type"] = "geneve"

    converge_then_remove(*copy_manifest(tmp_path, "kolla-init-runonce.yaml", local))


def test_project_vending(tmp_path, monkeypatch):
    """The project vending example, its names given a per-run prefix (the example names
    one team; runs on a shared cloud must not collide). Its quotas are checked through
    novaclient and Neutron's API: only the listed keys moved from the defaults."""
    import secrets

    from tests.integration.engine_util import connect

    prefix = f"ck-{secrets.token_hex(3)}-"
    monkeypatch.setenv("TEAM_A_ADMIN_PASSWORD", "team-A-Secret-1")

    def isolate(value):
        if isinstance(value, str) and value.startswith("team-a"):
            return prefix + value
        if isinstance(value, dict):
            return {k: isolate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [isolate(v) for v in value]
        return value

    def edit(doc):
        doc.update(isolate(doc))

    path, gone = copy_manifest(tmp_path, "project-vending.yaml", edit)
    apply(gone)
    try:
        first = apply(path)
        assert first.result is not None and first.result.ok, [
            str(r.error) for r in first.result.failed
        ]
        assert_converged(path)
        cloud = connect()
        (project,) = [p for p in cloud.keystone.projects.list() if p.name == f"{prefix}team-a"]
        compute = cloud.nova.quotas.get(project.id).to_dict()
        defaults = cloud.nova.quotas.defaults(project.id).to_dict()
        assert (compute["instances"], compute["cores"], compute["ram"]) == (20, 40, 81920)
        assert compute["key_pairs"] == defaults["key_pairs"]  # not listed: untouched
        network = cloud.network.get(f"/quotas/{project.id}").json()["quota"]
        assert (network["router"], network["security_group_rule"]) == (2, 200)
        block = cloud.sdk.block_storage
        volume = block.get(f"/os-quota-sets/{project.id}").json()["quota_set"]
        assert (volume["volumes"], volume["gigabytes"]) == (20, 1000)
        (ssd,) = [t for t in block.types(is_public="None") if t.name == f"{prefix}team-a-ssd"]
        assert not ssd.is_public
        assert [e["project_id"] for e in block.get_type_access(ssd.id)] == [project.id]
        groups = cloud.nova.server_groups.list(all_projects=True)
        assert [g.policy for g in groups if g.name == f"{prefix}team-a-spread"] == [
            "soft-anti-affinity"
        ]
    finally:
        removed = apply(gone)
        assert removed.result is None or removed.result.ok, [
            str(r.error) for r in removed.result.failed
        ]


TEAMS = MANIFESTS / "teams"
# Every team's project, group and grants marked absent, in any environment: the last
# layer of the clean-up run (itself a use of for_each over the same variable).
DECOMMISSION = """
projects:
  - {name: "${var.prefix}playground", state: absent}
  - for_each: ${var.teams}
    name: ${var.prefix}${each.key}
    state: absent
groups:
  - {name: "${var.prefix}auditors", state: absent}
  - for_each: ${var.teams}
    name: ${var.prefix}${each.key}-members
    state: absent
quotas:
  - for_each: ${var.teams}
    project: ${var.prefix}${each.key}
    state: absent
role_assignments:
  - for_each: ${var.teams}
    role: member
    group: ${var.prefix}${each.key}-members
    project: ${var.prefix}${each.key}
    state: absent
  - for_each: ${var.teams}
    role: reader
    group: ${var.prefix}auditors
    project: ${var.prefix}${each.key}
    state: absent
"""


def test_teams_manifest_staging_converges_and_is_decommissioned(tmp_path):
    """base + env/staging with a unique prefix: applied, re-applied with no write, what
    the overlay changed is in the cloud, then everything removed by an absent layer."""
    import uuid

    from bootstrap.manifest import LoadOptions
    from tests.integration.engine_util import connect, plan

    prefix = f"lg-{uuid.uuid4().hex[:6]}-"
    base = [str(TEAMS / "base")]
    var = (f"prefix={prefix}",)
    staging = LoadOptions(env=(str(TEAMS / "env" / "staging"),), var_args=var)
    gone_file = tmp_path / "decommission.yaml"
    gone_file.write_text(DECOMMISSION)
    gone = LoadOptions(env=(*staging.env, str(gone_file)), var_args=var)
    teams = ("alpha", "bravo", "charlie")
    try:
        first = apply(base, options=staging)
        assert first.result is not None and first.result.ok, [
            str(r.error) for r in first.result.failed
        ]
        created = {a for a, act in first.actions().items() if act == "create"}
        for t in teams:
            assert f"projects.{prefix}{t}" in created
            assert f"groups.{prefix}{t}-members" in created
            assert (
                f"role_assignments.member/group:{prefix}{t}-members/project:{prefix}{t}"
                in created
            )
        assert_converged(base, options=staging)
        keystone = connect().keystone  # read back with the Python client, not the tool
        alpha = keystone.projects.find(name=f"{prefix}alpha")
        assert alpha.description == "Payments (staging)"
        # Each team's quota from its entry in the teams map, read with novaclient.
        charlie = keystone.projects.find(name=f"{prefix}charlie")
        assert connect().nova.quotas.get(charlie.id).instances == 40
        playground = keystone.projects.find(name=f"{prefix}playground")
        # The environment's fields over the base's: its description, its tags.
        assert playground.description == "Scratch space for every team (wiped on Mondays)"
        assert playground.tags == ["wiped-weekly"]
        # Production, planned against it: its own team list, and no playground.
        prod = LoadOptions(env=(str(TEAMS / "env" / "prod"),), var_args=var)
        prod_plan = plan(base, options=prod, stack=f"{prefix}teams-staging")
        changes = {str(c.address): c.action.value for c in prod_plan.changes if c.is_change}
        assert changes[f"projects.{prefix}delta"] == "create"
        assert changes[f"projects.{prefix}playground"] == "delete"
        assert f"projects.{prefix}charlie" not in changes  # not declared: left alone
        assert changes[f"quotas.{prefix}alpha"] == "update"  # prod's 50 instances
    finally:
        removed = apply(base, options=gone)
        assert removed.result is None or removed.result.ok, [
            str(r.error) for r in removed.result.failed
        ]
    keystone = connect().keystone
    left = [p.name for p in keystone.projects.list() if p.name.startswith(prefix)]
    left += [g.name for g in keystone.groups.list() if g.name.startswith(prefix)]
    assert left == []
