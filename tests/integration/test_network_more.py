"""Ports, network RBAC, router routes and floating IPs on ports against real Neutron.

For every kind: apply -> apply again (0 writes) -> change it out of band with
openstacksdk -> the plan shows exactly that drift -> apply converges -> state: absent.
Names carry this file's own prefix, `nk-<random>-`.
"""

from __future__ import annotations

import contextlib
import random
import secrets

import pytest

from bootstrap.errors import PlanError
from tests.integration.conftest import UniqueName
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest
from tests.integration.test_network_kinds import (
    MARKER,
    apply_ok,
    changes,
    fields_of,
    lifecycle_end,
    one,
    purge_project,
    vlan_id,
)
from tests.integration.test_network_kinds import compute_cleanup as compute_cleanup  # noqa: F401
from tests.integration.test_network_kinds import project as project  # noqa: F401
from tests.integration.test_network_kinds import sdk as sdk  # noqa: F401


@pytest.fixture
def unique_name():
    return UniqueName(f"nk-{secrets.token_hex(4)}-")


def drop_ports(prefix: str) -> None:
    """Ports under the test's prefix: they block their network's deletion."""
    net = connect().network
    for p in net.ports():
        if (p.name or "").startswith(prefix):
            with contextlib.suppress(Exception):
                net.delete_port(p)


@pytest.fixture
def port_cleanup(unique_name):
    yield
    drop_ports(unique_name)


# --- ports ------------------------------------------------------------------------------


def port_manifest(project: str, n: str, o: int, ports: int = 1) -> str:
    extra = "".join(
        f"  - {{name: {n}extra{i}, project: {project}, network: {n}net}}\n"
        for i in range(ports - 1)
    )
    return f"""
projects:
  - name: {project}
networks:
  - {{name: {n}net, project: {project}}}
subnets:
  - {{name: {n}sub, project: {project}, network: {n}net, cidr: 10.81.{o}.0/24}}
security_groups:
  - {{name: {n}web, project: {project}}}
  - {{name: {n}db, project: {project}}}
ports:
  - name: {n}vip
    project: {project}
    network: {n}net
    description: vip
    fixed_ips: [{{subnet: {n}sub, ip_address: 10.81.{o}.10}}, {{subnet: {n}sub}}]
    security_groups: [{n}web]
    allowed_address_pairs: [{{ip_address: 10.81.{o}.200/32}}]
    port_security_enabled: true
    vnic_type: normal
    tags: [vip]
{extra}"""


@pytest.mark.lifecycle("ports")
def test_port_lifecycle(tmp_path, project, unique_name, sdk, port_cleanup):
    n, o = unique_name, random.randint(0, 255)
    text = port_manifest(project, n, o)
    path = write_manifest(tmp_path, text)
    address = f"ports.{project}/{n}vip"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    port = one(sdk.ports(name=f"{n}vip"))
    assert {MARKER, "vip"} <= set(port.tags)
    assert sorted(f["ip_address"] for f in port.fixed_ips)[0] == f"10.81.{o}.10"
    assert len(port.fixed_ips) == 2
    web = one(sdk.security_groups(name=f"{n}web"))
    db = one(sdk.security_groups(name=f"{n}db"))
    assert port.security_group_ids == [web.id]
    # Neutron filled in the pair's MAC with the port's own, and kept the /32 as written
    # or as an address: neither is drift.
    assert port.allowed_address_pairs[0]["mac_address"] == port.mac_address
    assert_converged(path)

    # Reading cost: one ports list whatever the number of ports (a manifest with three
    # ports, two of them not created yet, reads with as many requests).
    more = write_manifest(tmp_path, port_manifest(project, n, o, ports=3), "more.yaml")
    assert plan(more).requests == plan(path).requests

    # Out of band: another group, the pair dropped, a tag added, the description.
    sdk.update_port(
        port, security_group_ids=[web.id, db.id], allowed_address_pairs=[], description="hand"
    )
    sdk.add_tag(port, "hand")
    drifted = changes(plan(path))
    assert list(drifted) == [address]
    assert drifted[address].action.value == "update"
    assert not drifted[address].destructive
    assert fields_of(drifted[address]) == [
        "allowed_address_pairs",
        "description",
        "security_groups",
        "tags",
    ]
    fixed = apply_ok(path)
    assert fixed.writes == 2  # the tag DELETE and one port PUT
    assert_converged(path)
    port = sdk.get_port(port.id)
    assert port.security_group_ids == [web.id] and "hand" not in port.tags
    assert len(port.fixed_ips) == 2  # the address Neutron picked was kept

    # A new pinned address: an in-place, destructive update, held back without permission.
    moved = text.replace(f"10.81.{o}.10", f"10.81.{o}.11")
    moved_path = write_manifest(tmp_path, moved, "moved.yaml")
    held = apply(moved_path)
    assert held.plan.changes and changes(held.plan)[address].destructive
    assert held.writes == 0
    apply_ok(moved_path, allow_destroy=True)
    assert_converged(moved_path)
    assert f"10.81.{o}.11" in {f["ip_address"] for f in sdk.get_port(port.id).fixed_ips}

    lifecycle_end(tmp_path, moved, "ports", f"{n}vip", address)
    assert list(sdk.ports(name=f"{n}vip")) == []


