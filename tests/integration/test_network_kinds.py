"""Network kinds against real Neutron (ML2/OVN): security groups, networks, subnets,
routers, floating IPs.

For every kind: apply -> apply again (0 writes, 0 changes) -> change it out of band with
openstacksdk -> the plan shows exactly that drift -> apply converges -> state: absent ->
apply twice (the second does nothing). Admin tests work in a project of their own; the
non-admin test works in project demo as user demo, on resources with unique names.
"""

from __future__ import annotations

import contextlib
import random
import re
import time

import pytest

from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest

MARKER = "managed-by:openstack-bootstrap"


# --- helpers ---------------------------------------------------------------------------


def one(items):
    items = list(items)
    assert len(items) == 1, items
    return items[0]


def changes(the_plan):
    return {str(c.address): c for c in the_plan.changes if c.is_change}


def fields_of(change):
    return sorted(d.field for d in change.fields)


def with_state_absent(text: str, kind: str, name: str) -> str:
    """The manifest with `state: absent` added to one entry (`- name: <name>` of `kind`)."""
    out, in_kind, done = [], False, False
    for line in text.splitlines():
        out.append(line)
        stripped = line.strip()
        if re.fullmatch(r"[a-z_]+:", stripped):
            in_kind = stripped == f"{kind}:"
        elif in_kind and not done and re.match(rf"- \{{?name: {re.escape(name)}(,|$)", stripped):
            out.append(" " * (len(line) - len(line.lstrip()) + 2) + "state: absent")
            done = True
    assert done, f"no {kind} entry named {name}"
    return "\n".join(out) + "\n"


def lifecycle_end(tmp_path, text, kind, name, address):
    """state: absent deletes it once; the second apply does nothing."""
    gone = write_manifest(tmp_path, with_state_absent(text, kind, name), "absent.yaml")
    removed = apply(gone)
    assert removed.actions().get(address) == "delete", removed.actions()
    assert removed.result is not None and removed.result.ok, removed.result
    again = apply(gone)
    assert again.actions() == {} and again.writes == 0


def apply_ok(path, **kw):
    run = apply(path, **kw)
    if run.result is not None:
        failed = {str(r.address): repr(r.error) for r in run.result.failed}
        assert run.result.ok, failed
    return run


def vlan_id() -> int:
    # A flat physnet can be used once; VLANs on physnet `public` can be many.
    return random.randint(100, 4000)


def purge_project(project_name: str) -> None:
    """Delete, as admin, every network resource of a test project, then the project."""
    cloud = connect()
    found = [p for p in cloud.keystone.projects.list() if p.name == project_name]
    for p in found:
        purge_network_resources(cloud.network, project_id=p.id)
        with contextlib.suppress(Exception):
            cloud.keystone.projects.delete(p.id)


def purge_network_resources(net, project_id: str, prefix: str | None = None) -> None:
    """Floating IPs, routers (interfaces first), networks (their subnets), groups."""

    def mine(obj):
        return prefix is None or (obj.name or "").startswith(prefix)

    if prefix is None:
        for f in net.ips(project_id=project_id):
            with contextlib.suppress(Exception):
                net.delete_ip(f)
    for r in net.routers(project_id=project_id):
        if not mine(r):
            continue
        for p in net.ports(device_id=r.id, device_owner="network:router_interface"):
            with contextlib.suppress(Exception):
                net.remove_interface_from_router(r, port=p.id)
        with contextlib.suppress(Exception):
            net.delete_router(r)
    for n in net.networks(project_id=project_id):
        if mine(n):
            with contextlib.suppress(Exception):
                net.delete_network(n)
    for g in net.security_groups(project_id=project_id):
        if mine(g):  # a purged project's default group too
            with contextlib.suppress(Exception):
                net.delete_security_group(g)


@pytest.fixture
def project(unique_name):
    """A fresh project name for an admin test; everything in it is purged afterwards."""
    name = unique_name("proj")
    yield name
    purge_project(name)


