"""Read-side logic of the compute/image drivers and the server poller, without a cloud.

The golden cases (tests/cases/<kind>/) cover diff decisions; these cover what read_all
turns live objects into (content identity, key files, names) and the poller's promise:
one list call per interval, whatever the number of servers waiting.
"""

from __future__ import annotations

import hashlib
import threading
from types import SimpleNamespace

import pytest

from bootstrap.drivers import _glance, _nova
from bootstrap.drivers.images import ImageDriver
from bootstrap.drivers.keypairs import KeypairDriver, key_text
from bootstrap.drivers.servers import HIDDEN, ServerDriver, fixed_ports, networks_equal
from bootstrap.errors import AmbiguousResource, ResourceFailed, WaitTimeout
from bootstrap.model import Address, Ref, Resource, Secret
from bootstrap.plan import Action, Resolver

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINmwEOuXuyQMrhsB1ni5KMxP/LhDZdBjN6UYsA4fJX74"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRr/3rovB2VgDJFSg5AoPKKjhM/O7SPkoCGwNntnq5c"


# --- images ----------------------------------------------------------------------------


def image_spec(**spec):
    spec.setdefault("name", "img")
    return Resource(Address("images", (spec["name"],)), spec)


def glance_image(**fields):
    base = {
        "id": "i1",
        "name": "img",
        "status": "active",
        "visibility": "private",
        "owner": "p1",
        "disk_format": "raw",
        "container_format": "bare",
        "min_disk": 0,
        "min_ram": 0,
        "protected": False,
        "tags": [],
        "os_hash_algo": "sha512",
        "os_hash_value": None,
    }
    base.update(fields)
    return base


def read_images(images, resources):
    cloud = SimpleNamespace(
        glance=SimpleNamespace(images=SimpleNamespace(list=lambda **kw: iter(images)))
    )
    return ImageDriver().read_all(cloud, resources)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(b"\0" * 4096 + b"it-data")
    return str(path)


def digest(path, algo):
    return hashlib.new(algo, open(path, "rb").read()).hexdigest()  # noqa: SIM115


def plan_image(resource, observed):
    driver = ImageDriver()
    live = driver.match(resource, observed, Resolver())
    return driver.diff(resource, live, Resolver())


def test_file_with_the_live_hash_is_the_same_image(data_file):
    r = image_spec(source={"file": data_file}, disk_format="raw")
    obs = read_images([glance_image(os_hash_value=digest(data_file, "sha512"))], [r])
    assert obs[0].fields["source"] == {"file": data_file}
    assert plan_image(r, obs).action is Action.NOOP


def test_changed_file_is_a_replace_that_says_why(data_file):
    r = image_spec(source={"file": data_file}, disk_format="raw")
    obs = read_images([glance_image(os_hash_value="ab" * 64)], [r])
    change = plan_image(r, obs)
    assert change.action is Action.REPLACE and change.destructive
    assert "data differs" in change.reason
    assert "the file has sha512:" in change.fields[0].before


def test_sdk_upload_adopted_by_sha256_checksum_without_reading_the_file(tmp_path):
    # openstacksdk records owner_specified.openstack.sha256; Glance hashed with sha512.
    sha256 = "5f" * 32
    r = image_spec(source={"file": str(tmp_path / "not-read")}, checksum=sha256.upper())
    live = glance_image(os_hash_value="cd" * 64, **{_glance.SDK_SHA256: sha256})
    obs = read_images([live], [r])
    assert obs[0].fields["checksum"] == sha256
    assert obs[0].fields["properties"] == {}  # bookkeeping is not a property
    assert plan_image(r, obs).action is Action.NOOP


def test_sha256_checksum_without_a_recorded_sha256_hashes_the_file(data_file):
    r = image_spec(source={"file": data_file}, checksum=digest(data_file, "sha256"))
    obs = read_images([glance_image(os_hash_value=digest(data_file, "sha512"))], [r])
    assert plan_image(r, obs).action is Action.NOOP
    r2 = image_spec(source={"file": data_file}, checksum="00" * 32)
    assert plan_image(r2, read_images([glance_image(os_hash_value="1" * 128)], [r2])).action is (
        Action.REPLACE
    )


