"""Compute/image drivers without a cloud: reads, probes, plan steps, the poller.

The golden cases (tests/cases/<kind>/) cover diff decisions; these cover what read_all
turns live objects into, the probes a plan runs (files hashed and read for real here)
and the decision they lead to, the arguments of the planned steps, and the poller's
promise: one list call per interval, whatever the number of servers waiting.
"""

from __future__ import annotations

import hashlib
import threading
from types import SimpleNamespace

import pytest

from bootstrap.apply import ApplyContext
from bootstrap.drivers import _glance, _nova
from bootstrap.drivers.flavors import FlavorDriver
from bootstrap.drivers.floating_ips import FloatingIPDriver
from bootstrap.drivers.images import ImageDriver
from bootstrap.drivers.keypairs import KeypairDriver, key_text
from bootstrap.drivers.servers import HIDDEN, ServerDriver, fixed_ports, networks_equal
from bootstrap.errors import AmbiguousResource, CloudError, ResourceFailed, WaitTimeout
from bootstrap.model import Address, Ref, Resource, Secret
from bootstrap.plan import Action, MapDelta, Observed, Pending, Resolver, SetDelta
from bootstrap.probes import FileDigests, FileText, run_probes
from tests.unit.fake_identity import FakeIdentity

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
    """As the engine does it: the driver's probes run (the file really hashed), then diff."""
    driver = ImageDriver()
    facts = run_probes(None, driver.probes(resource, observed))
    live = driver.match(resource, observed, Resolver())
    return driver.diff(resource, live, Resolver(), facts)


def test_reading_records_what_glance_knows_and_decides_nothing(data_file):
    r = image_spec(source={"file": data_file}, disk_format="raw")
    (obs,) = read_images([glance_image(os_hash_value="AB" * 64)], [r])
    assert obs.fields["digests"] == {"sha512": "ab" * 64}
    assert "source" not in obs.fields  # the verdict is the plan's, not the read's
    assert ImageDriver().probes(r, [obs]) == [FileDigests(data_file, ("sha512",))]


def test_file_with_the_live_hash_is_the_same_image(data_file):
    r = image_spec(source={"file": data_file}, disk_format="raw")
    obs = read_images([glance_image(os_hash_value=digest(data_file, "sha512"))], [r])
    change = plan_image(r, obs)
    assert change.observed.fields["source"] == {"file": data_file}
    assert change.action is Action.NOOP


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
    assert ImageDriver().probes(r, obs) == []  # the file is not read
    assert obs[0].fields["properties"] == {}  # bookkeeping is not a property
    change = plan_image(r, obs)
    assert change.observed.fields["checksum"] == sha256
    assert change.action is Action.NOOP


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
    unknown = plan_image(r, read_images([glance_image()], [r]))
    assert "give checksum" in unknown.fields[0].before
    assert "secret" not in _glance.url_digest(url)


def test_queued_image_has_no_data():
    r = image_spec(source={"url": "https://x.example/a"}, checksum="aa" * 64)
    change = plan_image(r, read_images([glance_image(status="queued")], [r]))
    assert change.observed.fields["checksum"] == "(no data: the image is queued)"
    assert change.action is Action.REPLACE


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
        identity=FakeIdentity({
            "/domains": [{"name": "Default", "id": "default"}],
            "/users": [
                {"id": "u-alice", "name": "alice", "domain_id": "default"},
                {"id": "u-elsewhere", "name": "alice", "domain_id": "d2"},
                {"id": "u-bob", "name": "bob", "domain_id": "default"},
            ],
        }),
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
    assert all("public_key_file" not in o.fields for o in observed)  # reading decides nothing
    facts = run_probes(None, [p for r in resources for p in driver.probes(r, observed)])
    assert list(facts) == [FileText(str(key_file))]  # the one file, read once
    resolver = Resolver({Address("users", ("alice",)): "u-alice"})
    changes = [
        driver.diff(r, driver.match(r, observed, resolver), resolver, facts) for r in resources
    ]
    assert changes[0].action is Action.NOOP  # same key, other comment
    assert changes[1].action is Action.REPLACE  # alice holds another key under that name
    assert changes[1].fields[0].field == "public_key_file"
    # The key text the plan compared is the key apply imports: apply reads no file.
    delete, create = changes[1].steps
    assert (delete.verb, create.verb) == ("delete", "create")
    assert create.args == {
        "name": "ops",
        "public_key": KEY + " new comment",
        "key_type": "ssh",
        "user_id": "u-alice",
    }


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


