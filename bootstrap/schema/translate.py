"""Schema errors made readable: every jsonschema error of one parsed file becomes a
`Problem`, a message plus the JSON path that locates it in the YAML."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bootstrap.schema.formats import FORMAT_NAMES, validator

if TYPE_CHECKING:  # jsonschema is imported only when a file is invalid (see `check`)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@dataclass
class Problem:
    """One schema violation, located by JSON path (at the key when `at_key`)."""

    path: tuple[str | int, ...]
    message: str
    at_key: bool = False
    # Paths whose values cannot be trusted (the loader skips checks below them).
    bad: list[tuple[str | int, ...]] = field(default_factory=list)


def render_path(path: Iterable[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def describe(value: Any, hide: bool = False) -> str:
    """A value for a message; `hide` (secret fields) shows only its type."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if hide:
        return TYPE_NAMES["boolean" if isinstance(value, bool) else _json_type(value)]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    return str(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "null"


# Top-level keys that are settings of the manifest, not sections of resources.
SETTINGS = ("version", "stack", "vars")


def _what(path: tuple[str | int, ...]) -> str:
    """How a message names the thing at `path` (relative to its resource when inside one)."""
    if not path:
        return "the manifest"
    if path in (("version",), ("stack",)):
        return str(path[0])
    if len(path) == 1:
        return f"section '{path[0]}'"
    if len(path) == 2:
        return f"{path[0]}[{path[1]}]"
    return f"field '{render_path(path[2:])}'"


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


class Translator:
    """Turns jsonschema errors into Problems; `hidden(path)` marks secret values."""

    def __init__(self, bundle: dict[str, Any], hidden: Callable[[tuple], bool]):
        self.bundle = bundle
        self.hidden = hidden

    def resolve(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            node: Any = self.bundle
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def translate(self, err: ValidationError) -> list[Problem]:
        path = tuple(err.absolute_path)
        inst = err.instance
        hide = self.hidden(path)
        what = _what(path)
        v = err.validator
        if v == "additionalProperties":
            return self._unknown(err, path)
        if v == "required":
            missing = [k for k in err.validator_value if k not in inst]
            where = render_path(path) or "the manifest"
            return [
                Problem(path, f"missing required field '{k}' in {where}", bad=[path + (k,)])
                for k in missing
            ]
        if v == "type":
            return [Problem(path, self._type_message(what, err.validator_value, inst, hide))]
        if v in ("oneOf", "anyOf"):
            return self._one_of(err, path)
        if v == "enum":
            allowed = [str(x) for x in err.validator_value]
            hint = did_you_mean(inst, allowed) if isinstance(inst, str) and not hide else ""
            got = describe(inst, hide)
            return [Problem(path, f"{what} must be one of {', '.join(allowed)}; got {got}{hint}")]
        if v == "const":
            return [Problem(path, f"{what} must be {err.validator_value}, got {describe(inst)}")]
        bounds = {
            "minimum": ">=",
            "maximum": "<=",
            "exclusiveMinimum": ">",
            "exclusiveMaximum": "<",
        }
        if v in bounds:
            got = describe(inst, hide)
            return [Problem(path, f"{what} must be {bounds[v]} {err.validator_value}, got {got}")]
        if v == "minLength":
            n = err.validator_value
            text = "must not be empty" if n == 1 else f"must be at least {n} characters long"
            return [Problem(path, f"{what} {text}")]
        if v == "maxLength":
            return [Problem(path, f"{what} must be at most {err.validator_value} characters long")]
        if v == "minItems":
            return [Problem(path, f"{what} must list at least {err.validator_value} item(s)")]
        if v == "uniqueItems":
            seen: list[Any] = []
            dup = next((x for x in inst if x in seen or seen.append(x)), None)
            return [Problem(path, f"{what} lists {describe(dup, hide)} more than once")]
        if v == "pattern":
            expected = (err.schema or {}).get("description", f"to match {err.validator_value}")
            got = describe(inst, hide)
            return [Problem(path, f"{what} is not valid, got {got}: expected {expected}")]
        if v == "format":
            name = FORMAT_NAMES.get(err.validator_value, err.validator_value)
            reason = "" if hide or err.cause is None else f": {err.cause}"
            return [
                Problem(path, f"{what} is not a valid {name}, got {describe(inst, hide)}{reason}")
            ]
        if v == "not":
            return self._conflict(err, path)
        if v is None:  # a `false` schema
            return [Problem(path, f"{what} is not allowed here", at_key=True)]
        message = f"{what} is invalid" if hide else f"{what}: {err.message}"
        return [Problem(path, message)]

    def _type_message(self, what: str, expected: Any, inst: Any, hide: bool) -> str:
        expected = [expected] if isinstance(expected, str) else list(expected)
        names = _or_list([TYPE_NAMES[t] for t in expected])
        text = f"{what} must be {names}, got {describe(inst, hide)}"
        if not hide and "string" in expected and isinstance(inst, (int, float, bool)):
            shown = ("true" if inst else "false") if isinstance(inst, bool) else inst
            text += f' (quote it: "{shown}")'
        if (
            "boolean" in expected
            and isinstance(inst, str)
            and inst.lower()
            in (
                "yes",
                "no",
                "on",
                "off",
                "y",
                "n",
            )
        ):
            text += " (only true and false are booleans)"
        if "array" in expected and isinstance(inst, dict) and what.startswith("section"):
            text += " (each item starts with '- ')"
        return text

    def _unknown(self, err: ValidationError, path: tuple) -> list[Problem]:
        schema = self.resolve(err.schema)
        known = list(schema.get("properties", {}))
        extra = [k for k in err.instance if k not in known]
        out = []
        for key in extra:
            if not path:
                text = f"unknown section '{key}'" + did_you_mean(key, known)
                if not did_you_mean(key, known):
                    text += f"; sections are: {', '.join(k for k in known if k not in SETTINGS)}"
            else:
                text = f"unknown field '{key}' in {render_path(path)}" + did_you_mean(key, known)
            out.append(Problem(path + (key,), text, at_key=True, bad=[path + (key,)]))
        return out

    def _one_of(self, err: ValidationError, path: tuple) -> list[Problem]:
        branches = err.validator_value
        inst = err.instance
        what = _what(path)
        if all(isinstance(b, dict) and set(b) == {"required"} for b in branches):
            fields = [b["required"][0] for b in branches]
            given = [f for f in fields if isinstance(inst, dict) and f in inst]
            where = render_path(path)
            quoted = [f"'{f}'" for f in fields]
            if not given:
                return [Problem(path, f"{where} needs one of {_or_list(quoted)}", bad=[path])]
            both = " and ".join(f"'{f}'" for f in given)
            text = (
                f"{where}: {both} cannot be given together; use exactly one of {_or_list(quoted)}"
            )
            return [
                Problem(path + (given[-1],), text, at_key=True, bad=[path + (f,) for f in given])
            ]
        if not err.context:  # valid under several branches
            return [Problem(path, f"{what} matches more than one allowed form", bad=[path])]
        by_branch: dict[int, list[ValidationError]] = defaultdict(list)
        for sub in err.context:
            by_branch[sub.relative_schema_path[0]].append(sub)
        fitting = [i for i in range(len(branches)) if not self._type_mismatch(by_branch[i], path)]
        if not fitting:
            types: list[str] = []
            for i in range(len(branches)):
                for t in self._branch_types(by_branch[i], path):
                    if t not in types:
                        types.append(t)
            hide = self.hidden(path)
            text = self._type_message(what, types or ["object"], inst, hide)
            return [Problem(path, text, bad=[path])]
        best = min(fitting, key=lambda i: (len(by_branch[i]), i))
        out: list[Problem] = []
        for sub in by_branch[best]:
            out.extend(self.translate(sub))
        return out

    def _type_mismatch(self, errors: list[ValidationError], path: tuple) -> bool:
        for e in errors:
            if tuple(e.absolute_path) != path:
                continue
            if e.validator == "type":
                return True
            if e.validator in ("oneOf", "anyOf") and e.context:
                subs: dict[int, list[ValidationError]] = defaultdict(list)
                for s in e.context:
                    subs[s.relative_schema_path[0]].append(s)
                if all(self._type_mismatch(subs[i], path) for i in range(len(e.validator_value))):
                    return True
        return False

    def _branch_types(self, errors: list[ValidationError], path: tuple) -> list[str]:
        out: list[str] = []
        for e in errors:
            if tuple(e.absolute_path) != path:
                continue
            if e.validator == "type":
                vv = e.validator_value
                out.extend([vv] if isinstance(vv, str) else vv)
            elif e.validator in ("oneOf", "anyOf"):
                out.extend(self._branch_types(list(e.context), path))
        return out

    def _conflict(self, err: ValidationError, path: tuple) -> list[Problem]:
        """`dependentSchemas: {a: {not: {required: [b]}}}`: a and b are exclusive."""
        spath = list(err.schema_path)
        inst = err.instance
        trigger = (
            spath[spath.index("dependentSchemas") + 1] if "dependentSchemas" in spath else None
        )
        negated = err.validator_value
        fields = negated.get("required", []) + [
            f for b in negated.get("anyOf", []) for f in b.get("required", [])
        ]
        given = [f for f in fields if isinstance(inst, dict) and f in inst]
        if trigger and given:
            where = render_path(path)
            return [
                Problem(
                    path + (g,),
                    f"{where}: '{g}' cannot be combined with '{trigger}'",
                    at_key=True,
                    bad=[path + (g,), path + (trigger,)],
                )
                for g in given
            ]
        return [Problem(path, f"{_what(path)} is not allowed in this form", bad=[path])]


def check(
    doc: Any,
    bundle: dict[str, Any],
    hidden: Callable[[tuple], bool],
    checker: Draft202012Validator | None = None,
    fast: Any = None,
) -> list[Problem]:
    """Every schema problem of one parsed file, in document order. `fast` (from
    `fast_validator`) answers for a valid file; only an invalid one is walked here."""
    if fast is not None and fast.is_valid(doc):
        return []
    checker = checker or validator(bundle)
    translator = Translator(bundle, hidden)
    problems: list[Problem] = []
    seen: set[tuple] = set()
    for err in checker.iter_errors(doc):
        # jsonschema reports `required` once per missing field, each naming them all.
        for p in translator.translate(err):
            if (p.path, p.message) in seen:
                continue
            seen.add((p.path, p.message))
            if not p.bad:
                p.bad = [p.path]
            problems.append(p)
    return problems
