"""volume_types and volumes against the real local cloud (devcloud with Cinder).

Per kind: apply -> apply again (0 writes, 0 changes) -> change it out of band with
openstacksdk's block-storage proxy -> the plan shows exactly that drift -> apply converges
-> state: absent -> apply twice. Volumes also: a bigger size is an in-place extend, a
smaller one is refused at plan time, another type is a destructive replace held back
without --allow-destroy.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from bootstrap.errors import PlanError
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest


def manifest(tmp_path: Path, n: str, text: str, name: str = "manifest.yaml") -> str:
    return write_manifest(tmp_path, text.replace("{n}", n), name)


def changes(p) -> dict[str, tuple[str, list[str]]]:
    return {
        str(c.address): (c.action.value, sorted(f.field for f in c.fields))
        for c in p.changes
        if c.is_change
    }


def ok(run) -> None:
    assert run.result is not None, "nothing was applied"
    failed = {str(r.address): repr(r.error) for r in run.result.failed}
    assert run.result.ok, failed


def one(items):
    items = list(items)
    assert len(items) == 1, items
    return items[0]


@pytest.fixture
def cloud():
    return connect()


@pytest.fixture
def cleanup(unique_name):
    """Delete what a test left behind under its unique prefix (volumes before types)."""
    yield
    c = connect()
    bs, n = c.block_storage, unique_name
    servers = [s for s in c.nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{n}"})]
    for s in servers:
        with contextlib.suppress(Exception):
            c.nova.servers.delete(s.id)
    deadline = time.monotonic() + 120
    while servers and time.monotonic() < deadline:
        live = {s.id for s in c.nova.servers.list(search_opts={"all_tenants": 1})}
        servers = [s for s in servers if s.id in live]
        time.sleep(1)
    volumes = [v for v in bs.volumes(all_projects=True) if (v.name or "").startswith(n)]
    for v in volumes:
        with contextlib.suppress(Exception):
            bs.delete_volume(v.id)
    deadline = time.monotonic() + 120
    while volumes and time.monotonic() < deadline:
        live = {v.id for v in bs.volumes(all_projects=True)}
        volumes = [v for v in volumes if v.id in live]
        time.sleep(1)
    for t in bs.types(is_public="None"):
        if t.name.startswith(n):
            with contextlib.suppress(Exception):
                bs.delete_type(t.id)
    ks = c.keystone
    for p in ks.projects.list():
        if p.name.startswith(n):
            with contextlib.suppress(Exception):
                ks.projects.delete(p.id)
    for f in c.nova.flavors.list(is_public=None):
        if f.name.startswith(n):
            with contextlib.suppress(Exception):
                f.delete()
    for network in c.network.networks():
        if network.name.startswith(n):
            with contextlib.suppress(Exception):
                c.network.delete_network(network)
    for img in c.glance.images.list(filters={"visibility": "all"}):
        if (img.get("name") or "").startswith(n):
            with contextlib.suppress(Exception):
                c.glance.images.delete(img["id"])


# --- volume types ----------------------------------------------------------------------

TYPES = """
projects:
  - name: {n}proj
volume_types:
  - name: {n}gold
    description: first
    is_public: false
    extra_specs: {volume_backend_name: devcloud-file}
    access: [{n}proj]
"""


@pytest.mark.lifecycle("volume_types")
def test_volume_types_lifecycle(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    path = manifest(tmp_path, n, TYPES)
    address = f"volume_types.{n}gold"
    first = apply(path)
    ok(first)
    assert first.actions() == {f"projects.{n}proj": "create", address: "create"}
    assert_converged(path)

    bs = cloud.block_storage
    vtype = one(t for t in bs.types(is_public="None") if t.name == f"{n}gold")
    assert (vtype.description, vtype.is_public) == ("first", False)
    assert vtype.extra_specs == {"volume_backend_name": "devcloud-file"}
    project = one(cloud.keystone.projects.list(name=f"{n}proj"))
    assert [a["project_id"] for a in bs.get_type_access(vtype.id)] == [project.id]

    # Out of band: an extra spec, the description, the access list.
    bs.update_type_extra_specs(vtype.id, **{"by:hand": "x"})
    bs.put(f"/types/{vtype.id}", json={"volume_type": {"description": "by hand"}})
    bs.remove_type_access(vtype.id, project.id)
    assert changes(plan(path)) == {address: ("update", ["access", "description", "extra_specs"])}
    ok(apply(path))
    assert_converged(path)
    vtype = bs.get_type(vtype.id)
    assert vtype.extra_specs == {"volume_backend_name": "devcloud-file"}
    assert vtype.description == "first"
    assert [a["project_id"] for a in bs.get_type_access(vtype.id)] == [project.id]

    # Visibility changes in place: the same type, now public.
    public = manifest(
        tmp_path,
        n,
        TYPES.replace("is_public: false", "is_public: true").replace("    access: [{n}proj]\n", ""),
        "public.yaml",
    )
    drifted = one(c for c in plan(public).changes if c.is_change)
    assert (drifted.action.value, [f.field for f in drifted.fields]) == ("update", ["is_public"])
    ok(apply(public))
    assert_converged(public)
    assert bs.get_type(vtype.id).is_public is True

    absent = manifest(
        tmp_path,
        n,
        TYPES.replace("    access: [{n}proj]\n", "").replace("is_public: false", "is_public: true")
        + "    state: absent\n",
        "absent.yaml",
    )
    run = apply(absent)
    ok(run)
    assert run.actions() == {address: "delete"}
    assert not [t for t in bs.types(is_public="None") if t.name == f"{n}gold"]
    again = apply(absent)
    assert again.actions() == {} and again.writes == 0


# --- volumes ---------------------------------------------------------------------------

VOLUMES = """
projects:
  - name: admin
