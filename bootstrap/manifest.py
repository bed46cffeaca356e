"""Load manifest files into a `Manifest`, reporting every problem at once, located.

Steps, each collecting diagnostics instead of stopping:
1. Read: files and folders (recursively *.yaml/*.yml, sorted); over 10 MB is refused
   before parsing; UTF-8 only.
2. Parse: PyYAML events composed here into dicts/lists that remember the line/column of
   every key and value. YAML 1.2 core scalars (only true/false are booleans, `yes`/`on`
   stay strings; dates stay strings). Refused: duplicate keys, non-string keys, anchors and
   aliases (no expansion can happen, so "billion laughs" costs nothing), tags other than the
   standard str/int/float/bool/null/map/seq, a second document, nesting deeper than 64.
3. Schema: the bundled JSON Schema (bootstrap/schema.py), errors mapped back to positions.
4. Specs: per the drivers' declarations (walked generically): bare-name list items and
   shorthand fields expanded, list-item defaults filled, secrets read, paths resolved.
5. Keys: kinds in an order where the kinds a natural key refers to come first (projects
   before networks before subnets ...), so every address is known before other references
   are resolved; a duplicate natural key is an error naming both places.
6. References: by name, qualified when needed, preferring the referrer's own scope.
7. Semantic checks no schema can express (CIDRs and pools, port ranges, public keys ...).
"""

from __future__ import annotations

import codecs
import dataclasses
import ipaddress
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from yaml.cyaml import CParser
from yaml.error import MarkedYAMLError, YAMLError
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.scanner import Scanner

from bootstrap import schema as schema_mod
from bootstrap.drivers.base import Driver, registry
from bootstrap.errors import Diagnostic, Source
from bootstrap.model import DEFAULT_DOMAIN, Address, Manifest, Ref, Resource, Secret

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_SECRET_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_REPORTS = 5  # per file; a bomb has dozens of aliases, one report is the point
YAML_SUFFIXES = (".yaml", ".yml")
STD_TAG = "tag:yaml.org,2002:"


# --- YAML with positions -----------------------------------------------------------------


class YMap(dict):
    """A mapping that remembers where each key and value was written."""

    __slots__ = ("start", "key_src", "val_src")

    def __init__(self, start: Source):
        super().__init__()
        self.start = start
        self.key_src: dict[str, Source] = {}
        self.val_src: dict[str, Source] = {}


class YList(list):
    """A sequence that remembers where each item was written."""

    __slots__ = ("start", "item_src")

    def __init__(self, start: Source):
        super().__init__()
        self.start = start
        self.item_src: list[Source] = []


class _Events(Reader, Scanner, Parser):
    """PyYAML's pure-Python event parser: same messages whether or not libyaml is built."""

    def __init__(self, text: str):
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)


_NULL = re.compile(r"^(?:~|null|Null|NULL)?$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


def resolve_plain(text: str) -> Any:
    """A plain scalar per the YAML 1.2 core schema (not PyYAML's YAML 1.1 rules)."""
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text, 10)
    if _INT_OCT.match(text):
        return int(text[2:], 8)
    if _INT_HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


_EMPTY = object()


