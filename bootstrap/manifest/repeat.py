"""`for_each:` on a resource: one resource stamped per item of a list or a map.

Over a map, `${each.key}` is the key and `${each.value}` its value; over a list of
strings or numbers both are the item; over a list of maps the key is the item's `name`.
Stamped resources keep the template's positions, and remember their item's key so
diagnostics can name it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bootstrap.errors import Source
from bootstrap.manifest.lang import _FAILED, Each, Interpolator, Report, Variables, type_of
from bootstrap.manifest.yaml import YList, YMap

FOR_EACH = "for_each"
MAX_STAMPED = 10_000  # per template: a typo'd range should not build a million resources


class Stamped(YMap):
    """A resource made by for_each from a template, for the item `each_key`."""

    __slots__ = ("each_key",)

    def __init__(self, start: Source, each_key: str):
        super().__init__(start)
        self.each_key = each_key


def expand(
    root: YMap,
    sections: set[str],
    variables: Variables,
    report: Report,
    failed: set[Source],
    literal: bool = False,
) -> YMap:
    """The file with every `${...}` evaluated and every for_each stamped out; `literal`:
    the file has no `${` (File.literal), so only for_each can change it."""
    tree = _evaluator(variables, report, failed, literal)
    out = YMap(root.start)
    for key, value in root.items():
        if key == "vars":
            continue  # declarations, read already (their defaults are evaluated on use)
        out.key_src[key], out.val_src[key] = root.key_src[key], root.val_src[key]
        if key in sections and isinstance(value, YList):
            out[key] = section(value, variables, report, failed, literal)
        else:
            out[key] = tree(value, root.val_src[key])
    return out


def section(
    items: YList, variables: Variables, report: Report, failed: set[Source], literal: bool
) -> YList:
    tree = _evaluator(variables, report, failed, literal)
    if not any(isinstance(node, YMap) and FOR_EACH in node for node in items):
        return tree(items, items.start)
    out = YList(items.start)
    for node, src in zip(items, items.item_src, strict=True):
        if not (isinstance(node, YMap) and FOR_EACH in node):
            out.append(tree(node, src))
            out.item_src.append(src)
            continue
        for stamped in stamp(node, variables, report, failed):
            out.append(stamped)
            out.item_src.append(src)
    return out


def _evaluator(
    variables: Variables, report: Report, failed: set[Source], literal: bool
) -> Callable[[Any, Source | None], Any]:
    """What evaluates `${...}` in a tree outside for_each: nothing to do in a literal file."""
    if literal:
        return lambda node, _src: node
    return Interpolator(variables, None, report, failed).tree


def stamp(
    template: YMap, variables: Variables, report: Report, failed: set[Source]
) -> list[Stamped]:
    where = template.val_src[FOR_EACH]
    over = Interpolator(variables, None, report, failed).value(template[FOR_EACH], where)
    if over is _FAILED:
        return []
    pairs = items_of(over, where, report)
    seen: dict[str, Source] = {}
    out: list[Stamped] = []
    for key, value, src in pairs:
        if key in seen:
            first = "" if seen[key] == src else f" (first from {seen[key]})"
            report(f"for_each makes two resources for the key '{key}'{first}", src)
            continue
        seen[key] = src
        interp = Interpolator(variables, Each(key, value), report, failed)
        node = Stamped(template.start, key)
        for k, v in template.items():
            if k == FOR_EACH:
                continue
            node[k] = interp.tree(v, template.val_src[k])
            node.key_src[k], node.val_src[k] = template.key_src[k], template.val_src[k]
        out.append(node)
    return out


def items_of(over: Any, where: Source, report: Report) -> list[tuple[str, Any, Source]]:
    """(key, value, where the item was written) for each item for_each runs over."""
    if isinstance(over, dict):
        srcs = over.val_src if isinstance(over, YMap) else {}
        return [(str(k), v, srcs.get(k, where)) for k, v in over.items()][:MAX_STAMPED]
    if not isinstance(over, list):
        report(f"for_each needs a list or a map, got a {type_of(over)}", where)
        return []
    if len(over) > MAX_STAMPED:
        report(f"for_each over {len(over):,} items; at most {MAX_STAMPED:,}", where)
        return []
    srcs = over.item_src if isinstance(over, YList) else [where] * len(over)
    out = []
    for v, src in zip(over, srcs, strict=True):
        if isinstance(v, bool) or v is None:
            report(f"for_each items are strings, numbers or maps with a name, got {v!r}", src)
        elif isinstance(v, (str, int, float)):
            out.append((str(v), v, src))
        elif isinstance(v, dict) and isinstance(v.get("name"), (str, int)):
            out.append((str(v["name"]), v, src))
        else:
            report(
                f"for_each over a list of {type_of(v)}s: each item needs a name "
                "(or use a map: its keys are the items' keys)",
                src,
            )
    return out