@pytest.fixture
def sdk():
    return connect().network


def project_id(name: str) -> str:
    return one(p for p in connect().keystone.projects.list() if p.name == name).id


# --- security groups -----------------------------------------------------------------


@pytest.mark.lifecycle("security_groups")
def test_security_group_lifecycle(tmp_path, project, unique_name, sdk):
    web = unique_name("web")
    text = f"""
    projects:
      - name: {project}
    security_groups:
      - name: {web}
        project: {project}
        description: web tier
        rules:
          - {{protocol: tcp, port: 443, description: https}}
          - {{protocol: tcp, port_range_min: 8000, port_range_max: 8080, remote_group: {web}}}
          - {{protocol: icmp, ethertype: IPv6}}
          - {{protocol: udp, port: 53, remote_ip_prefix: 10.0.0.0/8}}
    """
    path = write_manifest(tmp_path, text)
    address = f"security_groups.{project}/{web}"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    group = one(sdk.security_groups(name=web))
    assert MARKER in group.tags
    assert group.project_id == project_id(project)
    live = list(sdk.security_group_rules(security_group_id=group.id))
    # 4 rules of the manifest + Neutron's own egress IPv4/IPv6, each once.
    assert len(live) == 6
    assert all(r.project_id == group.project_id for r in live)
    assert_converged(path)

    # Out of band: one rule removed, a foreign one added, the description changed.
    https = one(r for r in live if r.port_range_min == 443)
    sdk.delete_security_group_rule(https)
    sdk.create_security_group_rule(
        security_group_id=group.id,
        direction="ingress",
        ether_type="IPv4",
        protocol="tcp",
        port_range_min=23,
        port_range_max=23,
    )
    sdk.update_security_group(group, description="hand made")
    drifted = changes(plan(path))
    assert list(drifted) == [address]
    assert drifted[address].action.value == "update"  # a rule change is no replace
    assert fields_of(drifted[address]) == ["description", "rules"]
    before = next(d.before for d in drifted[address].fields if d.field == "rules")
    ports = sorted(r.get("port_range_min") or 0 for r in before)
    assert 23 in ports and 443 not in ports
    # Neutron's automatic egress rules are not part of the drift.
    assert not any(r["direction"] == "egress" for r in before)

    fixed = apply_ok(path)
    assert fixed.writes == 3  # description PUT, one DELETE (telnet), one bulk POST (https)
    assert_converged(path)
    assert len(list(sdk.security_group_rules(security_group_id=group.id))) == 6

    lifecycle_end(tmp_path, text, "security_groups", web, address)
    assert list(sdk.security_groups(name=web)) == []


def test_default_group_opened_for_ssh_and_icmp(tmp_path, project, sdk):
    text = f"""
    projects:
      - name: {project}
    security_groups:
      - name: default
        project: {project}
        rules:
          - {{protocol: tcp, port: 22}}
          - {{protocol: icmp}}
          - {{direction: egress, ethertype: IPv4}}
    """
    path = write_manifest(tmp_path, text)
    address = f"security_groups.{project}/default"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    # The project (1 POST) and the two new rules (1 bulk POST): no group created, no
    # automatic rule re-created, nothing refused with a 409.
    assert first.writes == 2, first.writes
    pid = project_id(project)
    group = one(sdk.security_groups(project_id=pid, name="default"))
    assert MARKER not in group.tags  # adopted, not created: --prune must never take it
    rules = list(sdk.security_group_rules(security_group_id=group.id))
    assert len(rules) == 6  # 4 automatic + ssh + icmp
    assert_converged(path)

    # A second run on an existing default group: still nothing to do.
    again = apply(path)
    assert again.actions() == {} and again.writes == 0

    # Drift: a foreign rule is removed, the automatic ones stay.
    sdk.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ether_type="IPv4", protocol="udp"
    )
    drifted = changes(plan(path))
    assert list(drifted) == [address] and fields_of(drifted[address]) == ["rules"]
    apply_ok(path)
    assert_converged(path)
    assert len(list(sdk.security_group_rules(security_group_id=group.id))) == 6


