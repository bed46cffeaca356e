"""Cascades: a replaced resource changes what refers to it, and the plan says so.

Plans are made by the real drivers from raw observations (no I/O): what apply will run
for the dependents is in the plan, with the cause in the reason.
"""

from __future__ import annotations

from bootstrap.drivers.base import registry
from bootstrap.model import Address, Ref
from bootstrap.plan import Action, Observed, Pending, make_plan
from tests.unit.fakes import graph_of, manifest_of, resource

PROJECT = Address("projects", ("acme",))
FLAVOR = Address("flavors", ("m1",))
KEYPAIR = Address("keypairs", ("key",))
IMAGE = Address("images", ("cirros",))


def drivers():
    return {kind: cls() for kind, cls in registry().items()}


def server_observed(**fields):
    base = {
        "name": "web",
        "project_id": "p1",
        "status": "ACTIVE",
        "image": "img1",
        "flavor": "m1",
        "keypair": "key",
        "networks": [],
        "security_groups": [],
        "metadata": {},
    }
    return Observed("s1", {**base, **fields})


def plan_of(resources, observed):
    manifest = manifest_of(*resources)
    project = resource("projects", {"name": "acme"})
    project.managed = False
    manifest.resources[project.address] = project
    observed = {"projects": [Observed("p1", {"name": "acme", "domain_id": "default"})]} | observed
    plan, _ = make_plan(
        manifest,
        graph_of(manifest),
        drivers(),
        observed,
        {Address("domains", ("Default",)): "default"},
    )
    return plan.by_address()


def server(**spec):
    return resource(
        "servers", {"name": "web", "project": Ref(PROJECT), "flavor": Ref(FLAVOR), **spec}
    )


def test_flavor_replaced_under_a_server_plans_its_resize():
    flavor = resource("flavors", {"name": "m1", "vcpus": 2, "ram": 512})
    web = server()
    changes = plan_of(
        [flavor, web],
        {
            "flavors": [Observed("f1", {"name": "m1", "id": "f1", "vcpus": 1, "ram": 512})],
            "servers": [server_observed()],
        },
    )
    assert changes[FLAVOR].action is Action.REPLACE
    resize = changes[web.address]
    assert resize.action is Action.UPDATE and resize.destructive
    assert "because flavors.m1 is replaced" in resize.reason
    (step,) = resize.steps
    assert step.args["flavor"]["id"] == Pending(FLAVOR)


def test_unchanged_flavor_leaves_the_server_alone():
    flavor = resource("flavors", {"name": "m1", "vcpus": 1, "ram": 512})
    web = server()
    changes = plan_of(
        [flavor, web],
        {
            "flavors": [Observed("f1", {"name": "m1", "id": "f1", "vcpus": 1, "ram": 512})],
            "servers": [server_observed()],
        },
    )
    assert changes[web.address].action is Action.NOOP


def test_keypair_replaced_under_a_server_plans_its_replacement():
    key = resource("keypairs", {"name": "key", "public_key": "ssh-ed25519 BBBB new"})
    web = server(keypair=Ref(KEYPAIR))
    changes = plan_of(
        [resource("flavors", {"name": "m1"}), key, web],
        {
            "flavors": [Observed("f1", {"name": "m1", "id": "f1", "vcpus": 1, "ram": 512})],
            "keypairs": [
                Observed(
                    "me/key",
                    {
                        "name": "key",
                        "user_id": "me",
                        "own": True,
                        "type": "ssh",
                        "public_key": "ssh-ed25519 AAAA",
                    },
                )
            ],
            "servers": [server_observed()],
        },
    )
    assert changes[KEYPAIR].action is Action.REPLACE
    rebuilt = changes[web.address]
    assert rebuilt.action is Action.REPLACE
    assert "because keypairs.key is replaced" in rebuilt.reason
    assert [s.verb for s in rebuilt.steps] == ["delete", "create"]


def test_image_replaced_under_a_server_plans_its_rebuild():
    image = resource(
        "images",
        {"name": "cirros", "source": {"url": "http://127.0.0.1/new.img"}, "disk_format": "qcow2"},
    )
    web = server(image=Ref(IMAGE))
    changes = plan_of(
        [resource("flavors", {"name": "m1"}), image, web],
        {
            "flavors": [Observed("f1", {"name": "m1", "id": "f1", "vcpus": 1, "ram": 512})],
            "images": [
                Observed(
                    "img1",
                    {
                        "name": "cirros",
                        "status": "active",
                        "disk_format": "qcow2",
                        "digests": {},
                        "url_digest": "0" * 64,
                    },
                )
            ],
            "servers": [server_observed()],
        },
    )
    assert changes[IMAGE].action is Action.REPLACE
    rebuild = changes[web.address]
    assert rebuild.action is Action.UPDATE and rebuild.destructive
    assert "because images.cirros is replaced" in rebuild.reason
    assert rebuild.steps[0].args["image"] == Pending(IMAGE)
