"""images, flavors, keypairs and servers against the real local cloud (devcloud).

Per kind: apply -> apply again (0 writes, 0 changes) -> change it out of band with the
client library -> the plan shows exactly that drift -> apply converges -> state: absent
-> apply twice. Plus: a destructive change is held back without --allow-destroy and
changes nothing; known_hosts gets the keys the console log shows; a no-op plan costs the
same requests for 1 or 4 servers.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from bootstrap.drivers import _glance, _nova
from bootstrap.errors import Forbidden, ResourceFailed
from bootstrap.known_hosts import extract_host_keys, missing_addresses, read_text
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest

FILES = Path(__file__).resolve().parents[2] / "manifests" / "files"
PUBKEY = (FILES / "id_ed25519.pub").read_text().strip()
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRr/3rovB2VgDJFSg5AoPKKjhM/O7SPkoCGwNntnq5c other"


# --- helpers ---------------------------------------------------------------------------


def raw_disk(path: Path, tag: str, size: int = 1 << 20) -> Path:
    """A small image that really is raw (Glance inspects raw uploads): zeros plus a tag."""
    data = bytearray(size)
    data[4096 : 4096 + len(tag)] = tag.encode()
    path.write_bytes(bytes(data))
    return path


def sha(path: Path, algo: str) -> str:
    return hashlib.new(algo, path.read_bytes()).hexdigest()


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


def absent_twice(path: str, address: str) -> None:
    run = apply(path)
    ok(run)
    assert run.actions() == {address: "delete"}
    again = apply(path)
    assert again.actions() == {} and again.writes == 0


def one(items):
    items = list(items)
    assert len(items) == 1, items
    return items[0]


@pytest.fixture
def cloud():
    return connect()


@pytest.fixture
def cleanup(unique_name):
    """Delete whatever a test left behind under its unique prefix (servers first)."""
    yield
    c = connect()
    n = unique_name
    nova, glance, net = c.nova, c.glance, c.network
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
    for img in glance.images.list(filters={"visibility": "all"}):
        if (img.get("name") or "").startswith(n):
            with contextlib.suppress(Exception):
                if img.get("protected"):
                    glance.images.update(img["id"], protected=False)
                glance.images.delete(img["id"])
    for f in nova.flavors.list(is_public=None):
        if f.name.startswith(n):
            with contextlib.suppress(Exception):
                f.delete()
    for k in nova.keypairs.list():
        if k.name.startswith(n):
            with contextlib.suppress(Exception):
                nova.keypairs.delete(k.name)
    for r in net.routers():
        if r.name.startswith(n):
            with contextlib.suppress(Exception):
                for p in net.ports(device_id=r.id):
                    if p.device_owner == "network:router_interface":
                        net.remove_interface_from_router(r, port_id=p.id)
                net.delete_router(r)
    for network in net.networks():
        if network.name.startswith(n):
            for p in net.ports(network_id=network.id):
                with contextlib.suppress(Exception):
                    net.delete_port(p)
            with contextlib.suppress(Exception):
                net.delete_network(network)
    for sg in net.security_groups():
        if sg.name.startswith(n):
            with contextlib.suppress(Exception):
                net.delete_security_group(sg)
    ks = c.keystone
    for u in ks.users.list():
        if u.name.startswith(n):
            with contextlib.suppress(Exception):
                for k in nova.keypairs.list(user_id=u.id):
                    nova.keypairs.delete(k.name, user_id=u.id)
                ks.users.delete(u)
    for p in ks.projects.list():
        if p.name.startswith(n):
            with contextlib.suppress(Exception):
                ks.projects.delete(p)


# --- images ----------------------------------------------------------------------------

IMAGE = """
images:
  - name: {n}img
    source: {file: disk.raw}
    disk_format: raw
    container_format: bare
    visibility: private
    min_ram: 64
    properties: {os_distro: cirros, hw_qemu_guest_agent: true}
    tags: [b, a]
