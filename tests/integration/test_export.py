"""`bootstrap export` round trips on the local cloud: export a project, plan the export
against the same cloud: 0 changes. Once over what the tool applied from a manifest of
the example manifests' kinds, once over what the Python clients made directly (then
applying the export writes nothing).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import yaml

from bootstrap import engine
from bootstrap.export import Scope
from tests.integration.engine_util import REPO, apply, connect, plan, write_manifest

FILES = REPO / "manifests" / "files"


@pytest.fixture(autouse=True)
def cloud_env(devcloud_clouds_yaml, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(devcloud_clouds_yaml))


def export_to(tmp_path: Path, scope: Scope, monkeypatch, stack: str | None = None):
    """Export, write the file, set the placeholders' variables (on_create: any value)."""
    result = engine.export(connect(), scope, stack)
    path = tmp_path / "export.yaml"
    path.write_text(result.to_yaml())
    for name in result.env:
        monkeypatch.setenv(name, "Export-Secret-1")
    return result, str(path)


def absent(doc: dict, prefix: str) -> dict:
    """What this test made (a field names its prefix), marked absent; the rest kept as
    it is (the admin project and user, the member role are only referred to)."""
    out: dict = {}
    for section, items in doc.items():
        if not isinstance(items, list):
            out[section] = items
            continue
        out[section] = []
        for item in items:
            mine = item.get("managed") is not False and any(
                isinstance(v, str) and v.startswith(prefix) for v in item.values()
            )
            if mine:
                item = {**item, "state": "absent"}
                item.pop("security_groups", None)
            out[section].append(item)
    return out


def manifest_a(p: str) -> str:
    return f"""
    version: 1
    stack: {p}stack
    projects:
      - name: admin
      - name: {p}proj
        description: export round trip
        tags: [export]
    roles:
      - name: member
    users:
      - name: admin
      - name: {p}user
        password: {{env: EX_TEST_PASSWORD}}
        default_project: {p}proj
        email: ops@example.org
    groups:
      - name: {p}grp
        description: the team
        members: [{p}user]
    role_assignments:
      - {{role: member, user: {p}user, project: {p}proj}}
      - {{role: member, group: {p}grp, project: {p}proj}}
      - {{role: member, user: admin, project: {p}proj}}
    flavors:
      - name: {p}flavor
        vcpus: 1
        ram: 128
        disk: 1
        is_public: false
        access: [{p}proj]
        extra_specs: {{"hw:cpu_policy": shared}}
    keypairs:
      - name: {p}key
        user: {p}user
        public_key_file: {FILES / "id_ed25519.pub"}
      - name: {p}adminkey
        public_key_file: {FILES / "id_ed25519.pub"}
    images:
      - name: {p}image
        project: {p}proj
        source: {{file: {FILES / "tiny.raw"}}}
        disk_format: raw
        properties: {{os_distro: cirros}}
    networks:
      - name: {p}ext
        project: admin
        external: true
      - name: {p}net
        project: {p}proj
        description: app network
    subnets:
      - name: {p}ext-sub
        project: admin
        network: {p}ext
        cidr: 198.51.100.0/24
        enable_dhcp: false
      - name: {p}sub
        project: {p}proj
        network: {p}net
        cidr: 10.77.0.0/24
        dns_nameservers: [192.0.2.53]
        allocation_pools: [{{start: 10.77.0.10, end: 10.77.0.99}}]
    routers:
      - name: {p}router
        project: {p}proj
        external_gateway: {{network: {p}ext}}
        interfaces: [{p}sub]
    security_groups:
      - name: {p}web
        project: {p}proj
        description: web
        rules:
          - {{protocol: tcp, port: 443, remote_ip_prefix: 0.0.0.0/0}}
          - {{protocol: tcp, port: 22, remote_group: {p}web, description: ssh}}
    servers:
      - name: {p}vm
        project: {p}proj
        image: {p}image
        flavor: {p}flavor
        keypair: {p}adminkey
        networks: [{p}net]
        security_groups: [{p}web]
        metadata: {{role: web}}
    floating_ips:
      - project: {p}proj
        server: {p}vm
        network: {p}ext
    """


