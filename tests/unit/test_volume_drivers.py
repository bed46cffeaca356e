"""Decisions of the Cinder kinds that golden cases cannot express (a refused plan)."""

from __future__ import annotations

import pytest

from bootstrap.drivers.volumes import VolumeDriver
from bootstrap.errors import PlanError
from bootstrap.model import Address, Lifecycle, Ref, Resource
from bootstrap.plan import Observed, Resolver

LIVE = {
    "name": "data",
    "project_id": "pp",
    "size": 10,
    "volume_type": "vt1",
    "image": None,
    "bootable": False,
    "description": "",
    "metadata": {},
    "status": "available",
}


def volume(size: int, ignore: frozenset[str] = frozenset()) -> Resource:
    spec = {"name": "data", "project": Ref(Address("projects", ("p",))), "size": size}
    return Resource(
        VolumeDriver.address(spec), spec, "present", lifecycle=Lifecycle(ignore_changes=ignore)
    )


def decide(resource: Resource):
    resolver = Resolver({Address("projects", ("p",)): "pp"})
    return VolumeDriver().diff(resource, Observed("v1", dict(LIVE)), resolver)


def test_a_smaller_size_is_refused_at_plan_time_naming_both_sizes():
    with pytest.raises(PlanError) as caught:
        decide(volume(5))
    text = str(caught.value)
    assert text.startswith("volumes.p/data: size 5 GiB is smaller than the live volume's 10 GiB")
    assert "cannot shrink" in text


def test_a_smaller_size_under_ignore_changes_is_not_refused():
    assert decide(volume(5, frozenset({"size"}))).action.value == "no-op"


def test_the_marker_keys_never_count_as_metadata():
    raw = type(
        "V",
        (),
        {
            "name": "data",
            "project_id": "pp",
            "size": 1,
            "volume_type_id": "vt1",
            "volume_image_metadata": {"image_id": "img1"},
            "is_bootable": True,
            "description": None,
            "status": "available",
            "id": "v1",
            "metadata": {"managed_by": "openstack-bootstrap", "bootstrap_stack": "s1", "a": 1},
        },
    )()
    obs = VolumeDriver().observe(raw)
    assert obs.fields["metadata"] == {"a": "1"}
    assert (obs.managed, obs.stack, obs.fields["image"]) == (True, "s1", "img1")