class _Composer:
    """Builds YMap/YList trees from parser events, refusing what a manifest must not use."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.events: _Events
        self.file = file
        self.diags: list[Diagnostic] = []
        self.alias_count = 0

    def at(self, mark: Any) -> Source:
        return Source(self.file, mark.line + 1, mark.column + 1)

    def error(self, mark: Any, summary: str) -> None:
        self.diags.append(Diagnostic("error", summary, source=self.at(mark)))

    def compose(self, fast: bool = False) -> Any:
        # libyaml parses ~10x faster; its error messages differ, so a file it rejects is
        # parsed again by the pure-Python parser for the message (see parse_yaml).
        self.events = ev = CParser(self.text) if fast else _Events(self.text)
        ev.get_event()  # stream start
        if ev.check_event(StreamEndEvent):
            return _EMPTY
        ev.get_event()  # document start
        root = self.node(0)
        ev.get_event()  # document end
        if ev.check_event(DocumentStartEvent):
            self.error(
                ev.peek_event().start_mark,
                "a second YAML document ('---') in one file; put each document in its own file",
            )
        if self.alias_count > MAX_ALIAS_REPORTS:
            more = self.alias_count - MAX_ALIAS_REPORTS
            self.diags.append(
                Diagnostic(
                    "error",
                    f"... and {more} more YAML anchors/aliases (not supported)",
                    source=self.diags[-1].source if self.diags else Source(self.file, 1, 1),
                )
            )
        return root

    def _alias(self, mark: Any, what: str) -> None:
        self.alias_count += 1
        if self.alias_count <= MAX_ALIAS_REPORTS:
            self.error(
                mark,
                f"{what}: YAML anchors and aliases are not supported; write the value out "
                "(a manifest is reviewed as written, and aliases can expand exponentially)",
            )

    def _skip(self) -> None:
        depth = 0
        while True:
            ev = self.events.get_event()
            if isinstance(ev, CollectionStartEvent):
                depth += 1
            elif isinstance(ev, (MappingEndEvent, SequenceEndEvent)):
                depth -= 1
            if depth <= 0:
                return

    def node(self, depth: int) -> Any:
        ev = self.events.peek_event()
        if isinstance(ev, AliasEvent):
            self.events.get_event()
            self._alias(ev.start_mark, f"alias '*{ev.anchor}'")
            return None
        if ev.anchor is not None:
            self._alias(ev.start_mark, f"anchor '&{ev.anchor}'")
        if depth > MAX_DEPTH:
            self.error(ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            self._skip()
            return None
        if isinstance(ev, ScalarEvent):
            self.events.get_event()
            return self.scalar(ev)
        self._check_collection_tag(ev)
        if isinstance(ev, SequenceStartEvent):
            return self.sequence(depth)
        return self.mapping(depth)

    def _check_collection_tag(self, ev: Any) -> None:
        allowed = (None, "!", STD_TAG + ("seq" if isinstance(ev, SequenceStartEvent) else "map"))
        if ev.tag not in allowed:
            self.error(ev.start_mark, f"YAML tag '{_short_tag(ev.tag)}' is not supported")

    def scalar(self, ev: ScalarEvent) -> Any:
        tag = ev.tag
        if tag is None:
            # Plain style is None from PyYAML's parser and "" from libyaml.
            return resolve_plain(ev.value) if not ev.style else ev.value
        if tag == "!" or tag == STD_TAG + "str":
            return ev.value
        name = tag[len(STD_TAG) :] if tag.startswith(STD_TAG) else None
        expected = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}
        if name in expected:
            value = resolve_plain(ev.value)
            if name == "int" and isinstance(value, bool) or not isinstance(value, expected[name]):
                self.error(ev.start_mark, f"{ev.value!r} is not a valid !!{name}")
                return None
            return float(value) if name == "float" else value
        self.error(ev.start_mark, f"YAML tag '{_short_tag(tag)}' is not supported")
        return None

    def sequence(self, depth: int) -> YList:
        start = self.events.get_event()
        out = YList(self.at(start.start_mark))
        while not self.events.check_event(SequenceEndEvent):
            out.item_src.append(self.at(self.events.peek_event().start_mark))
            out.append(self.node(depth + 1))
        self.events.get_event()
        return out

    def mapping(self, depth: int) -> YMap:
        start = self.events.get_event()
        out = YMap(self.at(start.start_mark))
        while not self.events.check_event(MappingEndEvent):
            key_ev = self.events.peek_event()
            key_src = self.at(key_ev.start_mark)
            complex_key = not isinstance(key_ev, ScalarEvent)
            key = self.node(depth + 1)
            val_src = self.at(self.events.peek_event().start_mark)
            value = self.node(depth + 1)
            if complex_key:
                self.error(key_ev.start_mark, "mapping keys must be plain strings")
            elif not isinstance(key, str):
                shown = schema_mod.describe(key)
                self.diags.append(
                    Diagnostic(
                        "error",
                        f'mapping key {shown} must be a string (quote it: "{key_ev.value}")',
                        source=key_src,
                    )
                )
            elif key in out:
                first = out.key_src[key]
                self.diags.append(
                    Diagnostic(
                        "error",
                        f"duplicate key '{key}' (first written at line {first.line}, "
                        f"column {first.column})",
                        source=key_src,
                    )
                )
            else:
                out[key] = value
                out.key_src[key] = key_src
                out.val_src[key] = val_src
        self.events.get_event()
        return out


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(STD_TAG) :] if tag.startswith(STD_TAG) else tag


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_yaml(text: str, file: str) -> tuple[Any, list[Diagnostic]]:
    """The positioned tree of one document (`None` when unusable) and the problems found."""
    if yaml.__with_libyaml__:
        composer = _Composer(text, file)
        try:
            root = composer.compose(fast=True)
        except YAMLError:
            pass  # re-parsed below for PyYAML's own, located message
        else:
            if root is not _EMPTY and root is not None:
                return root, composer.diags
    composer = _Composer(text, file)
    try:
        root = composer.compose()
    except MarkedYAMLError as exc:
        return None, composer.diags + [_syntax_error(exc, text, file)]
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        summary = f"character {exc.character!r} is not allowed in YAML ({exc.reason})"
        return None, composer.diags + [Diagnostic("error", summary, source=Source(file, line, col))]
    except YAMLError as exc:  # defensive: every PyYAML error we know is one of the above
        return None, composer.diags + [
            Diagnostic("error", f"YAML error: {exc}", source=Source(file, 1, 1))
        ]
    if root is _EMPTY or root is None:
        return None, composer.diags + [
            Diagnostic("error", "empty manifest (no sections)", source=Source(file, 1, 1))
        ]
    return root, composer.diags


def _syntax_error(exc: MarkedYAMLError, text: str, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Diagnostic("error", f"YAML syntax error: {exc.problem}", source=Source(file, 1, 1))
    lines = text.split("\n")
    # Tabs cannot indent YAML; PyYAML's message ("cannot start any token") hides that.
    candidates = [m for m in (exc.problem_mark, exc.context_mark) if m is not None]
    for m in candidates:
        if m.line < len(lines):
            line = lines[m.line]
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            if "\t" in indent:
                return Diagnostic(
                    "error",
                    "tab character used for indentation; YAML indents with spaces only",
                    source=Source(file, m.line + 1, indent.index("\t") + 1),
                )
    summary = f"YAML syntax error: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        cm = exc.context_mark
        summary += f" ({exc.context} at line {cm.line + 1}, column {cm.column + 1})"
    elif exc.context:
        summary += f" ({exc.context})"
    return Diagnostic("error", summary, source=Source(file, mark.line + 1, mark.column + 1))


def locate(root: Any, path: tuple, at_key: bool = False) -> Source | None:
    """Position of the value (or key) at a JSON path; the deepest existing part wins."""
    src = getattr(root, "start", None)
    node = root
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, YMap) and part in node:
            src = node.key_src[part] if (last and at_key) else node.val_src[part]
            node = node[part]
        elif isinstance(node, YList) and isinstance(part, int) and 0 <= part < len(node):
            src = node.item_src[part]
            node = node[part]
        else:
            break
    return src


def plain(value: Any) -> Any:
    """A positioned tree as ordinary dicts and lists."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# --- declaration paths ---------------------------------------------------------------------