def test_file_without_os_hash_falls_back_on_the_sdk_sha256(data_file):
    r = image_spec(source={"file": data_file})
    live = glance_image(os_hash_algo=None, **{_glance.SDK_SHA256: digest(data_file, "sha256")})
    assert plan_image(r, read_images([live], [r])).action is Action.NOOP


def test_url_without_checksum_compares_the_recorded_url_digest_only():
    url = "https://images.example/cirros.img?sig=secret"
    r = image_spec(source={"url": url})
    same = glance_image(**{_glance.URL_PROP: _glance.url_digest(url)})
    assert plan_image(r, read_images([same], [r])).action is Action.NOOP
    other = glance_image(**{_glance.URL_PROP: _glance.url_digest(url + "x")})
    assert plan_image(r, read_images([other], [r])).action is Action.REPLACE
    unknown = read_images([glance_image()], [r])
    assert "give checksum" in unknown[0].fields["source"]
    assert "secret" not in _glance.url_digest(url)


def test_queued_image_has_no_data():
    r = image_spec(source={"url": "https://x.example/a"}, checksum="aa" * 64)
    obs = read_images([glance_image(status="queued")], [r])
    assert obs[0].fields["checksum"] == "(no data: the image is queued)"
    assert plan_image(r, obs).action is Action.REPLACE


def test_properties_and_marker():
    live = glance_image(
        os_distro="cirros",
        hw_qemu_guest_agent="true",
        managed_by="openstack-bootstrap",
        os_glance_import_task="t",
        **{"openstack_bootstrap.source_url_sha256": "x", "owner_specified.openstack.md5": "y"},
    )
    (obs,) = read_images([live], [])
    assert obs.managed
    assert obs.fields["properties"] == {"os_distro": "cirros", "hw_qemu_guest_agent": "true"}
    r = image_spec(properties={"os_distro": "cirros", "hw_qemu_guest_agent": True})
    assert plan_image(r, [obs]).action is Action.NOOP


def test_two_images_with_one_name_are_refused():
    obs = read_images([glance_image(id="a"), glance_image(id="b")], [])
    with pytest.raises(AmbiguousResource):
        plan_image(image_spec(), obs)


def test_hashing_reader_streams_and_hashes(data_file):
    seen = []
    with open(data_file, "rb") as fh:
        reader = _glance.HashingReader(fh, ["sha512", "md5"], seen.append)
        while reader.read(1000):
            pass
    assert reader.digests()["sha512"] == digest(data_file, "sha512")
    assert sum(seen) == 4096 + 7 and max(seen) == 1000


# --- keypairs --------------------------------------------------------------------------


def keypair(name, public_key, type_="ssh"):
    return SimpleNamespace(name=name, public_key=public_key, type=type_)


def test_key_text_ignores_comment_and_whitespace():
    assert key_text(f"  {KEY} me@laptop\n") == KEY
    assert key_text("-----BEGIN CERTIFICATE-----\n  abc \n-----END CERTIFICATE-----\n", "x509") == (
        "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----"
    )


def test_keypairs_read_own_and_named_users_and_compare_key_files(tmp_path):
    calls = []
    own = [keypair("ops", KEY + " old comment")]
    alice = [keypair("ops", OTHER)]

    def kp_list(user_id=None):
        calls.append(user_id)
        return alice if user_id == "u-alice" else own

    key_file = tmp_path / "id.pub"
    key_file.write_text(KEY + " new comment\n")
    cloud = SimpleNamespace(
        user_id="u-admin",
        nova=SimpleNamespace(keypairs=SimpleNamespace(list=kp_list)),
        keystone=SimpleNamespace(
            domains=SimpleNamespace(list=lambda: [SimpleNamespace(name="Default", id="default")]),
            users=SimpleNamespace(
                list=lambda name: [
                    SimpleNamespace(id="u-alice", domain_id="default"),
                    SimpleNamespace(id="u-elsewhere", domain_id="d2"),
                ]
            ),
        ),
    )
    mine = {"name": "ops", "public_key_file": str(key_file)}
    theirs = {
        "name": "ops",
        "user": Ref(Address("users", ("alice",))),
        "public_key_file": str(key_file),
    }
    driver = KeypairDriver()
    resources = [
        Resource(driver.address(mine), mine),
        Resource(driver.address(theirs), theirs),
    ]
    assert [str(r.address) for r in resources] == ["keypairs.ops", "keypairs.alice/ops"]
    observed = driver.read_all(cloud, resources)
    assert calls == [None, "u-alice"]  # one list per user, never a GET per keypair
    resolver = Resolver({Address("users", ("alice",)): "u-alice"})
    changes = [driver.diff(r, driver.match(r, observed, resolver), resolver) for r in resources]
    assert changes[0].action is Action.NOOP  # same key, other comment
    assert changes[1].action is Action.REPLACE  # alice holds another key under that name
    assert changes[1].fields[0].field == "public_key_file"