"""


@pytest.mark.lifecycle("images")
def test_images_lifecycle(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    disk = raw_disk(tmp_path / "disk.raw", n)
    path = manifest(tmp_path, n, IMAGE)
    address = f"images.{n}img"

    first = apply(path)
    ok(first)
    assert first.actions() == {address: "create"}
    image = one(i for i in cloud.glance.images.list() if i["name"] == f"{n}img")
    assert image["os_hash_value"] == sha(disk, "sha512")
    assert image[_glance.MARKER_PROP] == _glance.MARKER_VALUE
    assert image["hw_qemu_guest_agent"] == "true"
    assert_converged(path)

    # Out of band: a property, a tag and min_ram.
    cloud.glance.images.update(image["id"], added_by_hand="x", min_ram=128)
    cloud.glance.image_tags.update(image["id"], "hand")
    assert changes(plan(path)) == {address: ("update", ["min_ram", "properties", "tags"])}
    ok(apply(path))
    assert_converged(path)
    live = cloud.glance.images.get(image["id"])
    assert "added_by_hand" not in live and sorted(live["tags"]) == ["a", "b"]

    # New data under the same name: a replace, held back without --allow-destroy.
    raw_disk(disk, n + "-v2")
    drifted = plan(path)
    change = one(c for c in drifted.changes if c.is_change)
    assert change.action.value == "replace" and change.destructive
    assert "data differs" in change.reason
    held = apply(path)
    assert [str(r.address) for r in held.result.held] == [address] and held.writes == 0
    assert cloud.glance.images.get(image["id"])["status"] == "active"  # untouched
    ok(apply(path, allow_destroy=True))
    new = one(i for i in cloud.glance.images.list() if i["name"] == f"{n}img")
    assert new["id"] != image["id"] and new["os_hash_value"] == sha(disk, "sha512")
    assert_converged(path)

    absent = manifest(tmp_path, n, IMAGE + "    state: absent\n", "absent.yaml")
    absent_twice(absent, address)
    assert not [i for i in cloud.glance.images.list() if i["name"] == f"{n}img"]


def test_image_uploaded_by_openstacksdk_is_adopted(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    disk = raw_disk(tmp_path / "disk.raw", n)
    cloud.sdk.image.create_image(
        f"{n}sdk",
        filename=str(disk),
        disk_format="raw",
        container_format="bare",
        wait=True,
        validate_checksum=True,  # what makes openstacksdk record the sha256
    )
    sdk_image = one(i for i in cloud.glance.images.list() if i["name"] == f"{n}sdk")
    assert sdk_image.get(_glance.SDK_SHA256) == sha(disk, "sha256")
    by_file = manifest(
        tmp_path,
        n,
        """
        images:
          - name: {n}sdk
            source: {file: disk.raw}
            disk_format: raw
            container_format: bare
        """,
    )
    assert changes(plan(by_file)) == {}
    run = apply(by_file)
    assert run.actions() == {} and run.writes == 0
    # A sha256 checksum decides through openstacksdk's property, without hashing the file.
    by_checksum = manifest(
        tmp_path,
        n,
        f"""
        images:
          - name: {{n}}sdk
            source: {{file: disk.raw}}
            checksum: {sha(disk, "sha256").upper()}
        """,
        "checksum.yaml",
    )
    assert changes(plan(by_checksum)) == {}
    assert cloud.glance.images.get(sdk_image["id"])["status"] == "active"


class _Counting(http.server.SimpleHTTPRequestHandler):
    downloads = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).downloads += 1
        super().do_GET()

    def log_message(self, *args):
        pass


def test_url_source_is_not_downloaded_by_plans(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    served = tmp_path / "www"
    served.mkdir()
    disk = raw_disk(served / "disk.raw", n)
    handler = type("Handler", (_Counting,), {"downloads": 0})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        lambda *a, **kw: handler(*a, directory=str(served), **kw),
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/disk.raw"
    try:
        path = manifest(
            tmp_path,
            n,
            f"""
            images:
              - name: {{n}}url
                source: {{url: "{url}"}}
                disk_format: raw
                container_format: bare
              - name: {{n}}sum
                source: {{url: "{url}"}}
                checksum: {sha(disk, "sha512")}
                disk_format: raw
                container_format: bare
            """,
        )
        ok(apply(path))
        assert handler.downloads == 2
        assert_converged(path)
        assert changes(plan(path)) == {}
        assert handler.downloads == 2  # plans compared digests, never downloaded
        live = {i["name"]: i for i in cloud.glance.images.list() if i["name"].startswith(n)}
        assert live[f"{n}url"][_glance.URL_PROP] == _glance.url_digest(url)
        assert live[f"{n}sum"]["os_hash_value"] == sha(disk, "sha512")
        assert _glance.URL_PROP not in live[f"{n}sum"]  # the checksum is the identity
    finally:
        server.shutdown()


def test_wrong_checksum_fails_and_leaves_no_image(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    raw_disk(tmp_path / "disk.raw", n)
    path = manifest(
        tmp_path,
        n,
        """
        images:
          - name: {n}bad
            source: {file: disk.raw}
            checksum: %s
            disk_format: raw
        """
        % ("ab" * 64),
    )
    run = apply(path)
    (failure,) = run.result.failed
    assert isinstance(failure.error, ResourceFailed)
    assert "does not match checksum" in str(failure.error)
    assert not [i for i in cloud.glance.images.list() if i["name"] == f"{n}bad"]


# --- flavors ---------------------------------------------------------------------------

FLAVORS = """
projects:
  - name: {n}proj