# --- networks ---------------------------------------------------------------------------


@pytest.mark.lifecycle("networks")
def test_network_lifecycle_and_replace(tmp_path, project, unique_name, sdk):
    net = unique_name("net")
    seg = vlan_id()
    text = f"""
    projects:
      - name: {project}
    networks:
      - name: {net}
        project: {project}
        description: private
        mtu: 1400
        port_security_enabled: true
        admin_state_up: true
      - name: {net}-ext
        project: {project}
        external: true
        provider: {{network_type: vlan, physical_network: public, segmentation_id: {seg}}}
    """
    path = write_manifest(tmp_path, text)
    address = f"networks.{project}/{net}"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    n = one(sdk.networks(name=net))
    assert (n.mtu, n.description, MARKER in n.tags) == (1400, "private", True)
    ext = one(sdk.networks(name=f"{net}-ext"))
    assert ext.is_router_external and ext.provider_segmentation_id == seg
    assert_converged(path)

    sdk.update_network(n, description="hand made", mtu=1300)
    sdk.update_network(ext, is_shared=True)  # not in the manifest: not drift
    drifted = changes(plan(path))
    assert list(drifted) == [address]
    assert fields_of(drifted[address]) == ["description", "mtu"]
    apply_ok(path)
    assert_converged(path)

    # Provider attributes cannot change in place: a replace, refused without the flag.
    moved = text.replace(f"segmentation_id: {seg}", f"segmentation_id: {seg + 1}")
    moved_path = write_manifest(tmp_path, moved, "moved.yaml")
    replan = changes(plan(moved_path))
    ext_address = f"networks.{project}/{net}-ext"
    assert {a: c.action.value for a, c in replan.items()} == {ext_address: "replace"}
    assert replan[ext_address].destructive
    apply_ok(moved_path, allow_destroy=True)
    assert one(sdk.networks(name=f"{net}-ext")).provider_segmentation_id == seg + 1
    assert_converged(moved_path)

    lifecycle_end(tmp_path, moved, "networks", net, address)


# --- subnets ----------------------------------------------------------------------------


@pytest.mark.lifecycle("subnets")
def test_subnet_lifecycle_and_replace(tmp_path, project, unique_name, sdk):
    net, sub = unique_name("net"), unique_name("sub")
    text = f"""
    projects:
      - name: {project}
    networks:
      - name: {net}
        project: {project}
    subnets:
      - name: {sub}
        project: {project}
        network: {net}
        cidr: 10.61.0.0/24
        gateway_ip: null
        enable_dhcp: true
        dns_nameservers: [192.0.2.53, 192.0.2.54]
        allocation_pools:
          - {{start: 10.61.0.100, end: 10.61.0.150}}
          - {{start: 10.61.0.10, end: 10.61.0.20}}
        host_routes: [{{destination: 192.168.0.0/16, nexthop: 10.61.0.254}}]
      - name: {sub}-v6
        project: {project}
        network: {net}
        cidr: 2001:DB8:61::/64
        ip_version: 6
    """
    path = write_manifest(tmp_path, text)
    address = f"subnets.{project}/{sub}"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    s = one(sdk.subnets(name=sub))
    assert s.gateway_ip is None and MARKER in s.tags
    assert s.network_id == one(sdk.networks(name=net)).id
    assert_converged(path)

    sdk.update_subnet(s, dns_nameservers=["192.0.2.54", "192.0.2.53"], host_routes=[])
    drifted = changes(plan(path))
    assert list(drifted) == [address]
    assert fields_of(drifted[address]) == ["dns_nameservers", "host_routes"]
    apply_ok(path)
    assert_converged(path)
    assert one(sdk.subnets(name=sub)).dns_nameservers == ["192.0.2.53", "192.0.2.54"]

    # A new range cannot be set in place: a replace (the subnet keeps its name).
    moved = text.replace("10.61.0.", "10.62.0.")
    moved_path = write_manifest(tmp_path, moved, "moved.yaml")
    replan = changes(plan(moved_path))
    assert {a: c.action.value for a, c in replan.items()} == {address: "replace"}
    assert "cidr" in fields_of(replan[address])
    apply_ok(moved_path, allow_destroy=True)
    assert one(sdk.subnets(name=sub)).cidr == "10.62.0.0/24"
    assert_converged(moved_path)

    lifecycle_end(tmp_path, moved, "subnets", sub, address)
    assert list(sdk.subnets(name=sub)) == []


