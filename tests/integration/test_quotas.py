"""quotas against the real local cloud: compute and network here, volume when the cloud
has Cinder (`-m cinder`, a separate test that fails without the block-storage service).

apply -> apply again (0 writes) -> out-of-band change with the client libraries, one
listed key and one unlisted key -> the plan shows exactly the listed one -> apply
converges and leaves the unlisted one alone -> state: absent puts the listed keys back to
the defaults -> absent again writes nothing.
"""

from __future__ import annotations

import contextlib
import secrets

import pytest

from bootstrap.drivers.quotas import VOLUME_TYPES, catalog_has
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest


@pytest.fixture
def n():
    return f"ck-{secrets.token_hex(3)}-"


@pytest.fixture
def cloud():
    return connect()


@pytest.fixture
def cleanup(n):
    yield
    c = connect()
    for p in c.keystone.projects.list():
        if p.name.startswith(n):
            # Quota records outlive their project in Nova and Neutron: removed first.
            with contextlib.suppress(Exception):
                c.nova.quotas.delete(p.id)
            with contextlib.suppress(Exception):
                c.network.delete(f"/quotas/{p.id}")
            if catalog_has(c, VOLUME_TYPES):
                with contextlib.suppress(Exception):
                    c.sdk.block_storage.delete(f"/os-quota-sets/{p.id}")
            with contextlib.suppress(Exception):
                c.keystone.projects.delete(p)


def ok(run) -> None:
    assert run.result is not None, "nothing was applied"
    assert run.result.ok, {str(r.address): repr(r.error) for r in run.result.failed}


def changes(p) -> dict[str, tuple[str, list[str]]]:
    return {
        str(c.address): (c.action.value, sorted(f.field for f in c.fields))
        for c in p.changes
        if c.is_change
    }


def project_id(cloud, name: str) -> str:
    (p,) = [p for p in cloud.keystone.projects.list() if p.name == name]
    return p.id


def network_quota(cloud, pid: str) -> dict:
    return cloud.network.get(f"/quotas/{pid}").json()["quota"]


QUOTAS = """
projects:
  - name: {n}proj
quotas:
  - project: {n}proj
    compute: {instances: 7, cores: 9, server_groups: 3}
    network: {router: 3, security_group: 12}
"""


@pytest.mark.lifecycle("quotas")
def test_quotas_lifecycle(tmp_path, n, cleanup, cloud):
    path = write_manifest(tmp_path, QUOTAS.replace("{n}", n))
    address = f"quotas.{n}proj"
    first = apply(path)
    ok(first)
    assert first.actions() == {f"projects.{n}proj": "create", address: "create"}
    assert_converged(path)

    pid = project_id(cloud, f"{n}proj")
    nova = cloud.nova
    defaults = nova.quotas.defaults(pid).to_dict()
    got = nova.quotas.get(pid).to_dict()
    assert (got["instances"], got["cores"], got["server_groups"]) == (7, 9, 3)
    assert got["ram"] == defaults["ram"]  # not listed: never written
    net = network_quota(cloud, pid)
    assert (net["router"], net["security_group"]) == (3, 12)

    # Out of band: a listed key and an unlisted one in each service.
    nova.quotas.update(pid, instances=8, ram=4321)
    cloud.network.put(f"/quotas/{pid}", json={"quota": {"router": 4, "port": 77}})
    drift = plan(path)
    assert changes(drift) == {address: ("update", ["compute.instances", "network.router"])}
    run = apply(path)
    ok(run)
    assert run.writes == 2  # one PUT per service, only the keys that differ
    assert_converged(path)
    got = nova.quotas.get(pid).to_dict()
    assert (got["instances"], got["ram"]) == (7, 4321)
    net = network_quota(cloud, pid)
    assert (net["router"], net["port"]) == (3, 77)

    # state: absent: the listed keys go back to the defaults, the unlisted ones stay.
    absent = write_manifest(
        tmp_path, QUOTAS.replace("{n}", n) + "    state: absent\n", "absent.yaml"
    )
    gone = apply(absent)
    ok(gone)
    assert gone.actions() == {address: "update"}
    got = nova.quotas.get(pid).to_dict()
    assert (got["instances"], got["cores"], got["server_groups"]) == (
        defaults["instances"],
        defaults["cores"],
        defaults["server_groups"],
    )
    assert got["ram"] == 4321
    net_defaults = cloud.network.get(f"/quotas/{pid}/default").json()["quota"]
    net = network_quota(cloud, pid)
    assert (net["router"], net["security_group"], net["port"]) == (
        net_defaults["router"],
        net_defaults["security_group"],
        77,
    )
    again = apply(absent)
    assert again.actions() == {} and again.writes == 0


def test_unknown_network_quota_key_is_a_plan_error(tmp_path, n, cleanup):
    """A key the schema knows but this cloud's Neutron does not (no trunk extension
    here) fails the plan, naming the keys the cloud has."""
    text = QUOTAS.replace("{n}", n).replace("router: 3,", "router: 3, trunk: 2,")
    path = write_manifest(tmp_path, text)
    ok(apply(write_manifest(tmp_path, QUOTAS.replace("{n}", n), "base.yaml")))
    from bootstrap.errors import PlanError

    with pytest.raises(PlanError, match="no network quota 'trunk'"):
        plan(path)


VOLUME_QUOTAS = """
projects:
  - name: {n}proj
quotas:
  - project: {n}proj
    volume: {volumes: 7, gigabytes: 70, snapshots: 5}
"""


@pytest.mark.cinder
@pytest.mark.lifecycle("quotas")
def test_volume_quotas_lifecycle(tmp_path, n, cleanup, cloud):
    if not catalog_has(cloud, VOLUME_TYPES):
        pytest.fail(
            "this cloud has no block-storage service (volumev3) in its catalog: the volume "
            "quota test needs Cinder",
            pytrace=False,
        )
    path = write_manifest(tmp_path, VOLUME_QUOTAS.replace("{n}", n))
    address = f"quotas.{n}proj"
    ok(apply(path))
    assert_converged(path)
    pid = project_id(cloud, f"{n}proj")
    block = cloud.sdk.block_storage
    got = block.get(f"/os-quota-sets/{pid}").json()["quota_set"]
    assert (got["volumes"], got["gigabytes"], got["snapshots"]) == (7, 70, 5)

    block.put(f"/os-quota-sets/{pid}", json={"quota_set": {"volumes": 9, "backups": 3}})
    assert changes(plan(path)) == {address: ("update", ["volume.volumes"])}
    ok(apply(path))
    assert_converged(path)
    got = block.get(f"/os-quota-sets/{pid}").json()["quota_set"]
    assert (got["volumes"], got["backups"]) == (7, 3)

    absent = write_manifest(
        tmp_path, VOLUME_QUOTAS.replace("{n}", n) + "    state: absent\n", "absent.yaml"
    )
    ok(apply(absent))
    defaults = block.get(f"/os-quota-sets/{pid}/defaults").json()["quota_set"]
    got = block.get(f"/os-quota-sets/{pid}").json()["quota_set"]
    assert got["volumes"] == defaults["volumes"] and got["backups"] == 3
    again = apply(absent)
    assert again.actions() == {} and again.writes == 0
