"""Variables: declarations (`vars:`), their values (default < BOOTSTRAP_VAR_<name> <
--var-file < --var) and `${var.name}` / `${each.key}` / `${each.value.field}` in strings.

A string that is exactly one `${...}` takes the value's type (`count: ${var.n}` is a
number); inside a longer string a value is written out (numbers, booleans, strings only).
`$${` writes a literal `${`. Every value put in place keeps the position of the string
that asked for it, so later diagnostics point at the template.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bootstrap.errors import Diagnostic, Source
from bootstrap.manifest.yaml import YList, YMap, parse_yaml, plain, resolve_plain

ENV_PREFIX = "BOOTSTRAP_VAR_"
TYPES = ("string", "number", "boolean", "list", "map")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_EXPR = re.compile(r"\$(\$?)\{([^}]*)\}")
MAX_VAR_FILE_BYTES = 1024 * 1024

Report = Callable[[str, Source | None], None]


@dataclass(frozen=True)
class LoadOptions:
    """What the command line adds to the manifest files (cli passes it to engine.load)."""

    env: tuple[str, ...] = ()  # environment folders/files, each a layer over the base
    var_args: tuple[str, ...] = ()  # "name=value", later wins
    var_files: tuple[str, ...] = ()  # YAML files of name: value, later wins
    missing_secrets: str = "error"  # "warn": validate without the secrets at hand

    def to_json(self) -> dict[str, Any]:
        return {"env": list(self.env), "var": list(self.var_args), "var_file": list(self.var_files)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> LoadOptions:
        doc = doc or {}
        return cls(
            tuple(doc.get("env", ())), tuple(doc.get("var", ())), tuple(doc.get("var_file", ()))
        )


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "null"


@dataclass
class Decl:
    name: str
    type: str
    src: Source  # where the name was declared
    default: Any = None
    default_src: Source | None = None
    has_default: bool = False


@dataclass
class Given:
    value: Any
    src: Source | None
    origin: str  # "default", "environment", "var file", "--var"


class Failed(Exception):
    """An expression could not be evaluated; the message is reported at the use."""


@dataclass
class Variables:
    report: Report
    decls: dict[str, Decl] = field(default_factory=dict)
    given: dict[str, Given] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    resolving: list[str] = field(default_factory=list)

    # -- declarations --

    def declare_layer(self, blocks: list[tuple[Any, Source]]) -> None:
        """The `vars:` blocks of one layer's files; a later layer may re-declare a variable
        (same type) to change its default, two files of one layer may not."""
        seen: dict[str, Source] = {}
        for block, where in blocks:
            if block is None:
                continue
            if not isinstance(block, YMap):
                self.report("vars: must be a mapping of variable name to declaration", where)
                continue
            for name, decl in block.items():
                src = block.key_src[name]
                if name in seen:
                    self.report(f"variable '{name}' is declared twice (first at {seen[name]})", src)
                    continue
                seen[name] = src
                self.declare(name, decl, src, block.val_src[name])

    def declare(self, name: str, decl: Any, src: Source, val_src: Source) -> None:
        if not NAME.match(name):
            self.report(f"variable name '{name}' must be letters, digits, '_' or '-'", src)
            return
        if not isinstance(decl, YMap):
            self.report(
                f"variable '{name}' needs a declaration: {{type: {'|'.join(TYPES)}}}", val_src
            )
            return
        for key in decl:
            if key not in ("type", "default", "description"):
                self.report(
                    f"unknown field '{key}' in variable '{name}' (type, default, description)",
                    decl.key_src[key],
                )
        kind = decl.get("type")
        if kind not in TYPES:
            where = decl.val_src.get("type", decl.start)
            self.report(f"variable '{name}' needs a type: one of {', '.join(TYPES)}", where)
            return
        before = self.decls.get(name)
        if before is not None and before.type != kind:
            self.report(
                f"variable '{name}' is {kind} here but {before.type} at {before.src}",
                decl.val_src["type"],
            )
            return
        d = Decl(name, kind, src)
        if "default" in decl:
            d.default, d.default_src, d.has_default = decl["default"], decl.val_src["default"], True
        elif before is not None:
            d.default, d.default_src, d.has_default = (
                before.default,
                before.default_src,
                before.has_default,
            )
        self.decls[name] = d

    # -- values --

    def set_inputs(
        self,
        environ: Mapping[str, str],
        var_files: list[tuple[str, Any]],
        var_args: tuple[str, ...],
    ) -> None:
        for key in sorted(environ):
            if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX) :] in self.decls:
                name = key[len(ENV_PREFIX) :]
                self.from_text(name, environ[key], Source(f"environment {key}"), "environment")
        for display, root in var_files:
            if root is None:
                continue
            if not isinstance(root, YMap):
                self.report(
                    "a var file is a mapping of variable name to value",
                    getattr(root, "start", Source(display, 1, 1)),
                )
                continue
            for name, value in root.items():
                if name not in self.decls:
                    self.report(self.undeclared(name), root.key_src[name])
                    continue
                self.offer(name, value, root.val_src[name], "var file")
        for arg in var_args:
            name, eq, text = arg.partition("=")
            where = Source(f"--var {name}")
            if not eq:
                self.report(f"--var {arg!r}: write --var name=value", where)
            elif name not in self.decls:
                self.report(self.undeclared(name), where)
            else:
                self.from_text(name, text, where, "--var")

    def check_defaults(self) -> None:
        """Every default that will be used is evaluated, used or not: a wrong one is
        reported at its declaration."""
        for name, d in self.decls.items():
            if d.has_default and name not in self.given:
                try:
                    self.value(name, d.default_src or d.src)
                except Failed as exc:
                    if str(exc):
                        self.report(str(exc), d.default_src)

    def undeclared(self, name: str) -> str:
        known = ", ".join(sorted(self.decls)) or "none"
        return f"variable '{name}' is not declared in any vars: block (declared: {known})"

    def from_text(self, name: str, text: str, where: Source, origin: str) -> None:
        """A value from the command line or the environment, read by the declared type."""
        kind = self.decls[name].type
        value: Any = text
        if kind in ("number", "boolean"):
            value = resolve_plain(text.strip())
        elif kind in ("list", "map"):
            value, diags = parse_yaml(text, str(where))
            if diags:
                self.report(
                    f"variable '{name}' ({kind}) from {origin}: not a YAML/JSON "
                    f"{kind}: {diags[0].summary}",
                    where,
                )
                return
        self.offer(name, value, where, origin)

    def offer(self, name: str, value: Any, where: Source, origin: str) -> None:
        d = self.decls[name]
        if type_of(value) != d.type:
            self.report(
                f"variable '{name}' is declared {d.type} (at {d.src}) but {origin} "
                f"gives a {type_of(value)}",
                where,
            )
            return
        self.given[name] = Given(value, where, origin)

    def value(self, name: str, use: Source) -> Any:
        """The variable's value, its default resolved (defaults may use other variables)."""
        if name in self.values:
            return self.values[name]
        if name in self.broken:
            raise Failed("")  # reported where it broke
        d = self.decls.get(name)
        if d is None:
            raise Failed(self.undeclared(name))
        if name in self.given:
            self.values[name] = self.given[name].value
            return self.values[name]
        if not d.has_default:
            raise Failed(
                f"variable '{name}' has no value (declared at {d.src} without a "
                f"default): give it with --var {name}=..., a --var-file or "
                f"{ENV_PREFIX}{name}"
            )
        if name in self.resolving:
            chain = self.resolving[self.resolving.index(name) :] + [name]
            raise Failed(
                "variables refer to each other in a cycle: "
                + " -> ".join(f"var.{n}" for n in chain)
            )
        self.resolving.append(name)
        try:
            value = Interpolator(self, None, self.report).value(d.default, d.default_src)
        finally:
            self.resolving.pop()
        if value is _FAILED:
            self.broken.add(name)
            raise Failed("")
        value = plain(value)
        if type_of(value) != d.type:
            self.broken.add(name)
            self.report(
                f"variable '{name}' is declared {d.type} but its default is a {type_of(value)}",
                d.default_src,
            )
            raise Failed("")
        self.values[name] = value
        return value