flavors:
  - name: {n}small
    id: "{n}id-1"
    vcpus: 1
    ram: 64
    disk: 1
    is_public: false
    description: first
    extra_specs: {"hw:cpu_policy": shared}
    access: [{n}proj]
"""


@pytest.mark.lifecycle("flavors")
def test_flavors_lifecycle(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    path = manifest(tmp_path, n, FLAVORS)
    address = f"flavors.{n}small"
    first = apply(path)
    ok(first)
    assert first.actions() == {f"projects.{n}proj": "create", address: "create"}
    assert_converged(path)

    nova = cloud.nova
    flavor = nova.flavors.get(f"{n}id-1")
    assert flavor.get_keys() == {"hw:cpu_policy": "shared"}
    project = one(cloud.keystone.projects.list(name=f"{n}proj"))
    assert [a.tenant_id for a in nova.flavor_access.list(flavor=flavor.id)] == [project.id]

    # Out of band: an extra spec, the description, the access list.
    flavor.set_keys({"hw:mem_page_size": "large"})
    nova.flavors.update(flavor.id, description="by hand")
    nova.flavor_access.remove_tenant_access(flavor.id, project.id)
    assert changes(plan(path)) == {address: ("update", ["access", "description", "extra_specs"])}
    ok(apply(path))
    assert_converged(path)
    assert nova.flavors.get(flavor.id).get_keys() == {"hw:cpu_policy": "shared"}

    # A size change is a replace, not destructive: applied without --allow-destroy.
    bigger = manifest(tmp_path, n, FLAVORS.replace("ram: 64", "ram: 128"), "bigger.yaml")
    drifted = one(c for c in plan(bigger).changes if c.is_change)
    assert (drifted.action.value, drifted.destructive) == ("replace", False)
    assert [f.field for f in drifted.fields] == ["ram"]
    ok(apply(bigger))
    assert nova.flavors.get(f"{n}id-1").ram == 128
    assert_converged(bigger)

    absent = manifest(
        tmp_path, n, FLAVORS.replace("ram: 64", "ram: 128") + "    state: absent\n", "a.yaml"
    )
    absent_twice(absent, address)


def test_noop_flavor_plan_reads_access_only_where_managed(tmp_path, unique_name, cleanup):
    n = unique_name
    text = "projects:\n  - name: {n}p\nflavors:\n" + "".join(
        f"  - {{name: {n}f{i}, vcpus: 1, ram: 64, disk: 1, is_public: false}}\n" for i in range(3)
    )
    path = manifest(tmp_path, n, text)
    ok(apply(path))
    base = plan(path).requests
    with_access = manifest(
        tmp_path,
        n,
        text.replace("is_public: false}", "is_public: false, access: [{n}p]}", 1),
        "access.yaml",
    )
    ok(apply(with_access))
    assert_converged(with_access)
    # One access GET for the one flavor whose access is managed; none for the others.
    assert plan(with_access).requests == base + 1


# --- keypairs --------------------------------------------------------------------------

KEYPAIRS = """
users:
  - name: {n}user
