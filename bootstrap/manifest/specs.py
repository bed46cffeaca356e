"""What the loader knows about one manifest item while checking it, and the declaration
paths ("rules[].remote_group") drivers use to name places in a spec."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from bootstrap import schema as schema_mod
from bootstrap.errors import Source
from bootstrap.manifest.yaml import YList, YMap, locate
from bootstrap.model import Address, Lifecycle, Ref


@cache  # a driver's few declaration paths, walked for every item
def _segments(decl: str) -> tuple[tuple[str, bool], ...]:
    """ "rules[].remote_group" -> (("rules", True), ("remote_group", False))."""
    return tuple((s[:-2], True) if s.endswith("[]") else (s, False) for s in decl.split("."))


def walk(value: Any, decl: str) -> Iterator[tuple[tuple, Any]]:
    """(spec path, value) for every place a declaration path names in a spec."""

    def go(v: Any, segs: tuple[tuple[str, bool], ...], path: tuple) -> Iterator[tuple[tuple, Any]]:
        if not segs:
            yield path, v
            return
        name, each = segs[0]
        if not isinstance(v, dict) or name not in v:
            return
        child = v[name]
        if not each:
            yield from go(child, segs[1:], path + (name,))
        elif isinstance(child, list):
            for i, item in enumerate(child):
                yield from go(item, segs[1:], path + (name, i))

    yield from go(value, _segments(decl), ())


def set_at(spec: dict, path: tuple, value: Any) -> None:
    node: Any = spec
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def get_at(spec: Any, path: tuple) -> Any:
    node = spec
    for part in path:
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_map or in_list:
            node = node[part]
        else:
            return None
    return node


def record_sources(node: Any, path: str, out: dict[str, Source]) -> None:
    """Where each value was written, keyed by its rendered path ("rules[0].port"); the
    path is rendered as it grows (schema.render_path's form), not again for every node."""
    if isinstance(node, YMap):
        for k, v in node.items():
            child = f"{path}.{k}" if path else str(k)
            out[child] = node.val_src[k]
            record_sources(v, child, out)
    elif isinstance(node, YList):
        for i, v in enumerate(node):
            child = f"{path}[{i}]"
            out[child] = node.item_src[i]
            record_sources(v, child, out)


def singular(kind: str) -> str:
    return kind.removesuffix("s").replace("_", " ")


def short_list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class Site:
    """One reference in a spec: where, to which kind, and what was written."""

    path: tuple
    decl: str
    target: str
    value: Any
    bad: bool
    ref: Ref | None = None


@dataclass(eq=False)
class Item:
    kind: str
    file: str
    real_file: str
    index: int
    node: YMap
    bad: list[tuple] = field(default_factory=list)  # spec-relative paths with schema errors
    state: str = "present"
    managed: bool = True
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    spec: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    sites: list[Site] = field(default_factory=list)
    address: Address | None = None
    duplicate: bool = False

    @property
    def label(self) -> str:
        return str(self.address) if self.address else f"{self.kind}[{self.index}]"

    def src(self, path: tuple, at_key: bool = False) -> Source:
        # `sources` also knows fields the loader made (port -> port_range_min/max).
        known = None if at_key else self.sources.get(schema_mod.render_path(path))
        return known or locate(self.node, path, at_key) or self.node.start

    def is_bad(self, path: tuple) -> bool:
        if not self.bad:
            return False
        return any(b == path[: len(b)] or path == b[: len(path)] for b in self.bad)


@dataclass
class File:
    display: str
    real: str
    root: YMap
    layer: int = 0  # 0: the base; 1...: environments over it
    problems: list[schema_mod.Problem] = field(default_factory=list)
    # No string of the file can hold `${`: its text has neither `${` nor a backslash
    # (an escape such as "\x24{" is the only other way to write one).
    literal: bool = False
