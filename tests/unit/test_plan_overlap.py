"""`engine.plan_files`: the command line's plan, with the connection made while the
manifest loads and the reads made while the graph is built. Same plan as load then
plan; errors in the same order (the manifest's first); a manifest error does not wait
for a slow connection."""

from __future__ import annotations

import threading
import time

import pytest

from bootstrap import engine
from bootstrap.errors import ConfigError, ManifestError
from tests.unit.fakes import MemoryCloud, fake_drivers

GOOD = """\
roles:
  - name: ovl-member
projects:
  - name: ovl-p
users:
  - name: ovl-u
    default_project: ovl-p
role_assignments:
  - {role: ovl-member, user: ovl-u, project: ovl-p}
"""
CYCLE_FREE_BUT_BROKEN = """\
projects:
  - name: ovl-p
    no_such_field: 1
"""


@pytest.fixture
def cloud():
    c = MemoryCloud()
    c.store["domains"]["default"] = {"name": "Default"}
    return c


def write(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return [str(path)]


def test_same_plan_as_load_then_plan(tmp_path, cloud):
    paths = write(tmp_path, GOOD)
    loaded, got_cloud, overlapped, _ = engine.plan_files(
        lambda: cloud, paths, drivers=fake_drivers()
    )
    plain, _ = engine.plan(cloud, engine.load(paths), drivers=fake_drivers())
    assert got_cloud is cloud
    assert [(str(c.address), c.action) for c in overlapped.changes] == [
        (str(c.address), c.action) for c in plain.changes
    ]
    assert sum(1 for c in overlapped.changes if c.is_change) == 4
    assert {"load", "graph", "connect", "clients", "reads", "diff"} <= set(overlapped.timings)


def test_the_manifest_error_wins_over_the_connection_error(tmp_path):
    def refused():
        raise ConfigError("cannot reach the identity service")

    with pytest.raises(ManifestError) as err:
        engine.plan_files(refused, write(tmp_path, CYCLE_FREE_BUT_BROKEN), drivers=fake_drivers())
    assert "no_such_field" in str(err.value.diagnostics)


def test_a_manifest_error_does_not_wait_for_a_slow_connection(tmp_path):
    release = threading.Event()

    def slow():
        release.wait(10)
        raise ConfigError("too late")

    t0 = time.monotonic()
    try:
        with pytest.raises(ManifestError):
            engine.plan_files(slow, write(tmp_path, CYCLE_FREE_BUT_BROKEN), drivers=fake_drivers())
        assert time.monotonic() - t0 < 5
    finally:
        release.set()


def test_the_connection_error_when_the_manifest_is_good(tmp_path):
    def refused():
        raise ConfigError("cannot reach the identity service")

    with pytest.raises(ConfigError, match="cannot reach"):
        engine.plan_files(refused, write(tmp_path, GOOD), drivers=fake_drivers())


def test_prune_without_a_stack_is_refused_before_anything_is_read(tmp_path, cloud):
    with pytest.raises(Exception, match="--prune needs a stack"):
        engine.plan_files(lambda: cloud, write(tmp_path, GOOD), prune=True, drivers=fake_drivers())
    assert [c for c in cloud.calls if c[0] == "list"] == []


def test_lists_that_need_no_manifest_are_read_while_it_loads(tmp_path, cloud, monkeypatch):
    """users, projects and role_assignments list the whole collection whatever the
    manifest holds (`Driver.reads_alone`): they are asked for while it loads (the load
    here waits to see them), and not asked for again once it has."""
    real_load = engine.load_manifest

    def load_once_listed(paths, options=None):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not {"projects", "users"} <= {
            kind for op, kind, _ in list(cloud.calls) if op == "list"
        }:
            time.sleep(0.01)
        return real_load(paths, options)

    monkeypatch.setattr(engine, "load_manifest", load_once_listed)
    t0 = time.monotonic()
    _, _, plan, _ = engine.plan_files(lambda: cloud, write(tmp_path, GOOD), drivers=fake_drivers())
    assert time.monotonic() - t0 < 4  # the load did not wait out its deadline
    lists = [kind for op, kind, _ in cloud.calls if op == "list"]
    assert sorted(lists) == sorted(set(lists))  # each kind listed once
    assert {"projects", "users", "role_assignments", "roles", "domains"} <= set(lists)
    assert sum(1 for c in plan.changes if c.is_change) == 4


def test_an_early_list_the_manifest_does_not_need_is_not_used(tmp_path, cloud):
    """The sections are guessed from the files' text: an empty `users: []` costs a
    list, never a change."""
    text = GOOD.replace("users:\n  - name: ovl-u\n    default_project: ovl-p\n", "")
    text = text.replace(
        "role_assignments:\n  - {role: ovl-member, user: ovl-u, project: ovl-p}\n", ""
    )
    path = tmp_path / "m.yaml"
    path.write_text(text + "users: []\n")
    plain, _ = engine.plan(cloud, engine.load([str(path)]), drivers=fake_drivers())
    cloud.calls.clear()
    _, _, overlapped, _ = engine.plan_files(lambda: cloud, [str(path)], drivers=fake_drivers())
    assert ("list", "users", "*") in cloud.calls
    assert "users" not in {c.address.kind for c in overlapped.changes}
    assert [(str(c.address), c.action) for c in overlapped.changes] == [
        (str(c.address), c.action) for c in plain.changes
    ]