def _segments(decl: str) -> list[tuple[str, bool]]:
    """ "rules[].remote_group" -> [("rules", True), ("remote_group", False)]."""
    return [(s[:-2], True) if s.endswith("[]") else (s, False) for s in decl.split(".")]


def walk(value: Any, decl: str) -> Iterator[tuple[tuple, Any]]:
    """(spec path, value) for every place a declaration path names in a spec."""

    def go(v: Any, segs: list[tuple[str, bool]], path: tuple) -> Iterator[tuple[tuple, Any]]:
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


def _set(spec: dict, path: tuple, value: Any) -> None:
    node: Any = spec
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def _get(spec: Any, path: tuple) -> Any:
    node = spec
    for part in path:
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_map or in_list:
            node = node[part]
        else:
            return None
    return node


def _record_sources(node: Any, path: tuple, out: dict[str, Source]) -> None:
    if isinstance(node, YMap):
        for k, v in node.items():
            out[schema_mod.render_path(path + (k,))] = node.val_src[k]
            _record_sources(v, path + (k,), out)
    elif isinstance(node, YList):
        for i, v in enumerate(node):
            out[schema_mod.render_path(path + (i,))] = node.item_src[i]
            _record_sources(v, path + (i,), out)


def singular(kind: str) -> str:
    return kind.removesuffix("s").replace("_", " ")


