"""Stacks on the real local cloud: each manifest prunes only what its own stack marked.

Every stack here is named after the run's unique prefix, so a prune never reaches other
runs' (or other engineers') resources on the shared cloud.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bootstrap import cli
from bootstrap.drivers import _glance, _keystone, _neutron
from bootstrap.errors import PlanError
from tests.integration.engine_util import apply, connect, plan, write_manifest
from tests.integration.test_compute_kinds import cleanup, raw_disk  # noqa: F401 - a fixture


def ok(run) -> None:
    assert run.result is not None, "nothing was applied"
    failed = {str(r.address): repr(r.error) for r in run.result.failed}
    assert run.result.ok, failed


def deletes(the_plan) -> dict[str, str]:
    return {str(c.address): c.reason for c in the_plan.changes if c.action.value == "delete"}


def updates(the_plan) -> dict[str, list]:
    return {
        str(c.address): [(f.field, f.before, f.after) for f in c.fields]
        for c in the_plan.changes
        if c.action.value == "update"
    }


def project_id(name: str) -> str:
    (p,) = [p for p in connect().keystone.projects.list() if p.name == name]
    return p.id


def test_prune_without_a_stack_is_refused_before_reading(tmp_path, capsys):
    path = write_manifest(tmp_path, "projects:\n  - name: admin\n")
    assert cli.main(["plan", path, "--cloud", "no-such-cloud", "--prune"]) == cli.EXIT_ERROR
    # The cloud name is unknown: refused before even connecting.
    assert "--prune needs a stack" in capsys.readouterr().err


def test_two_stacks_side_by_side_each_prunes_only_its_own(tmp_path, unique_name, cleanup):  # noqa: F811
    n = unique_name
    a_full = f"""
    stack: {n}a
    projects:
      - name: {n}a1
      - name: {n}a2
    users:
      - name: {n}a-user
    roles:
      - name: member
        managed: false
    role_assignments:
      - {{role: member, user: {n}a-user, project: {n}a1}}
    networks:
      - {{name: {n}a-net, project: {n}a1}}
    """
    b_full = f"""
    stack: {n}b
    projects:
      - name: {n}b1
      - name: {n}b2
    networks:
      - {{name: {n}b-net, project: {n}b1}}
    """
    ok(apply(write_manifest(tmp_path, a_full, "a.yaml")))
    ok(apply(write_manifest(tmp_path, b_full, "b.yaml")))
    a_keep = write_manifest(
        tmp_path,
        f"stack: {n}a\nprojects:\n  - name: {n}a1\nusers:\n  - name: {n}a-user\n",
        "a2.yaml",
    )
    b_keep = write_manifest(
        tmp_path,
        f"stack: {n}b\nprojects:\n  - name: {n}b1\n"
        f"networks:\n  - {{name: {n}b-net, project: {n}b1}}\n",
        "b2.yaml",
    )
    # Exactly the stack's dropped resources: nothing of stack b, nor of any other run.
    assert set(deletes(plan(a_keep, prune=True))) == {
        f"projects.{n}a2",
        f"networks.{n}a1/{n}a-net",
        f"role_assignments.member/user:{n}a-user/project:{n}a1",
    }
    assert set(deletes(plan(b_keep, prune=True))) == {f"projects.{n}b2"}
    ok(apply(a_keep, prune=True))
    ok(apply(b_keep, prune=True))
    names = {p.name for p in connect().keystone.projects.list()}
    assert {f"{n}a1", f"{n}b1"} <= names and not {f"{n}a2", f"{n}b2"} & names
    assert plan(a_keep, prune=True).has_changes is False
    assert plan(b_keep, prune=True).has_changes is False


def compute_manifest(n: str, stack: str | None, server: bool = True) -> str:
    head = f"stack: {stack}\n" if stack else ""
    text = f"""{head}
projects:
  - name: {n}p
users:
  - {{name: admin, managed: false}}
roles:
  - {{name: member, managed: false}}
role_assignments:
  - {{role: member, user: admin, project: {n}p}}