_FAILED = object()


@dataclass
class Each:
    key: str
    value: Any


class Interpolator:
    """Replaces `${...}` in a positioned tree; failures reported at the string, which is
    kept as written (its source is added to `failed` so nothing else reports it again)."""

    def __init__(
        self,
        variables: Variables,
        each: Each | None,
        report: Report,
        failed: set[Source] | None = None,
    ):
        self.vars = variables
        self.each = each
        self.report = report
        self.failed = failed if failed is not None else set()

    def tree(self, node: Any, src: Source | None) -> Any:
        """The node with its strings evaluated: the node itself when nothing changed (a
        manifest without ${...} is not copied), else a copy with the same positions."""
        if isinstance(node, YMap):
            values = {k: self.tree(v, node.val_src[k]) for k, v in node.items()}
            if all(values[k] is v for k, v in node.items()):
                return node
            out = type(node).__new__(type(node))
            YMap.__init__(out, node.start)
            out.update(values)
            out.key_src.update(node.key_src)
            out.val_src.update(node.val_src)
            return out
        if isinstance(node, YList):
            items = [self.tree(v, node.item_src[i]) for i, v in enumerate(node)]
            if all(a is b for a, b in zip(items, node, strict=True)):
                return node
            out_l = YList(node.start)
            out_l.extend(items)
            out_l.item_src.extend(node.item_src)
            return out_l
        if isinstance(node, str) and "${" in node:
            value = self.value(node, src)
            if value is _FAILED:
                if src is not None:
                    self.failed.add(src)
                return node
            return value
        return node

    def value(self, text: Any, src: Source | None) -> Any:
        """A string's value with every expression replaced (_FAILED after reporting)."""
        if not isinstance(text, str):
            return self.tree(text, src)
        where = src or Source("?")
        parts = list(_EXPR.finditer(text))
        try:
            if len(parts) == 1 and parts[0].span() == (0, len(text)) and not parts[0][1]:
                return positioned(self.expr(parts[0][2], where), where)
            out, pos = [], 0
            for m in parts:
                out.append(text[pos : m.start()])
                pos = m.end()
                if m[1]:  # $${...}: the text itself
                    out.append("${" + m[2] + "}")
                    continue
                out.append(as_text(self.expr(m[2], where), m[2]))
            out.append(text[pos:])
            return "".join(out)
        except Failed as exc:
            if str(exc):
                item = f" (for_each item '{self.each.key}')" if self.each is not None else ""
                self.report(str(exc) + item, where)
            return _FAILED

    def expr(self, expr: str, where: Source) -> Any:
        path = expr.strip().split(".")
        head = path[0]
        if head == "var" and len(path) >= 2:
            value = self.vars.value(path[1], where)
            return field_of(value, path[2:], f"var.{path[1]}")
        if head == "each":
            if self.each is None:
                raise Failed(f"${{{expr}}} is used outside a resource with for_each")
            if path[1:] == ["key"]:
                return self.each.key
            if len(path) >= 2 and path[1] == "value":
                return field_of(self.each.value, path[2:], "each.value")
        raise Failed(
            f"unknown expression ${{{expr}}}: write ${{var.NAME}}, ${{each.key}}, "
            "${each.value} or ${each.value.FIELD}"
        )