def test_one_poller_per_apply_not_in_a_global():
    a, b = ApplyContext(), ApplyContext()
    assert isinstance(a.poller, _nova.ServerPoller)
    assert a.poller is a.poller
    assert b.poller is not a.poller


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
    with _glance.progress(live, "disk.raw", 10) as tick:
        tick(4)
        tick(6)
    assert live.done == [["upload disk.raw", 10, 10]]
    # No live display and stderr not a terminal (tests, CI): no bar at all.
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    with _glance.progress(None, "disk.raw", 10) as tick:
        assert tick is None


# --- plan steps: the arguments apply will send ------------------------------------------

DEMO = Address("projects", ("demo",))


def server_resource(**spec):
    spec = {"name": "web-1", "project": Ref(DEMO), **spec}
    return Resource(Address("servers", ("demo", spec["name"])), spec)


def test_server_create_step_has_api_ids_and_masks_user_data():
    r = server_resource(
        image=Ref(Address("images", ("cirros",))),
        flavor=Ref(Address("flavors", ("m1.tiny",))),
        keypair=Ref(Address("keypairs", ("ops",))),
        networks=[
            {"network": Ref(Address("networks", ("demo", "private"))), "fixed_ip": "fd00::9"}
        ],
        security_groups=[Ref(Address("security_groups", ("demo", "web")))],
        user_data=Secret("#cloud-config", "file:x"),
        known_hosts="/home/me/.ssh/kh",
        timeout=120,
    )
    resolver = Resolver(
        {
            DEMO: "pd",
            Address("flavors", ("m1.tiny",)): "f1",
            Address("security_groups", ("demo", "web")): "sg1",
        }
    )
    (create,) = ServerDriver().diff(r, None, resolver).steps
    assert create.args["image"] == Pending(Address("images", ("cirros",)))
    assert create.args["nics"] == [
        {"net-id": Pending(Address("networks", ("demo", "private"))), "v6-fixed-ip": "fd00::9"}
    ]
    assert create.args["security_groups"] == ["sg1"] and create.args["key_name"] == "ops"
    assert (create.args["timeout"], create.args["known_hosts"]) == (120.0, "/home/me/.ssh/kh")
    assert "#cloud-config" not in str(create.to_json())
    assert create.args["userdata"].reveal() == "#cloud-config"


def test_server_update_adds_groups_by_id_removes_by_name_and_sets_metadata_by_key():
    r = server_resource(
        metadata={"role": "web"},
        security_groups=[Ref(Address("security_groups", ("demo", "web")))],
    )
    resolver = Resolver({DEMO: "pd", Address("security_groups", ("demo", "web")): "sg-web"})
    obs = ServerDriver().observe(NOVA_SERVER)  # groups default + web, metadata role: web
    obs.fields["metadata"] = {"role": "db", "hand": "x"}
    obs.fields["security_groups"] = ["default"]
    (update,) = ServerDriver().diff(r, obs, resolver).steps
    assert update.args == {
        "metadata": MapDelta({"role": "web"}, ("hand",)),
        "security_groups": SetDelta(("sg-web",), ("default",)),
    }


def test_server_rebuild_onto_a_replaced_image_rewrites_known_hosts_and_says_why():
    image = Address("images", ("cirros",))
    r = server_resource(image=Ref(image), known_hosts="/kh", timeout=60)
    resolver = Resolver({DEMO: "pd", image: "img-1"})
    resolver.will_change(image)  # the image is replaced by this plan
    obs = ServerDriver().observe(NOVA_SERVER)
    facts = {FileText("/kh", missing_ok=True): "10.0.0.5 ssh-ed25519 AAAA\n"}
    change = ServerDriver().diff(r, obs, resolver, facts)
    assert change.action is Action.UPDATE and change.destructive
    assert "because images.cirros is replaced" in change.reason
    (update,) = change.steps
    assert update.args == {"image": Pending(image), "known_hosts": "/kh", "timeout": 60.0}


