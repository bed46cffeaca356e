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
        result, exported = export_to(tmp_path, Scope(projects=(f"{p}proj",)), monkeypatch, f"{p}stack")
        took = time.monotonic() - t0
        doc = yaml.safe_load(Path(exported).read_text())
        print(Path(exported).read_text(), result.requests, f"{took:.1f}s", result.warnings)
        assert result.warnings == []
        assert doc["stack"] == f"{p}stack"
        # Out of the scope, referenced: lookups; inside it: managed, by name.
        assert {"name": f"{p}ext", "project": "admin", "managed": False} in doc["networks"]
        assert {"name": "member", "managed": False} in doc["roles"]
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
