"""Dependency graph: edges, implicit dependencies, walk order, stages, cycles."""

from __future__ import annotations

import textwrap
from pathlib import Path

import networkx as nx
import pytest

from bootstrap import graph, manifest
from bootstrap.model import Address


def build(tmp_path: Path, text: str):
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    m, diags = manifest.load([str(path)])
    assert m is not None
    g, more = graph.build(m)
    return m, g, diags + more


def names(stages) -> list[list[str]]:
    return [[str(a) for a in stage] for stage in stages]


def test_edges_point_from_dependency_to_dependent_with_the_field(tmp_path):
    _, g, diags = build(
        tmp_path,
        """
        domains: [{name: d}]
        projects: [{name: p, domain: d}, {name: q, domain: Default}]
        users: [{name: u, domain: d, default_project: p}]
        """,
    )
    assert diags == []
    p, d, u = (
        Address("projects", ("d", "p")),
        Address("domains", ("d",)),
        Address("users", ("d", "u")),
    )
    assert g.edges[d, p] == {"field": "domain", "implicit": False}
    assert g.edges[p, u]["field"] == "default_project"
    # The builtin Default domain is not a node.
    assert Address("domains", ("Default",)) not in g
    assert g.nodes[u]["resource"].address == u and g.nodes[u]["state"] == "present"
    assert names(graph.stages(g)) == [["domains.d", "projects.q"], ["projects.d/p"], ["users.d/u"]]


def test_implicit_edges_subnets_and_routers(tmp_path):
    m = Path(__file__).resolve().parents[1] / "cases" / "manifest" / "valid" / "network-stack.yaml"
    loaded, _ = manifest.load([str(m)])
    g, diags = graph.build(loaded)
    assert diags == []
    server = Address("servers", ("acme", "web"))
    fip = Address("floating_ips", ("acme", "web"))
    router = Address("routers", ("acme", "router"))
    subnet = Address("subnets", ("acme", "subnet"))
    public_subnet = Address("subnets", ("admin", "public-subnet"))
    assert g.edges[subnet, server]["implicit"] is True
    assert g.edges[router, fip]["implicit"] is True
    assert g.edges[public_subnet, router]["implicit"] is True  # the gateway needs an address
    assert g.edges[public_subnet, fip]["implicit"] is True
    # The default group's rule naming itself is not an edge.
    sg = Address("security_groups", ("acme", "default"))
    assert not g.has_edge(sg, sg)


def test_absent_resources_are_deleted_dependents_first(tmp_path):
    _, g, diags = build(
        tmp_path,
        """
        projects: [{name: keep}, {name: old, state: absent}]
        networks:
          - {name: net, project: old, state: absent}
          - {name: gone, project: keep, state: absent}
        subnets: [{name: s, project: old, network: net, state: absent}]
        """,
    )
    assert diags == []
    w = graph.walk_graph(g)
    old, net, s = (
        Address("projects", ("old",)),
        Address("networks", ("old", "net")),
        Address("subnets", ("old", "s")),
    )
    assert w.has_edge(s, net) and w.has_edge(net, old)  # reversed for deletes
    keep, gone = Address("projects", ("keep",)), Address("networks", ("keep", "gone"))
    assert g.has_edge(keep, gone) and not w.has_edge(keep, gone) and not w.has_edge(gone, keep)
    assert names(graph.stages(g)) == [
        ["projects.keep", "networks.keep/gone", "subnets.old/s"],
        ["networks.old/net"],
        ["projects.old"],
    ]


def test_cycle_is_reported_with_its_path_at_the_first_resource(tmp_path):
    _, g, diags = build(
        tmp_path,
        """
        projects:
          - {name: b, parent: c}
          - {name: a, parent: b}
          - {name: c, parent: a}
        """,
    )
    (d,) = diags
    assert d.summary == "dependency cycle: projects.b -> projects.c -> projects.a -> projects.b"
    assert (d.source.line, d.source.column) == (2, 5) and d.address == "projects.b"
    assert "projects.b.parent -> projects.c" in d.detail
    with pytest.raises(ValueError):
        graph.stages(g)


def test_self_parent_is_a_cycle_but_a_group_rule_naming_its_group_is_not(tmp_path):
    _, _, diags = build(
        tmp_path,
        """
        projects: [{name: a, parent: a}]
        security_groups: [{name: sg, project: a, rules: [{remote_group: sg}]}]
        """,
    )
    (d,) = diags
    assert d.summary == "dependency cycle: projects.a -> projects.a"


def test_stages_are_topological_generations():
    g = nx.DiGraph()
    a, b, c = (Address("projects", (n,)) for n in "abc")
    for n in (a, b, c):
        g.add_node(n, state="present")
    g.add_edge(a, c)
    g.add_edge(b, c)
    assert graph.stages(g) == [[a, b], [c]]


GRANTS = """
projects: [{name: acme}, {name: other}]
users: [{name: admin}]
roles: [{name: member}]
role_assignments:
  - {role: member, user: admin, project: acme}
  - {role: member, user: admin, project: other}
"""


@pytest.mark.parametrize(
    "kinds, made",
    [
        (
            """
images: [{name: img, source: {url: "https://example.org/i.img"}, checksum: "%s"}]
flavors: [{name: f, vcpus: 1, ram: 64, disk: 1}]
servers: [{name: web, project: acme, image: img, flavor: f}]
"""
            % ("a" * 64),
            Address("servers", ("acme", "web")),
        ),
        (
            "server_groups: [{name: spread, project: acme, policy: soft-anti-affinity}]\n",
            Address("server_groups", ("acme", "spread")),
        ),
    ],
    ids=["servers", "server_groups"],
)
def test_made_in_the_token_project_waits_for_role_assignments_there(tmp_path, kinds, made):
    """Servers and server groups are made with a token scoped to their project."""
    _, g, diags = build(tmp_path, GRANTS + kinds)
    assert not [d for d in diags if d.is_error], diags
    grant = Address("role_assignments", ("member", "user:admin", "project:acme"))
    other = Address("role_assignments", ("member", "user:admin", "project:other"))
    assert g.has_edge(grant, made) and g.edges[grant, made]["implicit"]
    assert not g.has_edge(other, made)