# --- routers ----------------------------------------------------------------------------


def router_manifest(project: str, n: str, seg: int) -> str:
    return f"""
    projects:
      - name: {project}
    networks:
      - name: {n}ext
        project: {project}
        external: true
        provider: {{network_type: vlan, physical_network: public, segmentation_id: {seg}}}
      - name: {n}net
        project: {project}
    subnets:
      - name: {n}ext-sub
        project: {project}
        network: {n}ext
        cidr: 198.51.100.0/24
        enable_dhcp: false
      - name: {n}sub-a
        project: {project}
        network: {n}net
        cidr: 10.71.0.0/24
      - name: {n}sub-b
        project: {project}
        network: {n}net
        cidr: 10.72.0.0/24
    routers:
      - name: {n}router
        project: {project}
        description: edge
        external_gateway: {{network: {n}ext, enable_snat: true}}
        interfaces: [{n}sub-a, {n}sub-b]
    """


@pytest.mark.lifecycle("routers")
def test_router_lifecycle(tmp_path, project, unique_name, sdk):
    n = unique_name
    text = router_manifest(project, n, vlan_id())
    path = write_manifest(tmp_path, text)
    address = f"routers.{project}/{n}router"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    r = one(sdk.routers(name=f"{n}router"))
    assert r.external_gateway_info["network_id"] == one(sdk.networks(name=f"{n}ext")).id
    ifaces = list(sdk.ports(device_id=r.id, device_owner="network:router_interface"))
    assert len(ifaces) == 2
    assert_converged(path)

    # Out of band: one interface removed, the description changed.
    sdk.remove_interface_from_router(r, subnet=one(sdk.subnets(name=f"{n}sub-b")).id)
    sdk.update_router(r, description="hand made")
    drifted = changes(plan(path))
    assert list(drifted) == [address]
    assert drifted[address].action.value == "update"
    assert fields_of(drifted[address]) == ["description", "interfaces"]
    fixed = apply_ok(path)
    assert fixed.writes == 2  # one router PUT, one add_router_interface
    assert_converged(path)

    # Dropping an interface and snat in the manifest: both updated in place.
    less = text.replace(f"[{n}sub-a, {n}sub-b]", f"[{n}sub-a]").replace(
        "enable_snat: true", "enable_snat: false"
    )
    less_path = write_manifest(tmp_path, less, "less.yaml")
    replan = changes(plan(less_path))
    assert fields_of(replan[address]) == ["external_gateway", "interfaces"]
    apply_ok(less_path)
    assert_converged(less_path)
    r = one(sdk.routers(name=f"{n}router"))
    assert r.external_gateway_info["enable_snat"] is False
    assert len(list(sdk.ports(device_id=r.id, device_owner="network:router_interface"))) == 1

    lifecycle_end(tmp_path, less, "routers", f"{n}router", address)
    assert list(sdk.routers(name=f"{n}router")) == []


# --- non-admin --------------------------------------------------------------------------