keypairs:
  - name: {n}mine
    public_key_file: keys/id.pub
  - name: {n}theirs
    user: {n}user
    public_key: "OTHER tool@host"
""".replace("OTHER", OTHER_KEY.rsplit(" ", 1)[0])


@pytest.mark.lifecycle("keypairs")
def test_keypairs_lifecycle(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id.pub").write_text(PUBKEY + "\n")
    path = manifest(tmp_path, n, KEYPAIRS)
    mine, theirs = f"keypairs.{n}mine", f"keypairs.{n}user/{n}theirs"
    first = apply(path)
    ok(first)
    assert first.actions() == {f"users.{n}user": "create", mine: "create", theirs: "create"}
    assert_converged(path)
    user = one(cloud.keystone.users.list(name=f"{n}user"))
    assert [k.name for k in cloud.nova.keypairs.list(user_id=user.id)] == [f"{n}theirs"]

    # Out of band: my keypair replaced by another key (same name, another comment too).
    cloud.nova.keypairs.delete(f"{n}mine")
    cloud.nova.keypairs.create(f"{n}mine", OTHER_KEY)
    assert changes(plan(path)) == {mine: ("replace", ["public_key_file"])}
    run = apply(path)  # not destructive: no --allow-destroy needed
    ok(run)
    assert run.actions() == {mine: "replace"}
    assert cloud.nova.keypairs.get(f"{n}mine").public_key.split()[:2] == PUBKEY.split()[:2]
    assert_converged(path)

    # Another comment in the file is the same key.
    (tmp_path / "keys" / "id.pub").write_text(" ".join(PUBKEY.split()[:2]) + " renamed@x\n")
    assert_converged(path)

    absent = manifest(
        tmp_path,
        n,
        KEYPAIRS.replace("    user: {n}user\n", "    user: {n}user\n    state: absent\n"),
        "absent.yaml",
    )
    absent_twice(absent, theirs)
    assert cloud.nova.keypairs.list(user_id=user.id) == []


# --- servers ---------------------------------------------------------------------------

SERVER_BASE = """
projects:
  - name: admin
images:
  - name: {n}img
    source: {file: disk.raw}
    disk_format: raw
    container_format: bare
  - name: {n}img2
    source: {file: disk2.raw}
    disk_format: raw
    container_format: bare
flavors:
  - {name: {n}tiny, vcpus: 1, ram: 64, disk: 1}
  - {name: {n}small, vcpus: 1, ram: 128, disk: 1}
keypairs:
  - {name: {n}key, public_key: "%s"}
networks:
  - {name: {n}net, project: admin}
subnets:
  - {name: {n}sub, project: admin, network: {n}net, cidr: 10.%d.%d.0/24}
security_groups:
  - {name: {n}web, project: admin, description: web}
""".replace("%s", PUBKEY)

SERVER = """
servers:
  - name: {n}vm
    project: admin
    image: {n}img
    flavor: {n}tiny
    keypair: {n}key
    networks: [{n}net]
    security_groups: [{n}web]
    metadata: {role: web}
    user_data: {file: user-data.yaml}
    known_hosts: kh/known_hosts
    timeout: 300