images:
  - name: {n}img
    source: {file: disk.raw}
    disk_format: raw
    container_format: bare
volume_types:
  - name: {n}fast
    extra_specs: {volume_backend_name: devcloud-file}
  - name: {n}slow
volumes:
  - name: {n}data
    project: admin
    size: 1
    volume_type: {n}fast
    description: first
    metadata: {role: db}
  - name: {n}boot
    project: admin
    size: 1
    image: {n}img
    bootable: true
"""


def live_volume(cloud, name):
    return one(v for v in cloud.block_storage.volumes(all_projects=True) if v.name == name)


@pytest.mark.lifecycle("volumes")
def test_volumes_lifecycle(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    disk = bytearray(1 << 20)
    disk[4096 : 4096 + len(n)] = n.encode()
    (tmp_path / "disk.raw").write_bytes(bytes(disk))
    path = manifest(tmp_path, n, VOLUMES)
    data, boot = f"volumes.admin/{n}data", f"volumes.admin/{n}boot"
    first = apply(path)
    ok(first)
    assert first.actions() == {
        f"images.{n}img": "create",
        f"volume_types.{n}fast": "create",
        f"volume_types.{n}slow": "create",
        data: "create",
        boot: "create",
    }
    assert_converged(path)

    bs = cloud.block_storage
    fast = one(t for t in bs.types() if t.name == f"{n}fast")
    vol = live_volume(cloud, f"{n}data")
    assert (vol.status, vol.size, vol.volume_type, vol.description) == (
        "available",
        1,
        f"{n}fast",
        "first",
    )
    assert vol.volume_type_id == fast.id
    assert vol.metadata == {"role": "db", "managed_by": "openstack-bootstrap"}
    image = one(cloud.glance.images.list(filters={"name": f"{n}img"}))
    booted = live_volume(cloud, f"{n}boot")
    assert booted.is_bootable and booted.volume_image_metadata["image_id"] == image["id"]

    # Out of band: metadata by hand and another description.
    bs.set_volume_metadata(vol.id, by="hand")
    bs.update_volume(vol.id, description="by hand")
    assert changes(plan(path)) == {data: ("update", ["description", "metadata"])}
    ok(apply(path))
    assert_converged(path)
    vol = bs.get_volume(vol.id)
    assert vol.metadata == {"role": "db", "managed_by": "openstack-bootstrap"}
    assert vol.description == "first"

    # Growth is an extend of the same volume, not destructive.
    bigger_text = VOLUMES.replace("size: 1\n    volume_type", "size: 2\n    volume_type")
    bigger = manifest(tmp_path, n, bigger_text, "bigger.yaml")
    grow = one(c for c in plan(bigger).changes if c.is_change)
    assert (grow.action.value, grow.destructive, [f.field for f in grow.fields]) == (
        "update",
        False,
        ["size"],
    )
    ok(apply(bigger))
    assert bs.get_volume(vol.id).size == 2
    assert_converged(bigger)

    # Shrinking is refused before anything is written.
    with pytest.raises(PlanError, match="Cinder cannot shrink a volume"):
        plan(path)

    # Another type is a new volume: held back without --allow-destroy, then replaced.
    retyped_text = bigger_text.replace("volume_type: {n}fast", "volume_type: {n}slow")
    retyped = manifest(tmp_path, n, retyped_text, "retyped.yaml")
    change = one(c for c in plan(retyped).changes if c.is_change)
    assert (change.action.value, change.destructive) == ("replace", True)
    held = apply(retyped)
    assert held.writes == 0 and bs.get_volume(vol.id).status == "available"
    ok(apply(retyped, allow_destroy=True))
    new = live_volume(cloud, f"{n}data")
    assert new.id != vol.id and new.volume_type == f"{n}slow" and new.size == 2
    assert_converged(retyped)

    absent_text = retyped_text.replace(
        "    metadata: {role: db}\n", "    metadata: {role: db}\n    state: absent\n"
    )
    absent_text = absent_text.replace(
        "    bootable: true\n", "    bootable: true\n    state: absent\n"
    )
    absent = manifest(tmp_path, n, absent_text, "absent.yaml")
    run = apply(absent)
    ok(run)
    assert run.actions() == {data: "delete", boot: "delete"}
    assert not [v for v in bs.volumes(all_projects=True) if v.name.startswith(n)]
    again = apply(absent)
    assert again.actions() == {} and again.writes == 0


def test_noop_volume_plan_costs_the_same_for_one_or_three_volumes(tmp_path, unique_name, cleanup):
    n = unique_name
    head = (
        "projects:\n  - name: admin\nvolume_types:\n  - {name: {n}t1, is_public: false, "
        "access: [admin]}\n  - {name: {n}t2}\nvolumes:\n"
    )
    item = "  - {name: {n}v%d, project: admin, size: 1, volume_type: {n}t2, metadata: {i: '%d'}}\n"
    one_path = manifest(tmp_path, n, head + item % (0, 0), "one.yaml")
    three_path = manifest(tmp_path, n, head + "".join(item % (i, i) for i in range(3)), "3.yaml")
    ok(apply(three_path))
    assert_converged(three_path)
    one_plan, three_plan = plan(one_path), plan(three_path)
    assert not [c for c in three_plan.changes if c.is_change]
    # Reading is one list per kind (+ one access GET for the private type whose access is
    # managed), whatever the number of volumes.
    assert three_plan.requests == one_plan.requests, (one_plan.requests, three_plan.requests)
    print(f"\n[volumes] no-op plan of 2 volume types and 3 volumes: {three_plan.requests} requests")


ATTACHED = """
projects:
  - name: admin
