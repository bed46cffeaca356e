"""YAML with positions: PyYAML events composed into dicts and lists that remember the
line/column of every key and value.

YAML 1.2 core scalars (only true/false are booleans, `yes`/`on` stay strings; dates stay
strings). Refused: duplicate keys, non-string keys, anchors and aliases (no expansion can
happen, so "billion laughs" costs nothing), tags other than the standard
str/int/float/bool/null/map/seq, a second document, nesting deeper than 64.

Pathological files are refused in well under a second, located, and no further work is
spent on them (the MAX_* limits below): nesting so deep that PyYAML's scanner turns quadratic,
scalars longer than 1 MiB, mappings with more than 10,000 keys, files of more than
50,000 YAML nodes (about 10,000 resources; split larger manifests into files). A file
libyaml rejects is re-parsed by the pure-Python parser for its message only when it is
small; a large one gets libyaml's own located message.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

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
from bootstrap.errors import Diagnostic, Source

MAX_DEPTH = 64
# Past this depth the file is not read further: the depth error above is already located,
# and PyYAML's scanner costs O(depth) per token (quadratic in a file of brackets).
MAX_SKIP_DEPTH = 256
MAX_SCALAR_CHARS = 1024 * 1024
MAX_MAPPING_KEYS = 10_000
MAX_NODES = 50_000
# A file libyaml rejects is parsed again by PyYAML for its messages; that costs about a
# second per megabyte, so larger files keep libyaml's message.
MAX_REPARSE_CHARS = 256 * 1024
MAX_ALIAS_REPORTS = 5  # per file; a bomb has dozens of aliases, one report is the point
STD_TAG = "tag:yaml.org,2002:"


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


class _Refused(Exception):
    """The file is pathological: its diagnostics are recorded, parsing stops here."""


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


# What a null, boolean or number can start with; any other plain scalar is a string (most
# of a manifest's values: names, descriptions), told at once without the patterns.
_NOT_A_STRING_START = frozenset("~nNtTfF+-.0123456789")


def resolve_plain(text: str) -> Any:
    """A plain scalar per the YAML 1.2 core schema (not PyYAML's YAML 1.1 rules)."""
    if text and text[0] not in _NOT_A_STRING_START:
        return text
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
_make_source = tuple.__new__


class _Composer:
    """Builds YMap/YList trees from parser events, refusing what a manifest must not use."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.events: _Events
        self.file = file
        self.diags: list[Diagnostic] = []
        self.alias_count = 0
        self.nodes = 0

    def at(self, mark: Any) -> Source:
        # tuple.__new__ skips the named tuple's Python-level __new__: one per YAML node.
        return _make_source(Source, (self.file, mark.line + 1, mark.column + 1))

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

    def _skip(self, depth_at: int) -> None:
        depth = 0
        while True:
            ev = self.events.get_event()
            if isinstance(ev, CollectionStartEvent):
                depth += 1
                if depth_at + depth > MAX_SKIP_DEPTH:
                    raise _Refused  # the depth error is recorded; stop reading
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
        self._count(ev)
        if depth > MAX_DEPTH:
            self.error(ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
            self._skip(depth)
            return None
        if isinstance(ev, ScalarEvent):
            self.events.get_event()
            return self.scalar(ev)
        self._check_collection_tag(ev)
        if isinstance(ev, SequenceStartEvent):
            return self.sequence(depth)
        return self.mapping(depth)

    def _count(self, ev: Any) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.error(
                ev.start_mark,
                f"more than {MAX_NODES:,} YAML nodes in one file; the file is refused "
                "(split the manifest into several files)",
            )
            raise _Refused

    def _check_collection_tag(self, ev: Any) -> None:
        allowed = (None, "!", STD_TAG + ("seq" if isinstance(ev, SequenceStartEvent) else "map"))
        if ev.tag not in allowed:
            self.error(ev.start_mark, f"YAML tag '{_short_tag(ev.tag)}' is not supported")

    def scalar(self, ev: ScalarEvent) -> Any:
        if len(ev.value) > MAX_SCALAR_CHARS:
            self.error(
                ev.start_mark,
                f"a value of {len(ev.value):,} characters; at most {MAX_SCALAR_CHARS:,} are "
                "accepted (a large user_data or key belongs in a file: {file: path})",
            )
            return None
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

    # sequence and mapping run once per collection of the file: one peek per item (no
    # check_event first) and positions made inline, for 10,000-resource manifests.
    def sequence(self, depth: int) -> YList:
        events, at = self.events, self.at
        start = events.get_event()
        out = YList(at(start.start_mark))
        while type(ev := events.peek_event()) is not SequenceEndEvent:
            out.item_src.append(at(ev.start_mark))
            out.append(self.node(depth + 1))
        events.get_event()
        return out

    def mapping(self, depth: int) -> YMap:
        events, at = self.events, self.at
        start = events.get_event()
        out = YMap(at(start.start_mark))
        keys = 0
        while type(key_ev := events.peek_event()) is not MappingEndEvent:
            keys += 1
            if keys > MAX_MAPPING_KEYS:
                self.error(
                    key_ev.start_mark,
                    f"more than {MAX_MAPPING_KEYS:,} keys in one mapping; the file is refused",
                )
                raise _Refused
            key_src = at(key_ev.start_mark)
            complex_key = not isinstance(key_ev, ScalarEvent)
            key = self.node(depth + 1)
            val_src = at(events.peek_event().start_mark)
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
        events.get_event()
        return out


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(STD_TAG) :] if tag.startswith(STD_TAG) else tag


def line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_yaml(text: str, file: str) -> tuple[Any, list[Diagnostic]]:
    """The positioned tree of one document (`None` when unusable) and the problems found."""
    if yaml.__with_libyaml__:
        composer = _Composer(text, file)
        try:
            root = composer.compose(fast=True)
        except _Refused:
            return None, composer.diags
        except MarkedYAMLError as exc:
            if len(text) > MAX_REPARSE_CHARS or "maximum nesting depth" in str(exc):
                # Re-parsing would cost seconds (a large file) or minutes (deep nesting).
                return None, composer.diags + [_fast_error(exc, text, file)]
            # Otherwise re-parsed below for PyYAML's own, located message.
        except YAMLError:
            pass
        else:
            if root is not _EMPTY and root is not None:
                return root, composer.diags
    composer = _Composer(text, file)
    try:
        root = composer.compose()
    except _Refused:
        return None, composer.diags
    except MarkedYAMLError as exc:
        return None, composer.diags + [_syntax_error(exc, text, file)]
    except ReaderError as exc:
        line, col = line_col(text, exc.position)
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


def _fast_error(exc: MarkedYAMLError, text: str, file: str) -> Diagnostic:
    """libyaml's error, located; its nesting limit (1000) reported as the manifest's."""
    if "maximum nesting depth" in str(exc):
        return _too_deep(exc, text, file)
    return _syntax_error(exc, text, file)


def _too_deep(exc: MarkedYAMLError, text: str, file: str) -> Diagnostic:
    """Where nesting first went past MAX_DEPTH, found by PyYAML on the text up to where
    libyaml gave up (PyYAML's cost grows with the square of the depth: never the whole)."""
    mark = exc.problem_mark or exc.context_mark
    head = text
    if mark is not None:
        lines = text.split("\n")
        head = "\n".join(lines[: mark.line] + [lines[mark.line][: mark.column]])
    # PyYAML needs no more than MAX_SKIP_DEPTH open brackets to find and refuse it.
    opened = 0
    for i, ch in enumerate(head):
        if ch in "[{":
            opened += 1
            if opened > MAX_SKIP_DEPTH + 1:
                head = head[:i]
                break
    composer = _Composer(head, file)
    with contextlib.suppress(_Refused, YAMLError):
        composer.compose()
    found = [d for d in composer.diags if d.summary.startswith("nesting deeper")]
    if found:
        return found[0]
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Diagnostic(
        "error", f"nesting deeper than {MAX_DEPTH} levels", source=Source(file, line, col)
    )


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