# --- servers ---------------------------------------------------------------------------

NOVA_SERVER = {
    "id": "s1",
    "name": "web-1",
    "status": "ACTIVE",
    "tenant_id": "pd",
    "image": {"id": "img-1", "links": []},
    "flavor": {"original_name": "m1.tiny", "vcpus": 1, "ram": 64, "disk": 1},
    "key_name": "ops",
    "addresses": {
        "private": [
            {
                "version": 4,
                "addr": "10.0.0.5",
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
            },
            {
                "version": 6,
                "addr": "fd00::5",
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
            },
            {
                "version": 4,
                "addr": "203.0.113.7",
                "OS-EXT-IPS:type": "floating",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
            },
        ]
    },
    "security_groups": [{"name": "web"}, {"name": "default"}, {"name": "web"}],
    "metadata": {"role": "web"},
    "OS-EXT-AZ:availability_zone": "nova",
    "config_drive": "",
    "OS-EXT-SRV-ATTR:user_data": "I2Nsb3VkLWNvbmZpZw==",
    "tags": ["managed-by:openstack-bootstrap"],
}


def test_server_observed_as_nova_reports_it():
    obs = ServerDriver().observe(NOVA_SERVER)
    f = obs.fields
    assert obs.managed
    assert f["flavor"] == "m1.tiny" and f["image"] == "img-1" and f["keypair"] == "ops"
    assert f["networks"] == [{"network": "private", "fixed_ips": ["10.0.0.5", "fd00::5"]}]
    assert f["security_groups"] == ["default", "web"]
    assert f["user_data"] == Secret("#cloud-config")
    assert f["config_drive"] is False
    assert f["addresses"] == ["10.0.0.5", "fd00::5", "203.0.113.7"]


def test_user_data_a_non_admin_cannot_see_is_never_drift():
    info = {k: v for k, v in NOVA_SERVER.items() if k != "OS-EXT-SRV-ATTR:user_data"}
    obs = ServerDriver().observe(info)
    assert obs.fields["user_data"] is HIDDEN
    spec = {"name": "web-1", "project": Ref(Address("projects", ("demo",))), "user_data": "x"}
    r = Resource(Address("servers", ("demo", "web-1")), spec)
    resolver = Resolver({Address("projects", ("demo",)): "pd"})
    assert ServerDriver().diff(r, obs, resolver).action is Action.NOOP


def test_networks_equal():
    live = fixed_ports(NOVA_SERVER["addresses"])
    assert networks_equal([{"network": "private"}], live)
    assert networks_equal([{"network": "private", "fixed_ip": "fd00::5"}], live)
    assert not networks_equal([{"network": "private", "fixed_ip": "10.0.0.6"}], live)
    assert not networks_equal([{"network": "private"}, {"network": "private"}], live)
    two = live + [{"network": "private", "fixed_ips": ["10.0.0.9"]}]
    assert networks_equal(
        [{"network": "private"}, {"network": "private", "fixed_ip": "10.0.0.9"}], two
    )