def test_server_known_hosts_probe_and_verdict():
    r = server_resource(known_hosts="/kh")
    resolver = Resolver({DEMO: "pd"})
    obs = ServerDriver().observe(NOVA_SERVER)
    driver = ServerDriver()
    assert driver.probes(r, [obs]) == [FileText("/kh", missing_ok=True)]
    text = "10.0.0.5 ssh-ed25519 AAAA\nfd00::5 ssh-ed25519 AAAA\n203.0.113.7 ssh-ed25519 AAAA\n"
    same = driver.diff(r, obs, resolver, {FileText("/kh", missing_ok=True): text})
    assert same.action is Action.NOOP
    lost = driver.diff(r, obs, resolver, {FileText("/kh", missing_ok=True): ""})
    assert lost.action is Action.UPDATE and not lost.destructive
    assert "no entry for 10.0.0.5, fd00::5, 203.0.113.7" in lost.fields[0].before
    assert lost.steps[0].args == {"known_hosts": "/kh", "timeout": 600.0}


def test_novas_security_group_race_is_left_to_the_one_retry_policy():
    from novaclient import exceptions as nova_exc

    from bootstrap.drivers.servers import _boot

    def create(*args, **kwargs):
        raise nova_exc.BadRequest(400, "Unable to find security_group with name or id 'x'")

    nova = SimpleNamespace(servers=SimpleNamespace(create=create))
    with pytest.raises(CloudError) as err:
        _boot(nova, "web", "img", "f1", {})
    assert err.value.retryable and err.value.status == 400

    def other(*args, **kwargs):
        raise nova_exc.BadRequest(400, "Invalid flavorRef")

    with pytest.raises(nova_exc.BadRequest):
        _boot(SimpleNamespace(servers=SimpleNamespace(create=other)), "web", "img", "f1", {})


def test_flavor_create_then_extra_specs_and_access_as_deltas():
    project = Address("projects", ("acme",))
    spec = {
        "name": "m1.pinned",
        "vcpus": 2,
        "ram": 512,
        "is_public": False,
        "extra_specs": {"hw:cpu_policy": "dedicated"},
        "access": [Ref(project)],
    }
    r = Resource(Address("flavors", ("m1.pinned",)), spec)
    create, complete = FlavorDriver().diff(r, None, Resolver()).steps
    assert create.args == {"name": "m1.pinned", "vcpus": 2, "ram": 512, "is_public": False}
    assert complete.args == {
        "extra_specs": MapDelta({"hw:cpu_policy": "dedicated"}, ()),
        "access": SetDelta((Pending(project),), ()),
    }
    obs = Observed(
        "f1",
        {
            "name": "m1.pinned",
            "vcpus": 2,
            "ram": 512,
            "is_public": False,
            "extra_specs": {"hw:cpu_policy": "shared", "hand": "x"},
            "access": ["p-old"],
        },
    )
    (update,) = FlavorDriver().diff(r, obs, Resolver({project: "p-acme"})).steps
    assert update.args == {
        "extra_specs": MapDelta({"hw:cpu_policy": "dedicated"}, ("hand",)),
        "access": SetDelta(("p-acme",), ("p-old",)),
    }
    plain = Resource(Address("flavors", ("m1.x",)), {"name": "m1.x", "vcpus": 1, "ram": 64})
    assert [s.verb for s in FlavorDriver().diff(plain, None, Resolver()).steps] == ["create"]


def test_image_create_args_carry_the_upload_and_the_bookkeeping():
    url = "https://images.example/cirros.img?sig=secret"
    r = image_spec(source={"url": url}, disk_format="qcow2", properties={"os_distro": "cirros"})
    (create,) = ImageDriver().diff(r, None, Resolver()).steps
    assert create.args["source"] == {"url": url}
    assert create.args["properties"] == {
        "os_distro": "cirros",
        _glance.MARKER_PROP: _glance.MARKER_VALUE,
        _glance.URL_PROP: _glance.url_digest(url),
    }


# --- floating IPs: known_hosts at apply ------------------------------------------------

WEB = Address("servers", ("demo", "web-1"))


def fip_resource():
    spec = {
        "project": Ref(DEMO),
        "server": Ref(WEB),
        "network": Ref(Address("networks", ("admin", "public"))),
    }
    return Resource(Address("floating_ips", ("demo", "web-1")), spec)


