"""Operator-facing fixes against the real local cloud: a server's security groups in a
project other than the token's; a non-admin's admin-only fields refused before any write;
lookups and names in plans."""

from __future__ import annotations

import contextlib
import time

import pytest

from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest
from tests.integration.test_compute_kinds import cleanup, cloud, live_server, one, raw_disk

__all__ = ["cleanup", "cloud"]  # fixtures

GROUPS_BASE = """
projects:
  - name: {n}proj
roles:
  - name: member
users:
  - name: admin
role_assignments:
  - {role: member, user: admin, project: {n}proj}
images:
  - {name: {n}img, source: {file: disk.raw}, disk_format: raw, container_format: bare,
     visibility: public}
flavors:
  - {name: {n}tiny, vcpus: 1, ram: 64, disk: 1}
networks:
  - {name: {n}net, project: {n}proj}
subnets:
  - {name: {n}sub, project: {n}proj, network: {n}net, cidr: 10.201.%d.0/24}
security_groups:
  - {name: default, project: {n}proj}
  - {name: {n}web, project: {n}proj, description: web}
servers:
  - name: {n}vm
    project: {n}proj
    image: {n}img
    flavor: {n}tiny
    networks: [{n}net]
    security_groups: GROUPS
    timeout: 300
"""


def test_server_groups_change_in_a_project_other_than_the_tokens(
    tmp_path, unique_name, cleanup, cloud
):
    n = unique_name
    raw_disk(tmp_path / "disk.raw", n)
    base = GROUPS_BASE.replace("{n}", n) % (int(n[3:5], 16))
    address = f"servers.{n}proj/{n}vm"

    def step(groups: str, name: str) -> list[str]:
        path = write_manifest(tmp_path, base.replace("GROUPS", groups), name)
        run = apply(path)
        assert run.result is not None and run.result.ok, [
            (str(r.address), str(r.error)) for r in run.result.failed
        ]
        assert_converged(path)
        return sorted(g["name"] for g in live_server(cloud, n).security_groups)

    project = None
    try:
        assert step("[default]", "one.yaml") == ["default"]
        project = one(cloud.keystone.projects.list(name=f"{n}proj"))
        assert cloud.project_id != project.id  # the token is the admin project's
        # Adding a group, then removing one: both were refused (HTTP 404) before.
        assert step(f"[default, {n}web]", "two.yaml") == ["default", f"{n}web"]
        drift = plan(write_manifest(tmp_path, base.replace("GROUPS", f"[{n}web]"), "p.yaml"))
        assert {str(c.address) for c in drift.changes if c.is_change} == {address}
        assert step(f"[{n}web]", "three.yaml") == [f"{n}web"]
    finally:
        if project is not None:
            # The project's default group outlives the project: delete it once the
            # server that uses it is gone.
            c = connect()
            net, nova = c.network, c.nova
            for s in nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{n}vm$"}):
                with contextlib.suppress(Exception):
                    nova.servers.delete(s.id)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and nova.servers.list(
                search_opts={"all_tenants": 1, "name": f"^{n}vm$"}
            ):
                time.sleep(1)
            for sg in net.security_groups(project_id=project.id, name="default"):
                with contextlib.suppress(Exception):
                    net.delete_security_group(sg)
            with contextlib.suppress(Exception):
                cloud.keystone.roles.revoke(
                    one(cloud.keystone.roles.list(name="member")),
                    user=cloud.user_id,
                    project=project,
                )


# --- a non-admin's admin-only fields: refused before the first write ---------------------

ADMIN_ONLY = {
    "networks.demo/{n}ext.external": """
networks:
  - {name: {n}ext, project: demo, external: true}
""",
    "routers.demo/{n}r.external_gateway.enable_snat": """
networks:
  - {name: {n}pub, project: admin, managed: false}
routers:
  - {name: {n}r, project: demo, external_gateway: {network: {n}pub, enable_snat: false}}
""",
    "images.{n}img.visibility": """
images:
  - {name: {n}img, source: {file: disk.raw}, disk_format: raw, container_format: bare,
     visibility: public}
""",
}
DEMO_BASE = """
projects:
  - {name: demo, managed: false}
  - {name: admin, managed: false}
"""


@pytest.fixture
def external_network(unique_name):
    """The admin's external network a non-admin looks up (this test's own, not `public`:
    other tests and manifests create and remove that one)."""
    sdk = connect().network
    admin = one(p for p in connect().keystone.projects.list(name="admin"))
    net = sdk.create_network(name=f"{unique_name}pub", project_id=admin.id, is_router_external=True)
    yield net
    with contextlib.suppress(Exception):
        sdk.delete_network(net)


def test_non_admin_admin_only_fields_are_refused_before_any_write(
    tmp_path, unique_name, external_network
):
    from bootstrap import engine
    from bootstrap.errors import PreflightError

    n = unique_name
    raw_disk(tmp_path / "disk.raw", n)
    everything = DEMO_BASE + "".join(ADMIN_ONLY.values()).replace(
        "networks:\n  - {name: {n}pub", "  - {name: {n}pub"
    )
    cases = {field: DEMO_BASE + text for field, text in ADMIN_ONLY.items()}
    cases["all"] = everything
    for i, (field, text) in enumerate(sorted(cases.items())):
        path = write_manifest(tmp_path, text.replace("{n}", n), f"m{i}.yaml")
        c = connect("devcloud-demo")
        assert "admin" not in c.roles
        loaded = engine.load([path])
        the_plan, resolver = engine.plan(c, loaded)
        assert the_plan.has_changes
        try:
            engine.apply(c, the_plan, resolver)
        except PreflightError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{field}: applied without the admin role")
        wanted = list(ADMIN_ONLY) if field == "all" else [field]
        for f in wanted:
            assert f.replace("{n}", n) in message, message
        assert "reserves to the admin role" in message and "Nothing was changed" in message
        assert c.counter.writes == 0, (field, c.counter.snapshot())


def test_non_admin_plan_does_not_call_a_used_lookup_unused(tmp_path, unique_name, external_network):
    n = unique_name
    text = (
        DEMO_BASE
        + """
networks:
  - {name: {n}pub, project: admin, managed: false}
routers:
  - {name: {n}r, project: demo, external_gateway: {network: {n}pub}}
"""
    )
    p = plan(write_manifest(tmp_path, text.replace("{n}", n)), "devcloud-demo")
    shown = {d.address: d.summary for d in p.diagnostics}
    assert shown == {
        "projects.admin": "managed: false resource not visible to this user; assumed to exist"
    }
