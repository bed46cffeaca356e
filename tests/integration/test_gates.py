"""Destroy gates and lifecycle against the real local cloud (devcloud).

A destructive change without permission is held back while the safe changes of the same
plan are applied (exit 2 with --detailed-exitcode); prevent_destroy refuses a plan even
with --allow-destroy; ignore_changes leaves out-of-band drift alone; an image is replaced
create-before-destroy while a server uses it (the server is rebuilt onto the new image,
then the old one is deleted); a flavor change on a server is a resize, shown destructive.
"""

from __future__ import annotations

import pytest

from bootstrap import engine
from bootstrap.cli import main
from bootstrap.errors import PlanError
from tests.integration import test_compute_kinds as compute
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest


@pytest.fixture(autouse=True)
def cloud_env(devcloud_clouds_yaml, monkeypatch):
    """The CLI finds the local cloud the way a user's shell would: OS_CLIENT_CONFIG_FILE."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(devcloud_clouds_yaml))


@pytest.fixture
def leftovers(unique_name):
    """Delete what a test made under its unique prefix (the compute tests' cleanup)."""
    steps = compute.cleanup.__wrapped__(unique_name)
    next(steps)
    yield
    next(steps, None)


def cli(*args: str) -> int:
    return main([args[0], *args[1:], "--cloud", "devcloud"])


def project(n: str, name: str):
    ks = connect().keystone
    return compute.one(p for p in ks.projects.list() if p.name == f"{n}{name}")


PROJECTS = """
projects:
  - name: {n}parent
  - name: {n}child
  - name: {n}other
    description: first
"""


def test_partial_permission_holds_back_the_destructive_and_applies_the_rest(
    tmp_path, unique_name, leftovers, capsys
):
    n = unique_name
    first = write_manifest(tmp_path, PROJECTS.replace("{n}", n))
    assert cli("apply", first, "--yes") == 0
    child_id = project(n, "child").id
    moved = write_manifest(
        tmp_path,
        PROJECTS.replace("{n}child", "{n}child\n    parent: {n}parent")
        .replace("first", "second")
        .replace("{n}", n),
        "moved.yaml",
    )
    capsys.readouterr()
    # The plan says what apply would hold back under the same flags.
    assert cli("plan", moved, "--detailed-exitcode") == 2
    text = capsys.readouterr().out
    assert f"!-/+ projects.{n}child  (destructive: parent cannot change in place" in text
    assert f"held back: needs --allow-destroy (or --allow-destroy 'projects.{n}child')" in text
    assert "(1 destructive, 1 held back)" in text
    assert cli("plan", moved, "--format", "json", "--allow-destroy", f"projects.{n}*") == 0
    assert '"held_back": true' not in capsys.readouterr().out

    # Without permission: the safe change is applied, the replace held back, exit 2.
    assert cli("apply", moved, "--yes", "--detailed-exitcode") == 2
    out = capsys.readouterr().out
    assert "1 updated" in out and "1 held back" in out and "Held back (1), not applied:" in out
    assert project(n, "other").description == "second"
    assert project(n, "child").id == child_id  # untouched
    # Plain exit code: a successful partial apply is a success.
    assert cli("apply", moved, "--yes") == 0
    capsys.readouterr()

    # Allowed by pattern: the replace runs; then nothing is left to do.
    assert (
        cli("apply", moved, "--yes", "--detailed-exitcode", "--allow-destroy", f"projects.{n}c*")
        == 0
    )
    child = project(n, "child")
    assert child.id != child_id and child.parent_id == project(n, "parent").id
    assert cli("plan", moved, "--detailed-exitcode") == 0


def test_prevent_destroy_refuses_the_plan_even_with_allow_destroy(
    tmp_path, unique_name, leftovers, capsys
):
    n = unique_name
    keep = "projects:\n  - name: {n}keep\n    lifecycle: {prevent_destroy: true}\n"
    path = write_manifest(tmp_path, keep.replace("{n}", n))
    assert cli("apply", path, "--yes") == 0
    gone = write_manifest(tmp_path, (keep + "    state: absent\n").replace("{n}", n), "gone.yaml")
    capsys.readouterr()
    assert cli("apply", gone, "--yes", "--allow-destroy") == 1
    err = capsys.readouterr().err
    assert "gone.yaml:3:34: error: lifecycle.prevent_destroy: the plan would delete it" in err
    assert f"[projects.{n}keep]" in err
    assert project(n, "keep")  # still there
    with pytest.raises(PlanError, match="prevent_destroy"):
        plan(gone)


def test_ignore_changes_leaves_out_of_band_drift_alone(tmp_path, unique_name, leftovers):
    n = unique_name
    text = """
    projects:
      - name: {n}proj
        description: set on create
        enabled: true
        lifecycle: {ignore_changes: [description]}
    """
    path = write_manifest(tmp_path, text.replace("{n}", n))
    compute.ok(apply(path))
    p = project(n, "proj")
    assert p.description == "set on create"  # sent on create
    ks = connect().keystone
    ks.projects.update(p.id, description="owned by the billing team")
    assert plan(path).has_changes is False
    ks.projects.update(p.id, enabled=False)
    drifted = [c for c in plan(path).changes if c.is_change]
    assert [(str(c.address), [f.field for f in c.fields]) for c in drifted] == [
        (f"projects.{n}proj", ["enabled"])
    ]
    compute.ok(apply(path))
    p = project(n, "proj")
    assert p.enabled is True and p.description == "owned by the billing team"
    assert_converged(path)


def test_image_is_replaced_create_before_destroy_under_a_running_server(
    tmp_path, unique_name, leftovers
):
    n = unique_name
    base = compute.server_setup(tmp_path, n)
    path = compute.manifest(tmp_path, n, base + compute.SERVER)
    compute.ok(apply(path))
    cloud = connect()
    old = compute.one(i for i in cloud.glance.images.list() if i["name"] == f"{n}img")
    assert compute.live_server(cloud, n).image["id"] == old["id"]

    # New image data: the image is replaced (create first), the server rebuilt onto it.
    compute.raw_disk(tmp_path / "disk.raw", n + "-v2")
    the_plan, resolver = engine.plan(cloud, engine.load([path]))
    by = {str(c.address): c for c in the_plan.changes if c.is_change}
    image, server = by[f"images.{n}img"], by[f"servers.admin/{n}vm"]
    assert image.creates_first and [s.verb for s in image.steps] == ["create", "delete"]
    assert server.destructive and f"because images.{n}img is replaced" in server.reason
    assert set(by) == {f"images.{n}img", f"servers.admin/{n}vm"}

    events: list[tuple[str, str]] = []
    result = engine.apply(
        cloud,
        the_plan,
        resolver,
        allow_destroy=True,
        on_event=lambda c, status, err: events.append((str(c.address), status)),
    )
    assert result.ok, {str(r.address): repr(r.error) for r in result.failed}
    done = [e for e in events if e[1] != "start"]
    # The server was rebuilt before the replace finished (the old image deleted last).
    assert done == [(f"servers.admin/{n}vm", "updated"), (f"images.{n}img", "replaced")]
    new = compute.one(i for i in cloud.glance.images.list() if i["name"] == f"{n}img")
    assert new["id"] != old["id"]
    assert new["os_hash_value"] == compute.sha(tmp_path / "disk.raw", "sha512")
    assert compute.live_server(cloud, n).image["id"] == new["id"]
    assert_converged(path)


def test_flavor_change_on_a_server_is_a_destructive_resize(
    tmp_path, unique_name, leftovers, capsys
):
    n = unique_name
    base = compute.server_setup(tmp_path, n)
    path = compute.manifest(tmp_path, n, base + compute.SERVER)
    compute.ok(apply(path))
    resized = compute.manifest(
        tmp_path,
        n,
        base
        + compute.SERVER.replace("flavor: {n}tiny", "flavor: {n}small").replace(
            "role: web", "role: db"
        ),
        "resize.yaml",
    )
    capsys.readouterr()
    assert cli("plan", resized, "--detailed-exitcode") == 2
    text = capsys.readouterr().out
    head = f"!  ~ servers.admin/{n}vm  (destructive: a new flavor resizes the server"
    assert head in text and "held back: needs --allow-destroy" in text
    assert 'flavor: "' + n + 'tiny" -> "' + n + 'small"' in text
    assert cli("apply", resized, "--yes", "--detailed-exitcode") == 2
    server = compute.live_server(connect(), n)
    assert server.flavor["original_name"] == f"{n}tiny" and server.metadata == {"role": "web"}