images:
  - name: {n}img
    project: {n}p
    source: {{file: disk.raw}}
    disk_format: raw
    container_format: bare
flavors:
  - {{name: {n}tiny, vcpus: 1, ram: 64, disk: 1}}
security_groups:
  - {{name: {n}web, project: {n}p}}
networks:
  - {{name: {n}net, project: {n}p}}
subnets:
  - {{name: {n}sub, project: {n}p, network: {n}net, cidr: 10.93.7.0/24}}
routers:
  - {{name: {n}router, project: {n}p, interfaces: [{n}sub]}}
"""
    if server:
        text += f"""servers:
  - name: {n}vm
    project: {n}p
    image: {n}img
    flavor: {n}tiny
    networks: [{n}net]
    security_groups: [{n}web]
    timeout: 300
"""
    return text


def test_markers_made_before_stacks_are_adopted_by_the_next_apply(
    tmp_path: Path, unique_name, cleanup  # noqa: F811
):
    n = unique_name
    raw_disk(tmp_path / "disk.raw", n)
    legacy = write_manifest(tmp_path, compute_manifest(n, None), "legacy.yaml")
    ok(apply(legacy))  # markers without a stack, as before stacks
    stacked = write_manifest(tmp_path, compute_manifest(n, f"{n}s"), "stacked.yaml")
    pid = project_id(f"{n}p")
    upgrade = plan(stacked)
    marked = [("stack", None, f"{n}s")]
    assert updates(upgrade) == {
        f"projects.{n}p": marked,
        f"images.{n}img": marked,
        f"security_groups.{n}p/{n}web": marked,
        f"networks.{n}p/{n}net": marked,
        f"subnets.{n}p/{n}sub": marked,
        f"routers.{n}p/{n}router": marked,
        f"servers.{n}p/{n}vm": marked,
    }
    ok(apply(stacked))
    c = connect()
    project = c.keystone.projects.get(pid)
    assert project._info.get(_keystone.STACK_ATTR) == f"{n}s"
    (image,) = [i for i in c.glance.images.list(filters={"owner": pid}) if i["name"] == f"{n}img"]
    assert image[_glance.STACK_PROP] == f"{n}s"
    (network,) = c.network.networks(name=f"{n}net", project_id=pid)
    assert {_neutron.MARKER_TAG, f"stack:{n}s"} <= set(network.tags)
    (server,) = c.nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{n}vm$"})
    assert f"stack:{n}s" in c.nova.servers.tag_list(server)
    again = apply(stacked)
    assert again.actions() == {} and again.writes == 0
    # Dropped from the manifest, now the stack's: pruned (the server, not what it uses).
    no_server = write_manifest(tmp_path, compute_manifest(n, f"{n}s", server=False), "ns.yaml")
    assert set(deletes(plan(no_server, prune=True))) == {f"servers.{n}p/{n}vm"}


def test_another_stacks_resource_is_refused_then_adopted(tmp_path, unique_name, cleanup):  # noqa: F811
    n = unique_name
    text = textwrap.dedent(
        f"""
        projects:
          - name: {n}shared
        networks:
          - {{name: {n}snet, project: {n}shared}}
        """
    )
    ok(apply(write_manifest(tmp_path, f"stack: {n}a\n" + text, "a.yaml")))
    b = write_manifest(tmp_path, f"stack: {n}b\n" + text, "b.yaml")
    with pytest.raises(PlanError, match=f"belongs to stack '{n}a'.*--adopt"):
        plan(b)
    pid = project_id(f"{n}shared")
    taken = plan(b, adopt=True)
    taken_from_a = [("stack", f"{n}a", f"{n}b")]
    assert updates(taken) == {
        f"projects.{n}shared": taken_from_a,
        f"networks.{n}shared/{n}snet": taken_from_a,
    }
    ok(apply(b, adopt=True))
    (network,) = connect().network.networks(name=f"{n}snet", project_id=pid)
    assert f"stack:{n}b" in network.tags and f"stack:{n}a" not in network.tags
    assert apply(b).actions() == {}  # stack b's now, no --adopt needed
    other_a = write_manifest(tmp_path, f"stack: {n}a\nprojects:\n  - name: {n}a-other\n", "o.yaml")
    assert deletes(plan(other_a, prune=True)) == {}  # stack a no longer owns them


def test_a_lost_marker_is_warned_about_and_adopt_marks_it(tmp_path, unique_name, cleanup):  # noqa: F811
    """What a kill between Neutron's create and its tag step leaves: a declared network
    without the marker. The plan warns; `--adopt` marks it as a planned update."""
    n = unique_name
    path = write_manifest(
        tmp_path,
        f"stack: {n}s\nprojects:\n  - name: {n}p\n"
        f"networks:\n  - {{name: {n}net, project: {n}p}}\n",
    )
    ok(apply(path))
    c = connect()
    (network,) = c.network.networks(name=f"{n}net", project_id=project_id(f"{n}p"))
    c.network.set_tags(network, [])  # out of band: the tag step never ran
    warned = plan(path)
    assert not warned.has_changes
    (warning,) = [d for d in warned.diagnostics if "ownership marker" in d.summary]
    assert f"networks.{n}p/{n}net" in warning.summary and f"projects.{n}p" not in warning.summary
    assert updates(plan(path, adopt=True)) == {
        f"networks.{n}p/{n}net": [("stack", "(unmarked)", f"{n}s")]
    }
    ok(apply(path, adopt=True))
    (network,) = c.network.networks(name=f"{n}net", project_id=project_id(f"{n}p"))
    assert {_neutron.MARKER_TAG, f"stack:{n}s"} <= set(network.tags)
    after = plan(path)
    assert not after.has_changes
    assert not [d for d in after.diagnostics if "ownership marker" in d.summary]


def test_deleting_a_project_deletes_its_contents_first_and_foreign_ones_block(
    tmp_path: Path, unique_name, cleanup  # noqa: F811
):
    n = unique_name
    raw_disk(tmp_path / "disk.raw", n)
    full = write_manifest(tmp_path, compute_manifest(n, f"{n}s"), "full.yaml")
    ok(apply(full))
    pid = project_id(f"{n}p")
    gone = write_manifest(
        tmp_path,
        f"stack: {n}s\nprojects:\n  - name: {n}p\n    state: absent\n"
        f"flavors:\n  - {{name: {n}tiny, vcpus: 1, ram: 64, disk: 1}}\n",
        "gone.yaml",
    )
    sdk = connect().network
    foreign = sdk.create_network(name=f"{n}foreign", project_id=pid)
    blocked = f"cannot delete projects.{n}p: it holds network '{n}foreign'"
    with pytest.raises(PlanError, match=blocked):
        plan(gone)
    sdk.delete_network(foreign)
    the_plan = plan(gone)
    inside = f"in projects.{n}p, which is deleted"
    assert deletes(the_plan) == {
        f"projects.{n}p": "state: absent",
        f"servers.{n}p/{n}vm": inside,
        f"routers.{n}p/{n}router": inside,
        f"subnets.{n}p/{n}sub": inside,
        f"networks.{n}p/{n}net": inside,
        f"security_groups.{n}p/{n}web": inside,
        f"security_groups.{n}p/default": inside,
        f"images.{n}img": inside,
    }
    run = apply(gone)
    ok(run)
    finished = [str(a) for a in run.result.results if run.result.results[a].outcome == "deleted"]
    assert finished[-1] == f"projects.{n}p"
    assert finished.index(f"servers.{n}p/{n}vm") < finished.index(f"networks.{n}p/{n}net")
    assert finished.index(f"routers.{n}p/{n}router") < finished.index(f"subnets.{n}p/{n}sub")
    c = connect()
    assert f"{n}p" not in {p.name for p in c.keystone.projects.list()}
    # Listed unfiltered: Neutron makes a project's default group when a list filters by it.
    assert [g.name for g in c.network.security_groups() if g.project_id == pid] == []
    assert list(c.network.networks(project_id=pid)) == []
    assert apply(gone).actions() == {}