"""


def server_setup(tmp_path: Path, n: str) -> str:
    raw_disk(tmp_path / "disk.raw", n)
    raw_disk(tmp_path / "disk2.raw", n + "-2")
    (tmp_path / "user-data.yaml").write_text("#cloud-config\npackages: [nginx]\n")
    token = n.rstrip("-").rsplit("-", 1)[-1]  # the random hex, whatever the prefix
    a, b = int(token[0:2], 16), int(token[2:4], 16)
    return SERVER_BASE % (a, b)


def live_server(cloud, n: str, name: str = "vm"):
    return one(
        s for s in cloud.nova.servers.list(search_opts={"all_tenants": 1}) if s.name == f"{n}{name}"
    )


@pytest.mark.lifecycle("servers")
def test_servers_lifecycle(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    base = server_setup(tmp_path, n)
    path = manifest(tmp_path, n, base + SERVER)
    address = f"servers.admin/{n}vm"

    first = apply(path)
    ok(first)
    assert first.actions()[address] == "create"
    server = live_server(cloud, n)
    assert server.status == "ACTIVE"
    assert _nova.MARKER_TAG in server.tags
    assert [g["name"] for g in server.security_groups] == [f"{n}web"]

    # known_hosts: mode 0600, an entry per key the console shows, for the fixed address.
    kh = tmp_path / "kh" / "known_hosts"
    assert stat.S_IMODE(os.stat(kh).st_mode) == 0o600
    console = cloud.nova.servers.get_console_output(server.id)
    keys = extract_host_keys(console)
    assert len(keys) == 2
    for ktype, blob in keys:
        assert f"{ktype} {blob}" in console
    ip = server.addresses[f"{n}net"][0]["addr"]
    assert sorted(kh.read_text().splitlines()) == sorted(f"{ip} {t} {b}" for t, b in keys)
    assert_converged(path)

    # Out of band: metadata and a security group.
    cloud.nova.servers.set_meta(server.id, {"hand": "x"})
    cloud.nova.servers.remove_security_group(server.id, f"{n}web")
    drifted = plan(path)
    assert changes(drifted) == {address: ("update", ["metadata", "security_groups"])}
    assert not one(c for c in drifted.changes if c.is_change).destructive
    ok(apply(path))
    assert_converged(path)
    fixed = live_server(cloud, n)
    assert fixed.metadata == {"role": "web"}
    assert [g["name"] for g in fixed.security_groups] == [f"{n}web"]

    # A lost known_hosts file is written again; the server is not touched.
    kh.unlink()
    assert changes(plan(path)) == {address: ("update", ["known_hosts"])}
    run = apply(path)
    ok(run)
    assert missing_addresses(read_text(str(kh)), [ip]) == []
    assert_converged(path)

    # A new image is a rebuild: held back without --allow-destroy, and nothing changes.
    rebuilt = manifest(
        tmp_path, n, base + SERVER.replace("image: {n}img", "image: {n}img2"), "rebuild.yaml"
    )
    change = one(c for c in plan(rebuilt).changes if c.is_change)
    assert (change.action.value, change.destructive) == ("update", True)
    assert "rebuilds" in change.reason
    held = apply(rebuilt)
    (refused,) = held.result.held
    assert str(refused.address) == address and "--allow-destroy" in refused.detail
    assert "root disk is lost" in held.plan.by_address()[refused.address].reason
    assert held.writes == 0
    assert live_server(cloud, n).image["id"] == server.image["id"]
    run = apply(rebuilt, allow_destroy=True)
    ok(run)
    assert run.actions() == {address: "update"}
    img2 = one(i for i in cloud.glance.images.list() if i["name"] == f"{n}img2")
    assert live_server(cloud, n).image["id"] == img2["id"]
    assert_converged(rebuilt)

    absent = manifest(
        tmp_path,
        n,
        base + SERVER.replace("image: {n}img", "image: {n}img2") + "    state: absent\n",
        "absent.yaml",
    )
    absent_twice(absent, address)
    assert not [s for s in cloud.nova.servers.list() if s.name == f"{n}vm"]


def test_destructive_change_is_held_back_with_its_resource(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    base = server_setup(tmp_path, n)
    path = manifest(tmp_path, n, base + SERVER)
    ok(apply(path))
    before = live_server(cloud, n)
    # Also an innocent change (metadata) of the same server: the server's change is one,
    # held back whole.
    text = base + SERVER.replace("image: {n}img", "image: {n}img2").replace("role: web", "role: db")
    changed = manifest(tmp_path, n, text, "changed.yaml")
    c = connect()
    from bootstrap import engine

    loaded = engine.load([changed])
    the_plan, resolver = engine.plan(c, loaded)
    writes = c.counter.writes
    result = engine.apply(c, the_plan, resolver)
    (held,) = result.held
    assert "rebuilds the server" in the_plan.by_address()[held.address].reason
    assert "--allow-destroy" in held.detail and result.ok
    assert c.counter.writes == writes
    after = live_server(cloud, n)
    assert after.image == before.image and after.metadata == before.metadata


def test_resize_is_confirmed_or_reports_novas_reason(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    base = server_setup(tmp_path, n)
    path = manifest(tmp_path, n, base + SERVER)
    ok(apply(path))
    resized = manifest(
        tmp_path, n, base + SERVER.replace("flavor: {n}tiny", "flavor: {n}small"), "resize.yaml"
    )
    change = one(c for c in plan(resized).changes if c.is_change)
    assert (change.action.value, change.destructive) == ("update", True)
    assert [f.field for f in change.fields] == ["flavor"]
    run = apply(resized, allow_destroy=True)
    server = live_server(cloud, n)
    if run.result.ok:
        assert server.flavor["original_name"] == f"{n}small" and server.status == "ACTIVE"
        assert_converged(resized)
    else:
        # A one-host cloud without allow_resize_to_same_host: Nova rolls back; the error
        # carries Nova's reason and the server is left as it was.
        (failure,) = run.result.failed
        assert isinstance(failure.error, ResourceFailed)
        assert "No valid host" in str(failure.error)
        assert server.flavor["original_name"] == f"{n}tiny" and server.status == "ACTIVE"


def test_flavor_replaced_under_a_server_plans_and_applies_its_resize(
    tmp_path, unique_name, cleanup, cloud
):
    """A cascade: the flavor is replaced (new sizes), so the server on it is resized; the
    plan names that change and its cause, and apply does exactly the planned steps."""
    n = unique_name
    base = server_setup(tmp_path, n)
    path = manifest(tmp_path, n, base + SERVER)
    ok(apply(path))
    bigger = base.replace("{name: {n}tiny, vcpus: 1, ram: 64", "{name: {n}tiny, vcpus: 1, ram: 96")
    assert bigger != base
    changed = manifest(tmp_path, n, bigger + SERVER, "bigger.yaml")
    the_plan = plan(changed)
    by_address = {str(c.address): c for c in the_plan.changes if c.is_change}
    assert sorted(by_address) == [f"flavors.{n}tiny", f"servers.admin/{n}vm"]
    assert by_address[f"flavors.{n}tiny"].action.value == "replace"
    resize = by_address[f"servers.admin/{n}vm"]
    assert (resize.action.value, resize.destructive) == ("update", True)
    assert f"because flavors.{n}tiny is replaced" in resize.reason
    run = apply(changed, allow_destroy=True)
    ok(run)
    assert run.actions() == {f"flavors.{n}tiny": "replace", f"servers.admin/{n}vm": "update"}
    server = live_server(cloud, n)
    assert server.flavor["original_name"] == f"{n}tiny" and server.flavor["ram"] == 96
    assert server.status == "ACTIVE"
    assert_converged(changed)


def test_server_in_a_project_without_a_role_says_what_to_add(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    base = server_setup(tmp_path, n).replace("project: admin", "project: {n}proj")
    base = base.replace("  - name: admin\n", "  - name: {n}proj\n")
    # The images belong to the admin project: public, so the other project can boot them.
    base = base.replace(
        "container_format: bare\n", "container_format: bare\n    visibility: public\n"
    )
    server = SERVER.replace("project: admin", "project: {n}proj")
    path = manifest(tmp_path, n, base + server)
    run = apply(path)
    (failure,) = run.result.failed
    assert isinstance(failure.error, Forbidden)
    assert "add a role assignment" in str(failure.error)

    admin = cloud.user_id
    assert admin
    grant = """
