"""Text renderings for `validate` and `graph`. Pure functions: strings in, strings out.

Nothing here sees a secret's value: diagnostics never contain one and graph output holds
addresses only; the CLI still passes every text through `mask_secrets` as a last guard.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx

from bootstrap.errors import Diagnostic


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def diagnostics_text(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(d.format() for d in diagnostics)


def validate_summary(diagnostics: list[Diagnostic], resources: int, files: int) -> str:
    """`ok: 23 resources in 2 files` or `3 errors, 1 warning`."""
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    if errors:
        text = _plural(errors, "error")
        return text + (f", {_plural(warnings, 'warning')}" if warnings else "")
    text = f"ok: {_plural(resources, 'resource')} in {_plural(files, 'file')}"
    return text + (f" ({_plural(warnings, 'warning')})" if warnings else "")


def validate_text(diagnostics: list[Diagnostic], resources: int, files: int) -> str:
    lines = [d.format() for d in diagnostics]
    lines.append(validate_summary(diagnostics, resources, files))
    return "\n".join(lines)


def validate_json(diagnostics: list[Diagnostic], resources: int) -> str:
    doc: dict[str, Any] = {
        "version": 1,
        "valid": not any(d.is_error for d in diagnostics),
        "resources": resources,
        "diagnostics": [d.to_json() for d in diagnostics],
    }
    return json.dumps(doc, indent=2)


def _label(g: nx.DiGraph, node: Any) -> str:
    return f"{node} (delete)" if g.nodes[node].get("state") == "absent" else str(node)


def graph_text(g: nx.DiGraph, stages: list[list[Any]]) -> str:
    """One line per stage: `stage 1 (parallel): domains.x, projects.y`."""
    if not stages:
        return "no resources"
    lines = []
    for i, stage in enumerate(stages, 1):
        tag = " (parallel)" if len(stage) > 1 else ""
        lines.append(f"stage {i}{tag}: " + ", ".join(_label(g, n) for n in stage))
    return "\n".join(lines)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(g: nx.DiGraph, stages: list[list[Any]]) -> str:
    """Graphviz: dependency -> dependent; implicit edges dashed, deletions grey."""
    lines = ["digraph manifest {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    for stage in stages:
        for n in stage:
            style = ' [style=dashed, color=grey, label="delete ' + str(n) + '"]'
            extra = style if g.nodes[n].get("state") == "absent" else ""
            lines.append(f"  {_dot_quote(str(n))}{extra};")
    for u, v, data in sorted(g.edges(data=True), key=lambda e: (str(e[0]), str(e[1]))):
        attrs = [f"label={_dot_quote(str(data.get('field', '')))}"]
        if data.get("implicit"):
            attrs.append("style=dashed")
        lines.append(f"  {_dot_quote(str(u))} -> {_dot_quote(str(v))} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines)


def graph_mermaid(g: nx.DiGraph, stages: list[list[Any]]) -> str:
    """Mermaid flowchart: ids n0, n1 ... (addresses contain `/` and `.`), labels quoted."""
    ids: dict[Any, str] = {}
    lines = ["flowchart LR"]
    for stage in stages:
        for n in stage:
            ids[n] = f"n{len(ids)}"
            label = _label(g, n).replace('"', "#quot;")
            lines.append(f'  {ids[n]}["{label}"]')
    for u, v, data in sorted(g.edges(data=True), key=lambda e: (ids[e[0]], ids[e[1]])):
        arrow = "-.->" if data.get("implicit") else "-->"
        lines.append(f"  {ids[u]} {arrow} {ids[v]}")
    return "\n".join(lines)