def test_non_admin_manages_its_own_project(tmp_path, unique_name):
    """User demo (member of demo, no admin role): the same manifests, its own project."""
    n = unique_name
    text = f"""
    projects:
      - name: demo
    security_groups:
      - name: {n}sg
        project: demo
        rules:
          - {{protocol: tcp, port: 22}}
          - {{protocol: icmp}}
          - {{remote_group: {n}sg}}
    networks:
      - name: {n}net
        project: demo
        description: demo net
    subnets:
      - name: {n}sub
        project: demo
        network: {n}net
        cidr: 10.81.0.0/24
        dns_nameservers: [192.0.2.53]
    routers:
      - name: {n}router
        project: demo
        interfaces: [{n}sub]
    """
    path = write_manifest(tmp_path, text)
    demo = connect("devcloud-demo")
    net = demo.network
    try:
        first = apply_ok(path, cloud_name="devcloud-demo")
        assert set(first.actions().values()) == {"create"}
        assert len(first.actions()) == 4
        assert_converged(path, "devcloud-demo")

        sdk_net = one(net.networks(name=f"{n}net"))
        net.update_network(sdk_net, description="hand made")
        group = one(net.security_groups(name=f"{n}sg"))
        ssh = one(
            r
            for r in net.security_group_rules(security_group_id=group.id)
            if r.port_range_min == 22
        )
        net.delete_security_group_rule(ssh)
        drifted = changes(plan(path, "devcloud-demo"))
        assert {a: fields_of(c) for a, c in drifted.items()} == {
            f"networks.demo/{n}net": ["description"],
            f"security_groups.demo/{n}sg": ["rules"],
        }
        apply_ok(path, cloud_name="devcloud-demo")
        assert_converged(path, "devcloud-demo")

        gone_text = text
        for kind, name in (
            ("routers", f"{n}router"),
            ("subnets", f"{n}sub"),
            ("networks", f"{n}net"),
            ("security_groups", f"{n}sg"),
        ):
            gone_text = with_state_absent(gone_text, kind, name)
        gone = write_manifest(tmp_path, gone_text, "gone.yaml")
        removed = apply_ok(gone, cloud_name="devcloud-demo")
        assert set(removed.actions().values()) == {"delete"} and len(removed.actions()) == 4
        again = apply(gone, "devcloud-demo")
        assert again.actions() == {} and again.writes == 0
    finally:
        purge_network_resources(net, demo.project_id, prefix=n)


# --- reading cost -----------------------------------------------------------------------


def test_noop_plan_cost_does_not_grow_with_resources(tmp_path, project, unique_name):
    """Converged plans of a small and a 5x larger manifest cost the same requests."""

    def manifest(count: int, rules: int) -> str:
        lines = [f"projects:\n  - name: {project}", "security_groups:"]
        lines.append(f"  - name: {unique_name('sg')}\n    project: {project}\n    rules:")
        lines += [f"      - {{protocol: tcp, port: {1000 + i}}}" for i in range(rules)]
        lines.append("networks:")
        lines += [f"  - {{name: {unique_name(f'n{i}')}, project: {project}}}" for i in range(count)]
        lines.append("subnets:")
        lines += [
            f"  - {{name: {unique_name(f's{i}')}, project: {project}, "
            f"network: {unique_name(f'n{i}')}, cidr: 10.9{i}.0.0/24}}"
            for i in range(count)
        ]
        lines.append("routers:")
        lines += [
            f"  - {{name: {unique_name(f'r{i}')}, project: {project}, "
            f"interfaces: [{unique_name(f's{i}')}]}}"
            for i in range(count)
        ]
        return "\n".join(lines) + "\n"

    costs = {}
    for name, count, rules in (("small", 1, 4), ("large", 5, 40)):
        path = write_manifest(tmp_path, manifest(count, rules), f"{name}.yaml")
        apply_ok(path)
        converged = plan(path)
        assert not converged.has_changes
        costs[name] = converged.requests
    assert costs["small"] == costs["large"], costs


# --- ownership ----------------------------------------------------------------------------