def test_floating_ip_plan_carries_the_servers_known_hosts_path():
    server = server_resource(known_hosts="/home/me/kh")
    r = fip_resource()
    resolver = Resolver(
        {DEMO: "pd", Address("networks", ("admin", "public")): "ext"}, {WEB: server, r.address: r}
    )
    create, tag = FloatingIPDriver().diff(r, None, resolver).steps
    assert create.args == {
        "project_id": "pd",
        "floating_network_id": "ext",
        "server": Pending(WEB),
        "known_hosts": "/home/me/kh",
    }
    assert tag.verb == "update" and "tags" in tag.args
    # Re-attached from elsewhere: the update step carries the path too.
    resolver.set(WEB, "srv1")
    loose = Observed(
        "f1", {"project_id": "pd", "server": "other", "network": "ext", "address": "172.24.4.10"}
    )
    (update,) = FloatingIPDriver().diff(r, loose, resolver).steps
    # ...and re-tags the address for this server (found again if detached).
    assert update.args == {
        "server": "srv1",
        "claim": {"server": "srv1"},
        "known_hosts": "/home/me/kh",
    }


class FakeNetwork:
    def __init__(self):
        self.created = []

    def ports(self, device_id):
        return [
            SimpleNamespace(
                id="port-1",
                fixed_ips=[{"ip_address": "10.0.0.5"}, {"ip_address": "fd00::5"}],
                created_at="t",
            )
        ]

    def create_ip(self, port_id, **attrs):
        self.created.append((port_id, attrs))
        return SimpleNamespace(
            id="f1",
            port_details={"device_id": "srv1"},
            project_id=attrs["project_id"],
            port_id=port_id,
            floating_network_id=attrs["floating_network_id"],
            floating_ip_address="172.24.4.10",
            description="",
            tags=[],
        )


def test_floating_address_gets_the_keys_the_file_holds_for_the_fixed_ones(tmp_path):
    from tests.unit.test_known_hosts import ED25519, RSA

    kh = tmp_path / "known_hosts"

    def no_console(*a):
        raise AssertionError("the console log is not read when the file has the keys")

    cloud = SimpleNamespace(
        network=FakeNetwork(),
        roles={"admin"},
        nova=SimpleNamespace(servers=SimpleNamespace(get_console_output=no_console)),
    )
    args = {
        "project_id": "pd",
        "floating_network_id": "ext",
        "server": "srv1",
        "known_hosts": str(kh),
    }
    kh.write_text(f"10.0.0.5 {ED25519[0]} {ED25519[1]}\n10.0.0.5 {RSA[0]} {RSA[1]}\nx ssh-rsa Y\n")
    obs = FloatingIPDriver().create(cloud, args, ApplyContext())
    assert obs.fields["address"] == "172.24.4.10" and obs.fields["server"] == "srv1"
    assert cloud.network.created == [("port-1", {"project_id": "pd", "floating_network_id": "ext"})]
    lines = kh.read_text().splitlines()
    assert f"172.24.4.10 {ED25519[0]} {ED25519[1]}" in lines
    assert f"172.24.4.10 {RSA[0]} {RSA[1]}" in lines
    assert f"10.0.0.5 {ED25519[0]} {ED25519[1]}" in lines  # the server's own entries stay


def test_floating_address_falls_back_on_the_console_log(tmp_path):
    from tests.unit.test_known_hosts import ED25519

    kh = tmp_path / "known_hosts"
    console = "\n".join(
        [
            "-----BEGIN SSH HOST KEY KEYS-----",
            f"{ED25519[0]} {ED25519[1]} root@web",
            "-----END SSH HOST KEY KEYS-----",
        ]
    )
    cloud = SimpleNamespace(
        network=FakeNetwork(),
        roles={"admin"},
        nova=SimpleNamespace(servers=SimpleNamespace(get_console_output=lambda sid: console)),
    )
    args = {
        "project_id": "pd",
        "floating_network_id": "ext",
        "server": "srv1",
        "known_hosts": str(kh),
    }
    FloatingIPDriver().create(cloud, args, ApplyContext())
    assert kh.read_text() == f"172.24.4.10 {ED25519[0]} {ED25519[1]}\n"
