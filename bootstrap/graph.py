"""The dependency graph of a manifest.

Nodes are the Addresses of every resource (present and absent; the builtin Default domain
is not a node), each with attributes `resource` and `state`. An edge `u -> v` means
"v depends on u": v refers to u (attribute `field`, the spec path of the reference), or
needs it implicitly (`implicit=True`, `field` says why).

Walk order, for creates and deletes alike: use `walk_graph(g)`, whose edges mean "do u
before v". Between present resources it keeps the dependency edges (create/update the
dependency first); between absent resources it reverses them (delete the dependent first);
edges between a present and an absent resource impose no order (the loader already refused
a present resource that refers to an absent one). `stages(g)` is the topological
generations of `walk_graph(g)`: every resource of a stage can run in parallel once the
previous stages are done.

Self-references: a reference from inside a list item to the resource itself (a security
group rule allowing its own group) is not an edge: the driver creates the group, then its
rules. Any other cycle, e.g. two groups whose rules name each other or projects that are
each other's parents, is an error naming the cycle.
"""

from __future__ import annotations

import networkx as nx

from bootstrap.drivers.base import kinds, registry
from bootstrap.errors import Diagnostic
from bootstrap.model import Address, Manifest, Resource, ref_paths


def build(manifest: Manifest) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """The dependency graph (dependency -> dependent) and its problems (cycles)."""
    g = nx.DiGraph()
    for r in manifest:
        g.add_node(r.address, resource=r, state=r.state)
    for r in manifest:
        for path, ref in ref_paths(r.spec):
            dep = ref.address
            if dep in manifest.builtins or dep not in g:
                continue  # builtins are not nodes; unknown targets were reported by the loader
            if dep == r.address and ("[" in path or "." in path):
                continue  # a rule naming its own group: created after the group, not before
            if not g.has_edge(dep, r.address):
                g.add_edge(dep, r.address, field=path, implicit=False)
    # Dependencies no reference spells out, each declared by the driver that knows why.
    # None goes from an absent resource to a present one: a subnet being deleted does not
    # hold up what uses the network's other subnets (but a server being deleted goes
    # before the subnet being deleted).
    for driver in registry().values():
        for dep, dependent, why in driver.implicit_dependencies(manifest):
            if dep != dependent and not g.has_edge(dep, dependent):
                g.add_edge(dep, dependent, field=why, implicit=True)
    return g, _cycles(g, manifest)


def _source_key(r: Resource, files: list[str]) -> tuple:
    src = r.source
    if src is None:
        return (len(files), 0, 0)
    rank = files.index(src.file) if src.file in files else len(files)
    return (rank, src.line, src.column)


def _cycles(g: nx.DiGraph, manifest: Manifest) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for component in nx.strongly_connected_components(g):
        nodes = list(component)
        if len(nodes) == 1 and not g.has_edge(nodes[0], nodes[0]):
            continue
        edges = nx.find_cycle(g.subgraph(nodes))
        # Print in reference direction (a -> b: a refers to b), starting at the resource
        # written first, so the message reads like the manifest.
        cycle = [u for u, _v in reversed(edges)]
        where = [_source_key(g.nodes[a]["resource"], manifest.files) for a in cycle]
        start = where.index(min(where))
        cycle = cycle[start:] + cycle[:start]
        names = " -> ".join(str(a) for a in cycle + [cycle[0]])
        fields = []
        for i, a in enumerate(cycle):
            b = cycle[(i + 1) % len(cycle)]
            fields.append(f"{a}.{g.edges[b, a]['field']} -> {b}")
        first = g.nodes[cycle[0]]["resource"]
        out.append(
            Diagnostic(
                "error",
                f"dependency cycle: {names}",
                detail="; ".join(fields),
                address=str(cycle[0]),
                source=first.source,
            )
        )
    return out


def walk_graph(g: nx.DiGraph) -> nx.DiGraph:
    """Edges mean "do u before v" for the manifest alone (absent resources are deleted)."""
    absent = {n for n in g.nodes if g.nodes[n].get("state") == "absent"}
    w = order_graph(g, g.nodes, absent)
    w.add_nodes_from(g.nodes(data=True))
    return w


def order_graph(g: nx.DiGraph, nodes, deleting: set[Address]) -> nx.DiGraph:
    """THE run order of changes, apply's and `graph`'s alike: edges mean "u before v".

    Creates and updates follow dependencies; deletes run reversed (what uses a thing is
    deleted before the thing); a create and a delete impose no order on each other.
    """
    w = nx.DiGraph()
    w.add_nodes_from(nodes)
    for u, v in g.edges:
        if u == v or u not in w or v not in w:
            continue
        if u in deleting and v in deleting:
            w.add_edge(v, u)
        elif u not in deleting and v not in deleting:
            w.add_edge(u, v)
    return w


def stages(g: nx.DiGraph) -> list[list[Address]]:
    """Topological generations of the walk order; raises ValueError on a cycle."""
    try:
        generations = list(nx.topological_generations(walk_graph(g)))
    except nx.NetworkXUnfeasible:
        raise ValueError("the graph has a cycle; build() reported it") from None
    rank = {kind: i for i, kind in enumerate(kinds())}
    return [
        sorted(gen, key=lambda a: (rank.get(a.kind, len(rank)), a.key)) for gen in generations
    ]