def _short_list(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- loading -------------------------------------------------------------------------------


@dataclass
class _Site:
    """One reference in a spec: where, to which kind, and what was written."""

    path: tuple
    decl: str
    target: str
    value: Any
    bad: bool
    ref: Ref | None = None


@dataclass(eq=False)
class _Item:
    kind: str
    file: str
    real_file: str
    index: int
    node: YMap
    bad: list[tuple] = field(default_factory=list)  # spec-relative paths with schema errors
    state: str = "present"
    managed: bool = True
    spec: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    sites: list[_Site] = field(default_factory=list)
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
        return any(b == path[: len(b)] or path == b[: len(path)] for b in self.bad)


@dataclass
class _File:
    display: str
    real: str
    root: YMap
    problems: list[schema_mod.Problem] = field(default_factory=list)


class _Loader:
    def __init__(self, environ: Mapping[str, str] | None):
        self.env = os.environ if environ is None else environ
        self.drivers: dict[str, type[Driver]] = registry()
        self.diags: list[Diagnostic] = []
        self.files: list[_File] = []
        self.items: list[_Item] = []
        self.by_address: dict[Address, _Item] = {}
        self.by_name: dict[str, dict[str, list[_Item]]] = defaultdict(lambda: defaultdict(list))
        self.broken: dict[str, set[str]] = defaultdict(set)
        self.unusable = False
        self.pending: list[tuple[Diagnostic, _Item | str | None]] = []
        self.yaml_errors: set[Source | None] = set()

    def error(self, summary: str, src: Source | None, item: _Item | str | None = None) -> None:
        self.pending.append((Diagnostic("error", summary, source=src), item))

    def warn(self, summary: str, src: Source | None, item: _Item | str | None = None) -> None:
        self.pending.append((Diagnostic("warning", summary, source=src), item))

    def finish_diagnostics(self) -> None:
        """Attach addresses now that they are known (secrets are read before keys exist)."""
        for diag, item in self.pending:
            address = item.label if isinstance(item, _Item) else item
            self.diags.append(dataclasses.replace(diag, address=address))
        self.pending = []

    # -- files --

    def expand(self, paths: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for p in paths:
            path = Path(p)
            if path.is_dir():
                found = sorted(
                    (
                        f
                        for f in path.rglob("*")
                        if f.suffix in YAML_SUFFIXES
                        and f.is_file()
                        and not any(part.startswith(".") for part in f.relative_to(path).parts)
                    ),
                    key=lambda f: f.relative_to(path).as_posix(),
                )
                if not found:
                    self.error(f"no *.yaml or *.yml files in directory '{p}'", Source(p))
                    self.unusable = True
                files = [(str(f), str(f)) for f in found]
            elif path.is_file():
                files = [(p, p)]
            elif path.exists():
                self.error(f"'{p}' is not a regular file", Source(p))
                self.unusable = True
                continue
            else:
                self.error(f"no such file or directory: '{p}'", Source(p))
                self.unusable = True
                continue
            for display, real in files:
                key = os.path.realpath(real)
                if key not in seen:
                    seen.add(key)
                    out.append((display, real))
        if not paths:
            self.error("no manifest files given", None)
            self.unusable = True
        return out

    def read(self, display: str, real: str) -> YMap | None:
        where = Source(display, 1, 1)
        try:
            size = os.stat(real).st_size
            if size > MAX_FILE_BYTES:
                self.error(
                    f"file is {size / 1024 / 1024:.1f} MB; manifest files are limited to "
                    f"{MAX_FILE_BYTES // 1024 // 1024} MB ({MAX_FILE_BYTES} bytes) and "
                    "this one was not parsed",
                    where,
                )
                return None
            with open(real, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            self.error(f"cannot read the file: {exc.strerror}", Source(display))
            return None
        if len(data) > MAX_FILE_BYTES:  # grew between stat and read
            self.error(f"file is over the {MAX_FILE_BYTES} bytes limit", where)
            return None
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = data[: exc.start].decode("utf-8", errors="replace")
            line, col = _line_col(before, len(before))
            self.error("the file is not valid UTF-8", Source(display, line, col))
            return None
        root, diags = parse_yaml(text, display)
        self.pending.extend((d, None) for d in diags)
        # A refused value (alias, unknown tag) became null: schema errors there would only
        # repeat the refusal.
        self.yaml_errors.update(d.source for d in diags)
        if root is None:
            return None
        if not isinstance(root, YMap):
            got = schema_mod.describe(plain(root))
            self.error(
                "the top level of a manifest must be a mapping of sections "
                f"(projects:, networks:, ...), got {got}",
                where if not isinstance(root, YList) else root.start,
            )
            return None
        if any(d.is_error for d in diags):
            # Keep checking what parsed, but a tree with refused parts is not a manifest.
            self.unusable = True
        return root

    # -- per file --

    def hidden(self, path: tuple) -> bool:
        """Values of secret fields never appear in messages."""
        drv = self.drivers.get(path[0]) if path else None
        return bool(drv and len(path) >= 3 and path[2] in drv.secret_fields)

    def check_file(self, f: _File, bundle: dict, checker: Any) -> None:
        f.problems = schema_mod.check(f.root, bundle, self.hidden, checker)
        bad_by_item: dict[tuple, list[tuple]] = defaultdict(list)
        for p in f.problems:
            for b in p.bad:
                if len(b) >= 2:
                    bad_by_item[b[:2]].append(tuple(b[2:]))
        for kind in self.drivers:
            section = f.root.get(kind)
            if not isinstance(section, YList):
                continue
            for i, node in enumerate(section):
                if isinstance(node, YMap):
                    self.items.append(
                        _Item(kind, f.display, f.real, i, node, bad=bad_by_item[(kind, i)])
                    )

    def check_versions(self) -> None:
        first: tuple[Any, Source] | None = None
        for f in self.files:
            if "version" not in f.root:
                continue
            value, src = f.root["version"], f.root.val_src["version"]
            if first is None:
                first = (value, src)
            elif value != first[0]:
                self.error(
                    f"version {value!r} differs from version {first[0]!r} at {first[1]}", src
                )

    # -- specs --

    def prepare(self, it: _Item) -> None:
        drv = self.drivers[it.kind]
        state = it.node.get("state")
        it.state = state if state in ("present", "absent") else "present"
        it.managed = it.node.get("managed") is not False
        if not it.managed and it.state == "absent":
            self.diags.append(
                Diagnostic(
                    "error",
                    "managed: false and state: absent contradict each other: a resource "
                    "that is only looked up is never deleted",
                    source=it.node.start,
                )
            )
        it.spec = plain(it.node)
        it.spec.pop("state", None)
        it.spec.pop("managed", None)
        _record_sources(it.node, (), it.sources)
        for decl, name in drv.item_shorthand.items():
            for path, value in list(walk(it.spec, decl)):
                if isinstance(value, str):
                    _set(it.spec, path, {name: value})
                    it.sources[schema_mod.render_path(path + (name,))] = it.src(path)
        for decl, targets in drv.field_shorthand.items():
            parent_decl, _, name = decl.rpartition(".")
            for path, parent in list(walk(it.spec, parent_decl)):
                if isinstance(parent, dict) and name in parent and not it.is_bad(path + (name,)):
                    value = parent.pop(name)
                    for t in targets:
                        parent[t] = value
                        it.sources[schema_mod.render_path(path + (t,))] = it.src(path + (name,))
        for decl, defaults in drv.item_defaults.items():
            for _path, item in walk(it.spec, decl):
                if isinstance(item, dict):
                    for k, v in defaults.items():
                        item.setdefault(k, v)
        for name in sorted(drv.secret_fields):
            if name in it.spec:
                secret = self.secret(it, drv, name, it.spec[name])
                if secret is None:
                    del it.spec[name]  # never keep an unread or invalid secret in plain text
                else:
                    it.spec[name] = secret
        for decl, mode in drv.path_fields.items():
            for path, value in list(walk(it.spec, decl)):
                if isinstance(value, str) and not it.is_bad(path):
                    resolved = self.resolve_path(it, value)
                    _set(it.spec, path, resolved)
                    if mode == "read" and it.state == "present":
                        self.check_readable(it, path, value, resolved)
        for decl, target in drv.references.items():
            for path, value in walk(it.spec, decl):
                if value is not None:
                    it.sites.append(_Site(path, decl, target, value, it.is_bad(path)))

    def resolve_path(self, it: _Item, raw: str) -> str:
        expanded = os.path.expanduser(raw)
        if not os.path.isabs(expanded):
            expanded = os.path.join(os.path.dirname(os.path.abspath(it.real_file)), expanded)
        return os.path.normpath(expanded)

    def check_readable(self, it: _Item, path: tuple, raw: str, resolved: str) -> bool:
        src = it.src(path)
        if not os.path.exists(resolved):
            self.error(f"file not found: '{raw}' (looked for {resolved})", src, it)
        elif not os.path.isfile(resolved):
            self.error(f"'{raw}' is not a regular file", src, it)
        elif not os.access(resolved, os.R_OK):
            self.error(f"file '{raw}' is not readable", src, it)
        else:
            return True
        return False

    def secret(self, it: _Item, drv: type[Driver], name: str, value: Any) -> Secret | None:
        if it.is_bad((name,)) or it.state == "absent":
            return None  # an absent resource needs no secret (deleting needs no password)
        if isinstance(value, str):
            if name in drv.warn_inline_secret:
                self.warn(
                    f"{name} written inline; use {{env: ...}} or {{file: ...}}",
                    it.src((name,)),
                    it,
                )
            return Secret(value, "inline")
        if not isinstance(value, dict):
            return None
        if "env" in value:
            var = value["env"]
            src = it.src((name, "env"))
            text = self.env.get(var)
            if text is None:
                self.error(f"environment variable '{var}' is not set ({name})", src, it)
                return None
            if text == "":
                self.error(f"environment variable '{var}' is empty ({name})", src, it)
                return None
            return Secret(text, f"env:{var}")
        raw = value["file"]
        resolved = self.resolve_path(it, raw)
        if not self.check_readable(it, (name, "file"), raw, resolved):
            return None
        src = it.src((name, "file"))
        if os.path.getsize(resolved) > MAX_SECRET_FILE_BYTES:
            self.error(f"secret file '{raw}' is larger than 1 MB", src, it)
            return None
        try:
            with open(resolved, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
            self.error(f"cannot read secret file '{raw}': {reason}", src, it)
            return None
        text = text.removesuffix("\n").removesuffix("\r")
        if text == "":
            self.error(f"secret file '{raw}' is empty", src, it)
            return None
        return Secret(text, f"file:{raw}")

    # -- keys --

    def key_order(self) -> list[str]:
        g = nx.DiGraph()
        order = list(self.drivers)
        g.add_nodes_from(order)
        for kind, drv in self.drivers.items():
            for f in drv.key_fields:
                target = drv.references.get(f)
                if target and target != kind:
                    g.add_edge(target, kind)
        return list(nx.lexicographical_topological_sort(g, key=order.index))

    def name_of(self, it: _Item) -> str | None:
        value = it.spec.get(self.drivers[it.kind].key_fields[-1])
        return value if isinstance(value, str) else None

    def key(self, it: _Item) -> None:
        drv = self.drivers[it.kind]
        ok = True
        for f in drv.key_fields:
            if f not in drv.references:
                value = it.spec.get(f)
                if it.is_bad((f,)) or not (value is None or isinstance(value, (str, int))):
                    ok = False
                continue
            site = next((s for s in it.sites if s.path == (f,)), None)
            if site is None:
                continue
            if site.bad:
                ok = False
                continue
            site.ref = self.resolve(it, site)
            if site.ref is None:
                ok = False
            else:
                it.spec[f] = site.ref
        address = None
        if ok:
            try:
                address = drv.address(it.spec)
            except Exception:  # noqa: BLE001  (a spec broken in a way the schema reported)
                address = None
        name = self.name_of(it)
        if address is None:
            if name:
                self.broken[it.kind].add(name)
            return
        if it.kind == "domains" and address.name.lower() == DEFAULT_DOMAIN.lower():
            self.error(
                f"the {DEFAULT_DOMAIN} domain is built in and always exists; do not declare it "
                "(references to it need no declaration)",
                it.node.start,
            )
            return
        it.address = address
        first = self.by_address.get(address)
        if first is not None:
            it.duplicate = True
            self.error(
                f"duplicate {address}: already declared at {first.node.start}",
                it.node.start,
                str(address),
            )
            return
        self.by_address[address] = it
        self.by_name[it.kind][address.name].append(it)

    # -- references --

    def resolve(self, it: _Item, site: _Site) -> Ref | None:
        target = site.target
        tdrv = self.drivers[target]
        name_field = tdrv.key_fields[-1]
        raw = site.value
        if isinstance(raw, str):
            name, quals = raw, {}
        elif isinstance(raw, dict) and isinstance(raw.get(name_field), str):
            name = raw[name_field]
            quals = {k: v for k, v in raw.items() if k != name_field and isinstance(v, str)}
        else:
            return None
        src = it.src(site.path)
        if target == "domains" and name.lower() == DEFAULT_DOMAIN.lower():
            return Ref(Address("domains", (DEFAULT_DOMAIN,)))
        what = singular(target)
        candidates = self.by_name[target].get(name, [])
        if not candidates:
            if name in self.broken[target]:
                return None  # its own declaration is broken and was reported there
            known = sorted(self.by_name[target]) + ([DEFAULT_DOMAIN] if target == "domains" else [])
            text = f"unknown {what} '{name}' referenced by {it.label}"
            if known:
                text += f"; known: {_short_list(known)}"
                text += schema_mod.did_you_mean(name, known).replace(";", " —", 1)
            else:
                text += (
                    f"; no {target.replace('_', ' ')} are declared (every referenced resource "
                    "must be declared"
                    " in the manifest; an existing one needs only its name)"
                )
            self.error(text, src, it)
            return None
        matching = [c for c in candidates if all(self.qualifies(c, q, v) for q, v in quals.items())]
        if not matching:
            wanted = ", ".join(f"{q} '{v}'" for q, v in quals.items())
            declared = ", ".join(str(c.address) for c in candidates)
            self.error(
                f"no {what} '{name}' with {wanted} (referenced by {it.label}); "
                f"declared: {declared}",
                src,
                it,
            )
            return None
        if len(matching) > 1:
            scoped = [c for c in matching if self.same_scope(it, c, tdrv)]
            if len(scoped) != 1:
                self.error(self.ambiguous(it, name, matching, tdrv), src, it)
                return None
            matching = scoped
        return Ref(matching[0].address)

    def ambiguous(self, it: _Item, name: str, matching: list[_Item], tdrv: type[Driver]) -> str:
        name_field = tdrv.key_fields[-1]
        addrs = ", ".join(str(c.address) for c in matching)
        text = f"ambiguous reference to {singular(tdrv.kind)} '{name}' from {it.label}: {addrs}"
        quals = [q for q in tdrv.key_fields[:-1] if q in tdrv.references]
        if quals:
            example = matching[0].spec.get(quals[0])
            shown = example.address.name if isinstance(example, Ref) else DEFAULT_DOMAIN
            text += f"; qualify it, e.g. {{{name_field}: {name}, {quals[0]}: {shown}}}"
        return text

    @staticmethod
    def qualifies(c: _Item, q: str, v: str) -> bool:
        value = c.spec.get(q)
        if isinstance(value, Ref):
            if value.address.kind == "domains" and value.address.name == DEFAULT_DOMAIN:
                return v.lower() == DEFAULT_DOMAIN.lower()
            return value.address.name == v
        return value is None and q == "domain" and v.lower() == DEFAULT_DOMAIN.lower()

    def same_scope(self, it: _Item, c: _Item, tdrv: type[Driver]) -> bool:
        """Same project / domain as the referrer, for every qualifier both have."""
        rdrv = self.drivers[it.kind]
        comparable = False
        for q in tdrv.key_fields[:-1]:
            if q not in tdrv.references or q not in rdrv.references:
                continue
            mine, theirs = self.scope_value(it.spec.get(q), q), self.scope_value(c.spec.get(q), q)
            if mine is None or theirs is None:
                continue
            comparable = True
            if mine != theirs:
                return False
        return comparable

    @staticmethod
    def scope_value(value: Any, q: str) -> Address | None:
        if isinstance(value, Ref):
            return value.address
        if value is None and q == "domain":
            return Address("domains", (DEFAULT_DOMAIN,))
        return None  # unresolved yet: no scope information

    def resolve_rest(self, it: _Item) -> None:
        for site in it.sites:
            if (
                site.ref is not None
                or site.bad
                or (site.path[0] in self.drivers[it.kind].key_fields and len(site.path) == 1)
            ):
                continue
            site.ref = self.resolve(it, site)
            if site.ref is not None:
                _set(it.spec, site.path, site.ref)

    def check_absent_targets(self, it: _Item) -> None:
        if it.state != "present":
            return
        for site in it.sites:
            target = self.by_address.get(site.ref.address) if site.ref else None
            if target is not None and target.state == "absent":
                self.error(
                    f"{it.label} is present but its {schema_mod.render_path(site.path)} refers to "
                    f"{target.address}, which is marked absent",
                    it.src(site.path),
                    it,
                )

    # -- run --

    def run(self, paths: list[str]) -> tuple[Manifest | None, list[Diagnostic]]:
        files = self.expand(paths)
        bundle = schema_mod.load_bundle()
        checker = schema_mod.validator(bundle)
        for display, real in files:
            root = self.read(display, real)
            if root is None:
                self.unusable = True
                continue
            f = _File(display, real, root)
            self.files.append(f)
            self.check_file(f, bundle, checker)
        self.check_versions()
        for it in self.items:
            self.prepare(it)
        order = {k: i for i, k in enumerate(self.key_order())}
        for it in sorted(self.items, key=lambda i: order[i.kind]):
            self.key(it)
        for it in self.items:
            self.resolve_rest(it)
        semantics = Semantics(self)
        for it in self.items:
            self.check_absent_targets(it)
            check = getattr(semantics, f"check_{it.kind}", None)
            if check is not None:
                check(it)
        self.report_schema_problems()
        self.finish_diagnostics()
        order_of_file = {f.display: i for i, f in enumerate(self.files)}
        self.diags.sort(key=lambda d: _diag_order(d, order_of_file))
        if self.unusable:
            return None, self.diags
        rank = {k: i for i, k in enumerate(self.drivers)}
        keyed = [it for it in self.items if it.address is not None and not it.duplicate]
        keyed.sort(key=lambda it: (rank.get(it.kind, len(rank)), order_of_file[it.file], it.index))
        manifest = Manifest(files=[f.display for f in self.files])
        for it in keyed:
            manifest.resources[it.address] = Resource(
                it.address, it.spec, it.state, it.node.start, dict(it.sources), it.managed
            )
        return manifest, self.diags

    def report_schema_problems(self) -> None:
        by_pos = {(it.file, it.kind, it.index): it for it in self.items}
        for f in self.files:
            for p in f.problems:
                it = by_pos.get((f.display, p.path[0], p.path[1])) if len(p.path) >= 2 else None
                src = locate(f.root, p.path, p.at_key)
                if src not in self.yaml_errors:
                    self.error(p.message, src, it)


def _diag_order(d: Diagnostic, files: dict[str, int]) -> tuple:
    if d.source is None:
        return (-1, 0, 0, 0)
    return (files.get(d.source.file, len(files)), d.source.line, d.source.column, 0)


# --- semantic checks ---------------------------------------------------------------------

PORTED = {"tcp", "udp", "sctp", "dccp", "udplite", 6, 17, 33, 132, 136}
ICMP = {"icmp", "icmpv6", "ipv6-icmp", 1, 58}
SSH_KEY = re.compile(
    r"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|"
    r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$"
)


class Semantics:
    """Checks a schema cannot express; each runs only on fields the schema accepted."""

    def __init__(self, loader: _Loader):
        self.loader = loader

    def error(self, it: _Item, path: tuple, text: str, at_key: bool = False) -> None:
        self.loader.error(text, it.src(path, at_key), it)

    def ok(self, it: _Item, path: tuple) -> bool:
        return _get(it.spec, path) is not None and not it.is_bad(path)

    def target(self, value: Any) -> _Item | None:
        return self.loader.by_address.get(value.address) if isinstance(value, Ref) else None

    def check_subnets(self, it: _Item) -> None:
        s = it.spec
        if not self.ok(it, ("cidr",)):
            return
        net = ipaddress.ip_network(s["cidr"])
        if self.ok(it, ("ip_version",)) and s["ip_version"] != net.version:
            self.error(
                it,
                ("ip_version",),
                f"ip_version {s['ip_version']} does not match cidr {net} (IPv{net.version})",
            )
        gateway = None
        if "gateway_ip" in s and self.ok(it, ("gateway_ip",)):
            gateway = ipaddress.ip_address(s["gateway_ip"])
            if gateway not in net:
                self.error(it, ("gateway_ip",), f"gateway_ip {gateway} is outside cidr {net}")
            elif (
                net.version == 4
                and net.prefixlen < 31
                and gateway
                in (
                    net.network_address,
                    net.broadcast_address,
                )
            ):
                self.error(
                    it, ("gateway_ip",), f"gateway_ip {gateway} is not a host address of {net}"
                )
        elif "gateway_ip" not in s and net.num_addresses > 2:
            gateway = net.network_address + 1  # Neutron's default gateway
        pools: list[tuple[Any, Any, int]] = []
        for i, pool in enumerate(s.get("allocation_pools") or []):
            if not (
                self.ok(it, ("allocation_pools", i, "start"))
                and self.ok(it, ("allocation_pools", i, "end"))
            ):
                continue
            start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
            where = ("allocation_pools", i)
            if start not in net or end not in net:
                self.error(it, where, f"allocation pool {start}-{end} is outside cidr {net}")
                continue
            if start > end:
                self.error(it, where, f"allocation pool starts after it ends ({start} > {end})")
                continue
            if gateway is not None and start <= gateway <= end:
                if "gateway_ip" in s:
                    text = f"allocation pool {start}-{end} contains gateway_ip {gateway}"
                else:
                    text = (
                        f"allocation pool {start}-{end} contains {gateway}, Neutron's default "
                        "gateway when gateway_ip is not set; set gateway_ip or move the pool"
                    )
                self.error(it, where, text)
            for ostart, oend, j in pools:
                if start <= oend and ostart <= end:
                    self.error(it, where, f"allocation pool {start}-{end} overlaps pool {j + 1}")
            pools.append((start, end, i))
        for i, route in enumerate(s.get("host_routes") or []):
            p = ("host_routes", i)
            if self.ok(it, p + ("destination",)) and self.ok(it, p + ("nexthop",)):
                dest = ipaddress.ip_network(route["destination"])
                hop = ipaddress.ip_address(route["nexthop"])
                if dest.version != hop.version:
                    self.error(it, p, f"host route to {dest} has an IPv{hop.version} nexthop")

    def check_security_groups(self, it: _Item) -> None:
        for i, rule in enumerate(it.spec.get("rules") or []):
            if isinstance(rule, dict) and not it.is_bad(("rules", i)):
                self.check_rule(it, i, rule)

    def check_rule(self, it: _Item, i: int, rule: dict) -> None:
        path = ("rules", i)
        proto = rule.get("protocol")
        proto = proto.lower() if isinstance(proto, str) else proto
        lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
        lo_path = path + ("port_range_min",) if lo is not None else path + ("port_range_max",)
        if lo is not None or hi is not None:
            if proto in (None, "any"):
                self.error(
                    it, lo_path, "ports need a protocol (tcp, udp, sctp, ...); this rule allows any"
                )
            elif proto in PORTED:
                if lo is None or hi is None:
                    self.error(it, lo_path, "give both port_range_min and port_range_max (or port)")
                elif lo < 1 or hi < 1:
                    self.error(it, lo_path, "port 0 is not valid; ports are 1-65535")
                elif lo > hi:
                    self.error(
                        it, lo_path, f"port_range_min {lo} is greater than port_range_max {hi}"
                    )
            elif proto in ICMP:
                if lo is None:
                    self.error(
                        it, lo_path, "an ICMP code (port_range_max) needs a type (port_range_min)"
                    )
                elif lo > 255 or (hi is not None and hi > 255):
                    self.error(it, lo_path, "ICMP type and code are 0-255")
            else:
                self.error(it, lo_path, f"protocol {proto} has no ports")
        ethertype = rule.get("ethertype", "IPv4")
        if self.ok(it, path + ("remote_ip_prefix",)):
            net = ipaddress.ip_network(rule["remote_ip_prefix"])
            if f"IPv{net.version}" != ethertype:
                self.error(
                    it,
                    path + ("remote_ip_prefix",),
                    f"remote_ip_prefix {net} is IPv{net.version} but ethertype is {ethertype}",
                )
        if ethertype == "IPv4" and proto in ("icmpv6", "ipv6-icmp", 58):
            self.error(it, path + ("protocol",), f"protocol {proto} needs ethertype IPv6")

    def check_projects(self, it: _Item) -> None:
        parent = self.target(it.spec.get("parent"))
        if parent is None:
            return
        mine = self.loader.scope_value(it.spec.get("domain"), "domain")
        theirs = self.loader.scope_value(parent.spec.get("domain"), "domain")
        if mine is not None and theirs is not None and mine != theirs:
            self.error(
                it,
                ("parent",),
                f"parent {parent.address} is in domain '{theirs.name}', not '{mine.name}'; "
                "Keystone needs a parent in the same domain",
            )

    def external_network(self, it: _Item, path: tuple) -> None:
        net = self.target(_get(it.spec, path))
        if net is not None and net.spec.get("external") is False:
            self.error(it, path, f"{net.address} is declared with external: false")

    def check_routers(self, it: _Item) -> None:
        self.external_network(it, ("external_gateway", "network"))

    def check_floating_ips(self, it: _Item) -> None:
        self.external_network(it, ("network",))

    def check_role_assignments(self, it: _Item) -> None:
        if it.spec.get("inherited") and it.spec.get("system"):
            self.error(
                it, ("inherited",), "inherited grants apply to projects and domains, not the system"
            )

    def check_users(self, it: _Item) -> None:
        if it.spec.get("update_password") == "always" and "password" not in it.node:
            self.loader.warn(
                "update_password: always without a password has no effect",
                it.src(("update_password",)),
                it,
            )

    def check_flavors(self, it: _Item) -> None:
        if it.spec.get("access") and it.spec.get("is_public") is not False:
            self.error(
                it, ("access",), "access lists are for private flavors: set is_public: false"
            )

    def check_images(self, it: _Item) -> None:
        url = _get(it.spec, ("source", "url"))
        if isinstance(url, str) and url.startswith("http:") and "checksum" not in it.spec:
            self.loader.warn(
                "image downloaded over plain http without a checksum; use https or add checksum",
                it.src(("source", "url")),
                it,
            )

    def check_keypairs(self, it: _Item) -> None:
        if it.state != "present":
            return
        kind = it.spec.get("type", "ssh")
        if self.ok(it, ("public_key",)):
            self.check_key_text(it, ("public_key",), it.spec["public_key"], kind)
        elif self.ok(it, ("public_key_file",)):
            path = it.spec["public_key_file"]
            if os.path.isfile(path) and os.access(path, os.R_OK):
                try:
                    with open(path, encoding="utf-8") as fh:
                        text = fh.read(64 * 1024)
                except (OSError, UnicodeDecodeError):
                    self.error(it, ("public_key_file",), "the public key file is not UTF-8 text")
                    return
                self.check_key_text(it, ("public_key_file",), text, kind)

    def check_key_text(self, it: _Item, path: tuple, text: str, kind: str) -> None:
        text = text.strip()
        if "PRIVATE KEY" in text:
            self.error(it, path, "this is a PRIVATE key: give the public key (the .pub file)")
        elif kind == "x509" and not text.startswith("-----BEGIN CERTIFICATE-----"):
            self.error(it, path, "an x509 keypair needs a PEM certificate")
        elif kind == "ssh" and not SSH_KEY.match(text):
            self.error(it, path, "does not look like an OpenSSH public key ('ssh-ed25519 AAAA...')")


# --- API -----------------------------------------------------------------------------------


def load(
    paths: list[str], environ: Mapping[str, str] | None = None
) -> tuple[Manifest | None, list[Diagnostic]]:
    """Load and check manifest files/folders; every diagnostic found, in file order.

    The Manifest is None only when a file could not be read or parsed (the manifest would
    be incomplete); otherwise it holds every resource that got an address, even when other
    diagnostics are errors. Callers must stop when any diagnostic is an error.
    `environ` replaces os.environ for {env: NAME} secrets (tests).
    """
    return _Loader(environ).run(list(paths))