def test_prune_plans_only_what_the_tool_created(tmp_path, project, unique_name, sdk):
    """The stack's resources left out of the manifest are pruned; foreign and default not.

    Only planned (the apply of a prune is tested in test_stacks.py).
    """
    n = unique_name
    both = f"""
    stack: {n}stack
    projects:
      - name: {project}
    security_groups:
      - name: default
        project: {project}
        rules: [{{protocol: tcp, port: 22}}]
      - name: {n}sg
        project: {project}
    networks:
      - name: {n}keep
        project: {project}
      - name: {n}drop
        project: {project}
    subnets:
      - name: {n}drop-sub
        project: {project}
        network: {n}drop
        cidr: 10.91.0.0/24
    routers:
      - name: {n}router
        project: {project}
        interfaces: [{n}drop-sub]
    """
    apply_ok(write_manifest(tmp_path, both, "both.yaml"))
    pid = project_id(project)
    foreign = sdk.create_network(name=f"{n}foreign", project_id=pid)
    keep = write_manifest(
        tmp_path,
        f"stack: {n}stack\nprojects:\n  - name: {project}\n"
        f"networks:\n  - name: {n}keep\n    project: {project}\n",
        "keep.yaml",
    )
    pruned = plan(keep, prune=True)
    deleted = {str(c.address) for c in pruned.changes if c.action.value == "delete"}
    # Addressed by the project's name, not its id.
    assert deleted == {
        f"security_groups.{project}/{n}sg",
        f"networks.{project}/{n}drop",
        f"subnets.{project}/{n}drop-sub",
        f"routers.{project}/{n}router",
    }
    assert foreign.id not in {c.observed.id for c in pruned.changes if c.observed}


# --- floating IPs (with a server of the servers kind) -------------------------------------


@pytest.fixture
def compute_cleanup(unique_name):
    """Servers, images and flavors under the test's prefix, then its network resources."""
    yield
    c = connect()
    n = unique_name
    nova = c.nova
    servers = [
        s
        for s in nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{n}"})
        if s.name.startswith(n)
    ]
    for s in servers:
        with contextlib.suppress(Exception):
            nova.servers.delete(s.id)
    deadline = time.monotonic() + 120
    while servers and time.monotonic() < deadline:
        live = {s.id for s in nova.servers.list(search_opts={"all_tenants": 1})}
        servers = [s for s in servers if s.id in live]
        time.sleep(1)
    for f in c.network.ips(project_id=c.project_id):
        if (f.description or "").startswith(n):
            with contextlib.suppress(Exception):
                c.network.delete_ip(f)
    purge_network_resources(c.network, c.project_id, prefix=n)
    for img in c.glance.images.list(filters={"visibility": "all"}):
        if (img.get("name") or "").startswith(n):
            with contextlib.suppress(Exception):
                c.glance.images.delete(img["id"])
    for f in nova.flavors.list(is_public=None):
        if f.name.startswith(n):
            with contextlib.suppress(Exception):
                f.delete()