roles:
  - name: member
users:
  - name: admin
role_assignments:
  - {role: member, user: admin, project: {n}proj}
"""
    with_role = manifest(tmp_path, n, base + grant, "grant.yaml")
    ok(apply(with_role))
    both = manifest(tmp_path, n, base + grant + server, "both.yaml")
    ok(apply(both))
    project = one(cloud.keystone.projects.list(name=f"{n}proj"))
    assert live_server(cloud, n).tenant_id == project.id
    assert_converged(both)
    absent_twice(
        manifest(tmp_path, n, base + grant + server + "    state: absent\n", "absent.yaml"),
        f"servers.{n}proj/{n}vm",
    )
    with contextlib.suppress(Exception):
        cloud.keystone.roles.revoke(
            one(cloud.keystone.roles.list(name="member")), user=admin, project=project
        )


def test_non_admin_server(tmp_path, unique_name, cleanup, cloud):
    n = unique_name
    admin_part = manifest(
        tmp_path,
        n,
        """
images:
  - {name: {n}img, source: {file: disk.raw}, disk_format: raw, container_format: bare,
     visibility: public}
flavors:
  - {name: {n}tiny, vcpus: 1, ram: 64, disk: 1}
""",
        "admin.yaml",
    )
    raw_disk(tmp_path / "disk.raw", n)
    ok(apply(admin_part))
    token = n.rstrip("-").rsplit("-", 1)[-1]  # the random hex, whatever the prefix
    a, b = int(token[0:2], 16), int(token[2:4], 16)
    demo = manifest(
        tmp_path,
        n,
        f"""