# --- network RBAC -----------------------------------------------------------------------


@pytest.mark.lifecycle("network_rbac")
def test_network_rbac_lifecycle(tmp_path, project, unique_name, sdk):
    n = unique_name
    peer = f"{n}peer"
    text = f"""
projects:
  - name: {project}
  - name: {peer}
networks:
  - {{name: {n}net, project: {project}}}
  - name: {n}ext
    project: {project}
    provider: {{network_type: vlan, physical_network: public, segmentation_id: {vlan_id()}}}
network_rbac:
  - {{network: {n}net, target_project: {peer}}}
  - {{network: {n}ext, target_project: {peer}, action: access_as_external}}
"""
    try:
        path = write_manifest(tmp_path, text)
        shared = f"network_rbac.{project}/{n}net/{peer}/access_as_shared"
        external = f"network_rbac.{project}/{n}ext/{peer}/access_as_external"
        first = apply_ok(path)
        assert first.actions()[shared] == "create"
        assert first.actions()[external] == "create"
        peer_id = one(p for p in connect().keystone.projects.list() if p.name == peer).id
        net = one(sdk.networks(name=f"{n}net"))
        policy = one(sdk.rbac_policies(object_id=net.id, target_project_id=peer_id))
        assert policy.action == "access_as_shared"
        ext = one(sdk.networks(name=f"{n}ext"))
        assert one(sdk.rbac_policies(object_id=ext.id)).action == "access_as_external"
        assert_converged(path)

        # Out of band: the share withdrawn. The plan shows exactly it.
        sdk.delete_rbac_policy(policy)
        drifted = changes(plan(path))
        assert {a: c.action.value for a, c in drifted.items()} == {shared: "create"}
        fixed = apply_ok(path)
        assert fixed.writes == 1
        assert_converged(path)

        gone = write_manifest(
            tmp_path,
            text.replace(
                f"  - {{network: {n}net, target_project: {peer}}}",
                f"  - {{network: {n}net, target_project: {peer}, state: absent}}",
            ),
            "absent.yaml",
        )
        removed = apply_ok(gone)
        assert removed.actions() == {shared: "delete"}
        again = apply(gone)
        assert again.actions() == {} and again.writes == 0
        assert list(sdk.rbac_policies(object_id=net.id, target_project_id=peer_id)) == []
    finally:
        purge_project(peer)


# --- router routes ----------------------------------------------------------------------