images:
  - name: {n}img
    source: {file: disk.raw}
    disk_format: raw
    container_format: bare
flavors:
  - {name: {n}tiny, vcpus: 1, ram: 64, disk: 1}
networks:
  - {name: {n}net, project: admin}
subnets:
  - {name: {n}sub, project: admin, network: {n}net, cidr: 10.77.0.0/24}
volumes:
  - {name: {n}root, project: admin, size: 1, image: {n}img}
  - {name: {n}data, project: admin, size: 1}
  - {name: {n}logs, project: admin, size: 1}
servers:
  - name: {n}vm
    project: admin
    boot_volume: {n}root
    flavor: {n}tiny
    networks: [{n}net]
    volumes: [{n}data, {n}logs]
"""


def test_server_boots_from_a_volume_and_attaches_volumes_in_order(tmp_path, unique_name, cleanup):
    n = unique_name
    (tmp_path / "disk.raw").write_bytes(bytes(1 << 20))
    path = manifest(tmp_path, n, ATTACHED)
    ok(apply(path))
    assert_converged(path)
    c = connect()
    server = one(c.nova.servers.list(search_opts={"name": f"^{n}vm$"}))
    root, data, logs = (live_volume(c, f"{n}{v}") for v in ("root", "data", "logs"))
    assert not server.image  # booted from the volume
    attached = c.nova.volumes.get_server_volumes(server.id)
    # Nova names devices in attach order: the root volume, then the declared order.
    by_device = [a.volumeId for a in sorted(attached, key=lambda a: a.device)]
    assert by_device == [root.id, data.id, logs.id]
    assert {c.block_storage.get_volume(v.id).status for v in (root, data, logs)} == {"in-use"}

    # Out of band: one detached by hand is drift of the server, attached again.
    c.nova.volumes.delete_server_volume(server.id, logs.id)
    deadline = time.monotonic() + 120
    while c.block_storage.get_volume(logs.id).status != "available":
        assert time.monotonic() < deadline, "the volume was not detached"
        time.sleep(1)
    assert changes(plan(path)) == {f"servers.admin/{n}vm": ("update", ["volumes"])}
    ok(apply(path))
    assert_converged(path)
    assert c.block_storage.get_volume(logs.id).status == "in-use"