@pytest.mark.lifecycle("floating_ips")
def test_floating_ip_lifecycle(tmp_path, unique_name, sdk, compute_cleanup):
    """A floating IP on a server created in the same apply, routed through a gateway."""
    n = unique_name
    # Glance inspects raw uploads: zeros with a tag are a raw disk.
    (tmp_path / "disk.raw").write_bytes(bytes(4096) + n.encode() + bytes(4096))
    net_octet = random.randint(0, 255)
    text = f"""
    projects:
      - name: admin
    images:
      - {{name: {n}img, source: {{file: disk.raw}}, disk_format: raw, container_format: bare}}
    flavors:
      - {{name: {n}tiny, vcpus: 1, ram: 64, disk: 1}}
    networks:
      - name: {n}ext
        project: admin
        external: true
        provider: {{network_type: vlan, physical_network: public, segmentation_id: {vlan_id()}}}
      - {{name: {n}net, project: admin}}
    subnets:
      - {{name: {n}ext-sub, project: admin, network: {n}ext, cidr: 198.19.{net_octet}.0/24,
          enable_dhcp: false}}
      - {{name: {n}sub, project: admin, network: {n}net, cidr: 10.97.{net_octet}.0/24}}
    routers:
      - name: {n}router
        project: admin
        external_gateway: {{network: {n}ext}}
        interfaces: [{n}sub]
    servers:
      - {{name: {n}vm, project: admin, image: {n}img, flavor: {n}tiny, networks: [{n}net],
          timeout: 300, known_hosts: known_hosts}}
    floating_ips:
      - project: admin
        server: {n}vm
        network: {n}ext
        description: {n}fip
    """
    path = write_manifest(tmp_path, text)
    address = f"floating_ips.admin/{n}vm"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    server = one(connect().nova.servers.list(search_opts={"name": f"^{n}vm$"}))
    fip = one(f for f in sdk.ips() if f.description == f"{n}fip")
    assert MARKER in fip.tags
    assert fip.floating_network_id == one(sdk.networks(name=f"{n}ext")).id
    assert one(sdk.ports(device_id=server.id)).id == fip.port_id
    # The server's known_hosts has its floating address too, after this one apply.
    assert fip.floating_ip_address in (tmp_path / "known_hosts").read_text()
    assert_converged(path)

    sdk.update_ip(fip.id, description=f"{n}hand")
    drifted = changes(plan(path))
    assert list(drifted) == [address] and fields_of(drifted[address]) == ["description"]
    apply_ok(path)
    assert_converged(path)

    # With its address in the manifest, a floating IP detached out of band is adopted
    # and attached again, in place (no second address allocated).
    pinned = text.replace(
        f"description: {n}fip", f"description: {n}fip\n        address: {fip.floating_ip_address}"
    )
    pinned_path = write_manifest(tmp_path, pinned, "pinned.yaml")
    assert_converged(pinned_path)
    port_id = fip.port_id
    sdk.update_ip(fip.id, port_id=None)
    drifted = changes(plan(pinned_path))
    assert {a: (c.action.value, fields_of(c)) for a, c in drifted.items()} == {
        address: ("update", ["server"])
    }
    apply_ok(pinned_path)
    assert_converged(pinned_path)
    assert sdk.get_ip(fip.id).port_id == port_id

    gone = write_manifest(
        tmp_path,
        pinned.replace(
            "    floating_ips:\n      - project: admin\n",
            "    floating_ips:\n      - project: admin\n        state: absent\n",
        ),
        "absent.yaml",
    )
    removed = apply_ok(gone)
    assert removed.actions() == {address: "delete"}
    again = apply(gone)
    assert again.actions() == {} and again.writes == 0
    assert [f for f in sdk.ips() if f.id == fip.id] == []


def test_hundred_rules_and_a_refused_rule_set_is_reported(tmp_path, project, unique_name, sdk):
    """100 rules go in one bulk request; when Neutron refuses them (the project's rule
    quota, 100 by default, also counts the automatic rules) the apply says so: the group
    is not reported as created and converged."""
    sg = unique_name("sg")
    rules = "\n".join(f"          - {{protocol: tcp, port: {3000 + i}}}" for i in range(100))
    text = f"""
    projects:
      - name: {project}
    security_groups:
      - name: {sg}
        project: {project}
        rules:
{rules}
    """
    path = write_manifest(tmp_path, text)
    address = f"security_groups.{project}/{sg}"
    refused = apply(path)
    outcome = {str(a): r for a, r in refused.result.results.items()}[address]
    assert outcome.outcome == "failed"
    assert "Quota exceeded" in str(outcome.error) and "was created" in str(outcome.error)

    sdk.update_quota(project_id(project), security_group_rules=500)
    fixed = apply_ok(path)
    assert fixed.actions() == {address: "update"}
    assert fixed.writes == 1  # one bulk POST for the 100 rules
    group = one(sdk.security_groups(name=sg))
    assert len(list(sdk.security_group_rules(security_group_id=group.id))) == 102
    assert_converged(path)