@pytest.mark.lifecycle("routers")
def test_router_routes(tmp_path, project, unique_name, sdk):
    n, o = unique_name, random.randint(0, 255)
    text = f"""
projects:
  - name: {project}
networks:
  - {{name: {n}net, project: {project}}}
subnets:
  - {{name: {n}sub, project: {project}, network: {n}net, cidr: 10.82.{o}.0/24}}
routers:
  - name: {n}router
    project: {project}
    interfaces: [{n}sub]
    routes:
      - {{destination: 192.168.{o}.0/24, nexthop: 10.82.{o}.5}}
      - {{destination: 172.30.{o}.0/24, nexthop: 10.82.{o}.6}}
"""
    path = write_manifest(tmp_path, text)
    address = f"routers.{project}/{n}router"
    first = apply_ok(path)
    assert first.actions()[address] == "create"
    r = one(sdk.routers(name=f"{n}router"))
    assert sorted(x["destination"] for x in r.routes) == [
        f"172.30.{o}.0/24",
        f"192.168.{o}.0/24",
    ]
    assert_converged(path)

    # Out of band: one route added, one removed.
    sdk.add_extra_routes_to_router(
        r, {"router": {"routes": [{"destination": f"172.31.{o}.0/24", "nexthop": f"10.82.{o}.7"}]}}
    )
    sdk.remove_extra_routes_from_router(
        r, {"router": {"routes": [{"destination": f"192.168.{o}.0/24", "nexthop": f"10.82.{o}.5"}]}}
    )
    drifted = changes(plan(path))
    assert list(drifted) == [address] and fields_of(drifted[address]) == ["routes"]
    fixed = apply_ok(path)
    assert fixed.writes == 2  # one remove_extraroutes, one add_extraroutes
    assert_converged(path)
    assert len(sdk.get_router(r.id).routes) == 2

    # routes: [] removes them all; then the router goes.
    none = text.split("    routes:")[0] + "    routes: []\n"
    none_path = write_manifest(tmp_path, none, "none.yaml")
    apply_ok(none_path)
    assert_converged(none_path)
    assert sdk.get_router(r.id).routes == []
    lifecycle_end(tmp_path, none, "routers", f"{n}router", address)


# --- floating IPs: re-association, ports ------------------------------------------------


@pytest.mark.lifecycle("floating_ips")
def test_detached_floating_ips_are_reattached_not_reallocated(
    tmp_path, unique_name, sdk, compute_cleanup, port_cleanup
):
    """A server attached by port, a floating IP on it and one on a VIP port; both
    detached out of band: the plan re-attaches the same addresses in place."""
    n, o = unique_name, random.randint(0, 255)
    (tmp_path / "disk.raw").write_bytes(bytes(4096) + n.encode() + bytes(4096))
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
  - {{name: {n}ext-sub, project: admin, network: {n}ext, cidr: 198.18.{o}.0/24,
      enable_dhcp: false}}
  - {{name: {n}sub, project: admin, network: {n}net, cidr: 10.83.{o}.0/24}}
routers:
  - name: {n}router
    project: admin
    external_gateway: {{network: {n}ext}}
    interfaces: [{n}sub]
ports:
  - {{name: {n}nic, project: admin, network: {n}net,
      fixed_ips: [{{subnet: {n}sub, ip_address: 10.83.{o}.20}}]}}
  - {{name: {n}vip, project: admin, network: {n}net, fixed_ips: [{{subnet: {n}sub}}]}}
servers:
  - {{name: {n}vm, project: admin, image: {n}img, flavor: {n}tiny,
      networks: [{{port: {n}nic}}], timeout: 300}}
floating_ips:
  - {{project: admin, server: {n}vm, network: {n}ext, description: {n}fip-vm}}
  - {{project: admin, port: {n}vip, network: {n}ext, description: {n}fip-vip}}