projects:
  - name: demo
images:
  - name: {{n}}img
flavors:
  - name: {{n}}tiny
keypairs:
  - {{name: {{n}}key, public_key: "{PUBKEY}"}}
networks:
  - {{name: {{n}}net, project: demo}}
subnets:
  - {{name: {{n}}sub, project: demo, network: {{n}}net, cidr: 10.{a}.{b}.0/24}}
servers:
  - name: {{n}}vm
    project: demo
    image: {{n}}img
    flavor: {{n}}tiny
    keypair: {{n}}key
    networks: [{{n}}net]
    user_data: "#cloud-config"
    known_hosts: demo_known_hosts
""",
        "demo.yaml",
    )
    run = apply(demo, cloud_name="devcloud-demo")
    ok(run)
    assert run.actions()[f"servers.demo/{n}vm"] == "create"
    assert read_text(str(tmp_path / "demo_known_hosts")).count(" ssh-ed25519 ") == 1
    assert_converged(demo, cloud_name="devcloud-demo")  # user_data invisible: no drift
    demo_cloud = connect("devcloud-demo")
    vm = one(s for s in demo_cloud.nova.servers.list() if s.name == f"{n}vm")
    demo_cloud.nova.servers.set_meta(vm.id, {"hand": "x"})
    assert changes(plan(demo, cloud_name="devcloud-demo")) == {}  # metadata not managed
    absent_twice_demo = manifest(
        tmp_path, n, Path(demo).read_text() + "    state: absent\n", "demo-absent.yaml"
    )
    run = apply(absent_twice_demo, cloud_name="devcloud-demo")
    ok(run)
    assert run.actions() == {f"servers.demo/{n}vm": "delete"}
    again = apply(absent_twice_demo, cloud_name="devcloud-demo")
    assert again.actions() == {} and again.writes == 0


def test_noop_plan_requests_do_not_grow_with_servers(tmp_path, unique_name, cleanup):
    n = unique_name
    base = server_setup(tmp_path, n)
    vm = """
  - {name: {n}vm%d, project: admin, image: {n}img, flavor: {n}tiny, keypair: {n}key,
     networks: [{n}net], security_groups: [{n}web], metadata: {i: "%d"}}
"""
    one_server = manifest(tmp_path, n, base + "servers:" + vm % (0, 0), "one.yaml")
    four = manifest(
        tmp_path, n, base + "servers:" + "".join(vm % (i, i) for i in range(4)), "four.yaml"
    )
    ok(apply(four))
    assert_converged(four)
    p1, p4 = plan(one_server), plan(four)
    assert changes(p4) == {}
    # one_server would delete nothing (no prune): only reading differs, and it must not.
    assert p4.requests == p1.requests, (p1.requests, p4.requests)
