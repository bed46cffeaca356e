"""server_groups, and servers joining one, against the real local cloud.

apply (a group and a server in it) -> apply again (0 writes) -> out of band, the group is
deleted and made again by hand with another policy -> the plan replaces the group and,
through the server's reference, the server (both destructive, held back without
--allow-destroy) -> apply with permission converges, the server in the new group ->
state: absent deletes both -> absent again writes nothing.
"""

from __future__ import annotations

import contextlib
import secrets

import pytest

from tests.integration.conftest import UniqueName
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest
from tests.integration.test_compute_kinds import cleanup, raw_disk  # noqa: F401 (fixture)


@pytest.fixture
def unique_name():
    """This file's prefix (the `cleanup` fixture deletes what starts with it)."""
    return UniqueName(f"ck-{secrets.token_hex(3)}-")


@pytest.fixture
def groups_cleanup(unique_name, cleanup):  # noqa: F811
    yield
    nova = connect().nova
    for g in nova.server_groups.list(all_projects=True):
        if g.name.startswith(unique_name):
            with contextlib.suppress(Exception):
                nova.server_groups.delete(g.id)


def ok(run) -> None:
    assert run.result is not None, "nothing was applied"
    assert run.result.ok, {str(r.address): repr(r.error) for r in run.result.failed}


def changes(p) -> dict[str, tuple[str, list[str], bool]]:
    return {
        str(c.address): (c.action.value, sorted(f.field for f in c.fields), c.destructive)
        for c in p.changes
        if c.is_change
    }


BASE = """
projects:
  - name: admin
images:
  - {name: {n}img, source: {file: disk.raw}, disk_format: raw, container_format: bare}
flavors:
  - {name: {n}tiny, vcpus: 1, ram: 64, disk: 1}
networks:
  - {name: {n}net, project: admin}
subnets:
  - {name: {n}sub, project: admin, network: {n}net, cidr: 10.%d.%d.0/24}
server_groups:
  - name: {n}grp
    project: admin
    policy: soft-anti-affinity
  - name: {n}spread
    project: admin
    policy: anti-affinity
    rules: {max_server_per_host: 2}
servers:
  - name: {n}vm
    project: admin
    image: {n}img
    flavor: {n}tiny
    networks: [{n}net]
    server_group: {n}grp
"""


def groups_named(nova, name: str) -> list:
    return [g for g in nova.server_groups.list(all_projects=True) if g.name == name]


def server_named(nova, name: str):
    (s,) = [s for s in nova.servers.list(search_opts={"all_tenants": 1}) if s.name == name]
    return s


@pytest.mark.lifecycle("server_groups")
def test_server_groups_lifecycle(tmp_path, unique_name, groups_cleanup):
    n = unique_name
    raw_disk(tmp_path / "disk.raw", n)
    token = n.rstrip("-").rsplit("-", 1)[-1]  # the random hex, whatever the prefix
    a, b = int(token[0:2], 16), int(token[2:4], 16)
    text = (BASE % (a, b)).replace("{n}", n)
    path = write_manifest(tmp_path, text)
    group, server = f"server_groups.admin/{n}grp", f"servers.admin/{n}vm"

    first = apply(path)
    ok(first)
    assert first.actions()[group] == "create" and first.actions()[server] == "create"
    assert_converged(path)
    nova = connect().nova
    (live,) = groups_named(nova, f"{n}grp")
    vm = server_named(nova, f"{n}vm")
    assert (live.policy, live.members) == ("soft-anti-affinity", [vm.id])
    # The local cloud's scheduler has no (anti-)affinity filters enabled, only the soft
    # policies' weighers: the group with rules holds no server here.
    (spread,) = groups_named(nova, f"{n}spread")
    assert (spread.policy, spread.rules) == ("anti-affinity", {"max_server_per_host": 2})

    # Out of band: the group is deleted and made again with another policy.
    nova.server_groups.delete(live.id)
    nova.server_groups.create(f"{n}grp", "soft-affinity")
    drift = plan(path)
    assert changes(drift) == {
        group: ("replace", ["policy"], True),
        server: ("replace", ["server_group"], True),
    }
    held = apply(path)
    assert held.writes == 0 and {str(r.address) for r in held.result.held} == {group, server}
    ok(apply(path, allow_destroy=True))
    assert_converged(path)
    (live,) = groups_named(nova, f"{n}grp")
    vm2 = server_named(nova, f"{n}vm")
    assert live.policy == "soft-anti-affinity" and live.members == [vm2.id] and vm2.id != vm.id

    absent_text = text.replace(
        f"server_group: {n}grp\n", f"server_group: {n}grp\n    state: absent\n"
    ).replace("policy: soft-anti-affinity\n", "policy: soft-anti-affinity\n    state: absent\n")
    absent = write_manifest(tmp_path, absent_text, "absent.yaml")
    gone = apply(absent, allow_destroy=True)
    ok(gone)
    assert {k: v for k, v in gone.actions().items() if k in (group, server)} == {
        group: "delete",
        server: "delete",
    }
    assert groups_named(nova, f"{n}grp") == []
    again = apply(absent)
    assert again.actions() == {} and again.writes == 0


def test_server_group_no_op_plan_costs_one_list(tmp_path, unique_name, groups_cleanup):
    """The servers' group membership is one more list call, not one per server."""
    n = unique_name
    text = "projects: [{name: admin}]\nserver_groups:\n" + "".join(
        f"  - {{name: {n}g{i}, project: admin, policy: affinity}}\n" for i in range(3)
    )
    path = write_manifest(tmp_path, text)
    ok(apply(path))
    assert_converged(path)
    base = plan(path).requests
    more = write_manifest(
        tmp_path,
        text + f"  - {{name: {n}g3, project: admin, policy: soft-affinity}}\n",
        "more.yaml",
    )
    ok(apply(more))
    assert plan(more).requests == base