def field_of(value: Any, fields: list[str], shown: str) -> Any:
    for f in fields:
        if not isinstance(value, dict):
            raise Failed(f"{shown} is a {type_of(value)}, it has no field '{f}'")
        if f not in value:
            known = f"it has: {', '.join(sorted(value))}" if value else "it is empty"
            raise Failed(f"{shown} has no field '{f}' ({known})")
        value = value[f]
        shown += f".{f}"
    return value


def as_text(value: Any, expr: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise Failed(
        f"${{{expr}}} is a {type_of(value)}; only a string, number or boolean can be "
        "written inside a longer string (use it alone to keep its type)"
    )


def positioned(value: Any, src: Source) -> Any:
    """A value from a variable as a positioned tree located at its use."""
    if isinstance(value, dict):
        out = YMap(src)
        for k, v in value.items():
            out[k] = positioned(v, src)
            out.key_src[k] = out.val_src[k] = src
        return out
    if isinstance(value, list):
        out_l = YList(src)
        for v in value:
            out_l.append(positioned(v, src))
            out_l.item_src.append(src)
        return out_l
    return value


def read_var_file(path: str, limit: int) -> tuple[Any, list[Diagnostic]]:
    """A --var-file's positioned tree (None when unusable) and its problems."""
    try:
        if os.path.getsize(path) > limit:
            return None, [
                Diagnostic("error", "var file is over the size limit", source=Source(path, 1, 1))
            ]
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
        return None, [
            Diagnostic("error", f"cannot read the var file: {reason}", source=Source(path))
        ]
    root, diags = parse_yaml(text, path)
    return (None if any(d.is_error for d in diags) else root), diags


def unevaluated(node: Any, failed: set[Source], path: tuple = ()) -> list[tuple]:
    """Paths (in one resource) of strings whose ${...} failed: checks skip them."""
    out: list[tuple] = []
    if isinstance(node, YMap):
        for k, v in node.items():
            if node.val_src[k] in failed and isinstance(v, str):
                out.append(path + (k,))
            out += unevaluated(v, failed, path + (k,))
    elif isinstance(node, YList):
        for i, v in enumerate(node):
            if node.item_src[i] in failed and isinstance(v, str):
                out.append(path + (i,))
            out += unevaluated(v, failed, path + (i,))
    return out