def test_export_of_what_the_tool_applied_plans_no_changes(tmp_path, monkeypatch):
    p = f"ex-{secrets.token_hex(3)}-"
    monkeypatch.setenv("EX_TEST_PASSWORD", "Ex-Secret-1")
    path = write_manifest(tmp_path, manifest_a(p))
    try:
        apply(path)
        t0 = time.monotonic()
        scope = Scope(projects=(f"{p}proj",))
        result, exported = export_to(tmp_path, scope, monkeypatch, f"{p}stack")
        took = time.monotonic() - t0
        doc = yaml.safe_load(Path(exported).read_text())
        print(Path(exported).read_text(), result.requests, f"{took:.1f}s", result.warnings)
        assert result.warnings == []
        assert doc["stack"] == f"{p}stack"
        # Out of the scope, referenced: lookups; inside it: managed, by name.
        assert {"name": f"{p}ext", "project": "admin", "managed": False} in doc["networks"]
        assert {"name": "member", "managed": False} in doc["roles"]
        # The admin user has roles outside the project: referred to, not exported.
        assert {"name": "admin", "managed": False} in doc["users"]
        key = " ".join((FILES / "id_ed25519.pub").read_text().split()[:2])  # no comment
        assert {"name": f"{p}adminkey", "user": "admin", "public_key": key,
                "managed": False} in doc["keypairs"]
        router = next(r for r in doc["routers"] if r["name"] == f"{p}router")
        assert router["external_gateway"] == {"network": f"{p}ext"}
        assert router["interfaces"] == [f"{p}sub"]
        user = next(u for u in doc["users"] if u["name"] == f"{p}user")
        assert user["password"] == {"env": next(iter(v for v in result.env if p.upper()
                                                       .replace("-", "_") in v))}
        assert "Ex-Secret-1" not in Path(exported).read_text()
        # The round trip: the export planned against the same cloud changes nothing.
        changes = {str(c.address): c.action.value for c in plan(exported).changes if c.is_change}
        assert changes == {}
    finally:
        gone = tmp_path / "gone.yaml"
        gone.write_text(yaml.safe_dump(absent(yaml.safe_load(Path(path).read_text()), p)))
        apply(str(gone), allow_destroy=True)


def test_export_of_what_the_clients_made_plans_and_applies_no_changes(
    tmp_path, monkeypatch, admin_cloud_config
):
    """Made with openstacksdk, not the tool: no markers, server-side defaults as the
    services chose them. The export plans 0 changes and applying it writes nothing."""
    import openstack.connection

    conn = openstack.connection.Connection(config=admin_cloud_config)
    p = f"ex-{secrets.token_hex(3)}-"
    made: list = []  # (delete function, object), deleted last made first
    try:
        proj = conn.identity.create_project(name=f"{p}proj", description="by hand")
        made.append((conn.identity.delete_project, proj))
        user = conn.identity.create_user(
            name=f"{p}user", password=secrets.token_urlsafe(12), default_project_id=proj.id
        )
        made.append((conn.identity.delete_user, user))
        group = conn.identity.create_group(name=f"{p}grp")
        made.append((conn.identity.delete_group, group))
        conn.identity.add_user_to_group(user, group)
        member = conn.identity.find_role("member")
        conn.identity.assign_project_role_to_user(proj, user, member)
        conn.identity.assign_project_role_to_group(proj, group, member)
        flavor = conn.compute.create_flavor(
            name=f"{p}flavor", vcpus=1, ram=64, disk=0, is_public=False
        )
        made.append((conn.compute.delete_flavor, flavor))
        conn.compute.flavor_add_tenant_access(flavor, proj.id)
        net = conn.network.create_network(name=f"{p}net", project_id=proj.id)
        made.append((conn.network.delete_network, net))
        sub = conn.network.create_subnet(
            name=f"{p}sub", network_id=net.id, project_id=proj.id, ip_version=4,
            cidr="10.78.0.0/24",
        )
        made.append((conn.network.delete_subnet, sub))
        router = conn.network.create_router(name=f"{p}router", project_id=proj.id)
        made.append((conn.network.delete_router, router))
        conn.network.add_interface_to_router(router, subnet=sub.id)
        made.append((lambda r: conn.network.remove_interface_from_router(r, subnet=sub.id),
                     router))
        sg = conn.network.create_security_group(name=f"{p}sg", project_id=proj.id)
        made.append((conn.network.delete_security_group, sg))
        conn.network.create_security_group_rule(
            security_group_id=sg.id, direction="ingress", protocol="tcp",
            port_range_min=80, port_range_max=80, remote_ip_prefix="0.0.0.0/0",
        )
        conn.network.create_security_group_rule(
            security_group_id=sg.id, direction="ingress", remote_group_id=sg.id,
        )

        result, exported = export_to(tmp_path, Scope(projects=(f"{p}proj",)), monkeypatch)
        text = Path(exported).read_text()
        print(text, result.requests, result.warnings)
        assert result.warnings == []
        doc = yaml.safe_load(text)
        assert [g["members"] for g in doc["groups"]] == [[f"{p}user"]]
        assert next(f for f in doc["flavors"])["access"] == [f"{p}proj"]
        # Neutron's own egress rules are not written; the group's own rule is by name.
        rules = next(g for g in doc["security_groups"] if g["name"] == f"{p}sg")["rules"]
        assert {"remote_group": f"{p}sg"} in rules and len(rules) == 2
        assert {str(c.address) for c in plan(exported).changes if c.is_change} == set()
        run = apply(exported)
        assert run.actions() == {} and run.writes == 0
    finally:
        for delete, obj in reversed(made):
            try:
                delete(obj)
            except Exception as exc:  # noqa: BLE001 - clean up the rest, then say so
                print(f"cleanup: {exc}")