"""
    path = write_manifest(tmp_path, text)
    on_server = f"floating_ips.admin/{n}vm"
    on_port = f"floating_ips.admin/port:{n}vip"
    first = apply_ok(path)
    assert first.actions()[on_server] == "create"
    assert first.actions()[on_port] == "create"
    nic = one(sdk.ports(name=f"{n}nic"))
    vip = one(sdk.ports(name=f"{n}vip"))
    server = one(connect().nova.servers.list(search_opts={"name": f"^{n}vm$"}))
    assert nic.device_id == server.id  # the server uses the port made beforehand

    def ours():
        return {f.description: f for f in sdk.ips() if (f.description or "").startswith(n)}

    fips = ours()
    assert fips[f"{n}fip-vm"].port_id == nic.id
    assert fips[f"{n}fip-vip"].port_id == vip.id
    assert f"server:{server.id}" in fips[f"{n}fip-vm"].tags
    assert f"port:{vip.id}" in fips[f"{n}fip-vip"].tags
    assert_converged(path)

    # Out of band: both detached. Planned as re-attachments, not new allocations.
    for f in fips.values():
        sdk.update_ip(f.id, port_id=None)
    drifted = changes(plan(path))
    assert {a: (c.action.value, fields_of(c)) for a, c in drifted.items()} == {
        on_server: ("update", ["server"]),
        on_port: ("update", ["port"]),
    }
    apply_ok(path)
    assert_converged(path)
    after = ours()
    assert {k: f.id for k, f in after.items()} == {k: f.id for k, f in fips.items()}
    assert {k: f.floating_ip_address for k, f in after.items()} == {
        k: f.floating_ip_address for k, f in fips.items()
    }
    assert after[f"{n}fip-vm"].port_id == nic.id and after[f"{n}fip-vip"].port_id == vip.id

    # state: absent: the port's floating IP goes, the address is released.
    gone = write_manifest(
        tmp_path,
        text.replace(
            f"  - {{project: admin, port: {n}vip,",
            f"  - {{state: absent, project: admin, port: {n}vip,",
        ),
        "absent.yaml",
    )
    removed = apply_ok(gone)
    assert removed.actions() == {on_port: "delete"}
    again = apply(gone)
    assert again.actions() == {} and again.writes == 0
    assert set(ours()) == {f"{n}fip-vm"}


# --- a deleted project's ports --------------------------------------------------------


def test_deleting_a_project_deletes_its_ports_and_a_foreign_port_blocks(
    tmp_path, project, unique_name, sdk, port_cleanup
):
    """Ports are read when a project is deleted: the stack's go first, in order; one made
    by someone else with no device stops the plan, before any write."""
    n, o = unique_name, random.randint(0, 255)
    text = f"""
stack: {n}s
projects:
  - name: {project}
networks:
  - {{name: {n}net, project: {project}}}
subnets:
  - {{name: {n}sub, project: {project}, network: {n}net, cidr: 10.84.{o}.0/24}}
ports:
  - {{name: {n}vip, project: {project}, network: {n}net}}
"""
    apply_ok(write_manifest(tmp_path, text))
    gone = write_manifest(
        tmp_path, f"stack: {n}s\nprojects:\n  - {{name: {project}, state: absent}}\n", "gone.yaml"
    )
    net = one(sdk.networks(name=f"{n}net"))
    foreign = sdk.create_port(name=f"{n}foreign", network_id=net.id, project_id=net.project_id)
    with pytest.raises(
        PlanError, match=f"cannot delete projects.{project}: it holds port '{n}foreign'"
    ):
        plan(gone)
    sdk.delete_port(foreign)
    inside = f"in projects.{project}, which is deleted"
    the_plan = plan(gone)
    reasons = {str(c.address): c.reason for c in the_plan.changes if c.is_change}
    assert reasons[f"ports.{project}/{n}vip"] == inside
    assert reasons[f"networks.{project}/{n}net"] == inside
    # The DHCP port Neutron made on the subnet goes with its network: not in the plan.
    assert not [a for a in reasons if a.startswith("ports.") and a != f"ports.{project}/{n}vip"]
    run = apply_ok(gone)
    done = [str(a) for a in run.result.results if run.result.results[a].outcome == "deleted"]
    assert done.index(f"ports.{project}/{n}vip") < done.index(f"networks.{project}/{n}net")
    assert done[-1] == f"projects.{project}"
    assert list(sdk.ports(network_id=net.id)) == []
