"""Plan errors of quotas and application credentials that no golden case can express
(the decision raises instead of returning a change)."""

from __future__ import annotations

import os
import stat

import pytest

from bootstrap.drivers.application_credentials import (
    ApplicationCredentialDriver,
    FileExists,
    timestamp,
    write_secret,
)
from bootstrap.drivers.quotas import VOLUME_TYPES, InCatalog, QuotaDriver
from bootstrap.errors import PlanError
from bootstrap.model import Address, Ref, Resource
from bootstrap.plan import Observed, Resolver

ACME = Address("projects", ("acme",))


def quota(spec: dict, state: str = "present") -> Resource:
    spec = {"project": Ref(ACME), **spec}
    return Resource(QuotaDriver.address(spec), spec, state)


def test_volume_quotas_without_block_storage_fail_the_plan():
    driver = QuotaDriver()
    res = quota({"volume": {"volumes": 5}})
    with pytest.raises(PlanError, match="no block-storage service"):
        driver.diff(res, None, Resolver({ACME: "pa"}), {InCatalog(VOLUME_TYPES): False})
    # With the service in the catalog the same manifest plans.
    change = driver.diff(res, None, Resolver({ACME: "pa"}), {InCatalog(VOLUME_TYPES): True})
    assert change.action.value == "create"


def test_a_quota_key_the_cloud_lacks_fails_the_plan_naming_what_it_has():
    driver = QuotaDriver()
    live = Observed("pa", {"project_id": "pa", "network": {"port": 5, "router": 1}})
    with pytest.raises(PlanError, match="no network quota 'trunk'; it has: port, router"):
        driver.diff(quota({"network": {"trunk": 2}}), live, Resolver({ACME: "pa"}), {})


def cred(path: str) -> Resource:
    spec = {"name": "ci", "project": Ref(ACME), "secret_file": path}
    return Resource(ApplicationCredentialDriver.address(spec), spec, "present")


def test_a_credential_without_its_secret_file_is_a_plan_error():
    driver = ApplicationCredentialDriver()
    live = Observed("ac1", {"name": "ci", "own": True, "project": "pa"})
    res = cred("/nowhere/ci.secret")
    with pytest.raises(PlanError, match="secret file /nowhere/ci.secret does not"):
        driver.diff(res, live, Resolver({ACME: "pa"}), {FileExists("/nowhere/ci.secret"): False})
    change = driver.diff(
        res, live, Resolver({ACME: "pa"}), {FileExists("/nowhere/ci.secret"): True}
    )
    assert change.action.value == "no-op"


def test_secret_file_is_written_whole_and_private(tmp_path):
    path = tmp_path / "sub" / "ci.secret"
    write_secret(str(path), "s3cret")
    write_secret(str(path), "n3w")
    assert path.read_text() == "n3w\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(path.parent) == ["ci.secret"]  # no temporary file left


def test_expiry_timestamps_normalise_to_utc_seconds():
    assert timestamp("2027-01-01T00:00:00.000000") == "2027-01-01T00:00:00"
    assert timestamp("2027-01-01T01:00:00+01:00") == "2027-01-01T00:00:00"
    assert timestamp("2027-01-01T00:00:00Z") == "2027-01-01T00:00:00"
    assert timestamp(None) is None