def test_server_desired_uses_names_and_survives_unknown_ids():
    spec = {
        "name": "web-1",
        "project": Ref(Address("projects", ("demo",))),
        "flavor": Ref(Address("flavors", ("m1.tiny",))),
        "keypair": Ref(Address("keypairs", ("ops",))),
        "networks": [{"network": Ref(Address("networks", ("demo", "private")))}],
        "security_groups": [
            Ref(Address("security_groups", ("demo", "web"))),
            Ref(Address("security_groups", ("demo", "default"))),
        ],
    }
    r = Resource(Address("servers", ("demo", "web-1")), spec)
    resolver = Resolver({Address("projects", ("demo",)): "pd"})  # nothing else known yet
    obs = ServerDriver().observe(NOVA_SERVER)
    assert ServerDriver().diff(r, obs, resolver).action is Action.NOOP


# --- the poller ------------------------------------------------------------------------


class FakeNova:
    """Servers that become ACTIVE after a number of list calls."""

    def __init__(self, builds: dict[str, int], error: str | None = None):
        self.builds = dict(builds)
        self.error = error
        self.calls = 0
        self.lock = threading.Lock()

    def list(self, since):
        with self.lock:
            self.calls += 1
            out = []
            for sid, left in self.builds.items():
                status = "BUILD" if left > 0 else "ACTIVE"
                if sid == self.error and left <= 0:
                    status = "ERROR"
                fault = {"message": "No valid host was found."} if status == "ERROR" else None
                out.append(SimpleNamespace(id=sid, status=status, fault=fault))
                self.builds[sid] = left - 1
            return out


def test_one_list_call_per_interval_for_many_servers():
    nova = FakeNova({f"s{i}": 3 for i in range(10)})
    poller = _nova.ServerPoller(interval=0.01)
    results = {}

    def wait(sid):
        results[sid] = poller.wait("all", nova.list, sid, _nova.active("x"), timeout=5)

    threads = [threading.Thread(target=wait, args=(f"s{i}",)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [f"s{i}" for i in range(10)]
    assert all(s.status == "ACTIVE" for s in results.values())
    # 10 servers, ready after the 4th listing: a handful of calls, not 10 per round.
    assert nova.calls <= 6, nova.calls


def test_error_raises_with_novas_fault():
    nova = FakeNova({"s1": 1}, error="s1")
    poller = _nova.ServerPoller(interval=0)
    with pytest.raises(ResourceFailed, match="No valid host was found"):
        poller.wait("all", nova.list, "s1", _nova.active("servers.demo/web"), timeout=5)


def test_timeout_says_what_it_waited_for():
    nova = FakeNova({"s1": 1000})
    clock = iter(range(0, 10_000, 30))
    poller = _nova.ServerPoller(interval=0, clock=lambda: next(clock))
    with pytest.raises(WaitTimeout, match="ACTIVE within 60s .last status: BUILD"):
        poller.wait("all", nova.list, "s1", _nova.active("x"), timeout=60, what="ACTIVE")


def test_poller_lives_on_the_cloud_not_in_a_global():
    store = {}

    def shared(key, factory):
        return store.setdefault(key, factory())

    a = SimpleNamespace(shared=shared)
    assert _nova.poller(a) is _nova.poller(a)
    b_store = {}
    b = SimpleNamespace(shared=lambda k, f: b_store.setdefault(k, f()))
    assert _nova.poller(b) is not _nova.poller(a)


def test_upload_progress_joins_the_apply_display_or_stays_silent(data_file, monkeypatch):
    class Live:
        disable = False

        def __init__(self):
            self.tasks, self.done = {}, []

        def add_task(self, description, total):
            self.tasks[1] = [description, total, 0]
            return 1

        def advance(self, task, n):
            self.tasks[task][2] += n

        def remove_task(self, task):
            self.done.append(self.tasks.pop(task))

    live = Live()
    cloud = SimpleNamespace(shared=lambda key, factory: live)
    with _glance.progress(cloud, "disk.raw", 10) as tick:
        tick(4)
        tick(6)
    assert live.done == [["upload disk.raw", 10, 10]]
    # No live display and stderr not a terminal (tests, CI): no bar at all.
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    quiet = SimpleNamespace(shared=lambda key, factory: factory())
    with _glance.progress(quiet, "disk.raw", 10) as tick:
        assert tick is None
