"""Bundling the manifest's JSON Schema from per-kind parts.

`schemas/parts/<kind>.schema.json` defines one item of a section; `_common.schema.json`
holds shared definitions. `python -m bootstrap.schema` bundles them (plus one generated
`ref_<kind>` definition per referenced kind, derived from the drivers' key fields) into
`schemas/manifest.schema.json`, the file editors use; `--check` fails when it is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PACKAGE_DIR.parent / "schemas"
BUNDLE = SCHEMA_DIR / "manifest.schema.json"
PARTS = SCHEMA_DIR / "parts"
SCHEMA_ID = "https://openstack-bootstrap.invalid/schemas/manifest.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def ref_definitions() -> dict[str, Any]:
    """`ref_<kind>` for every kind some driver references: a name, or {name, qualifiers}.

    Qualifiers are the target's other key fields (domain, project, user), so a reference
    can say which of several same-named resources it means.
    """
    from bootstrap.drivers.base import registry

    drivers = registry()
    targets = sorted({t for cls in drivers.values() for t in cls.references.values()})
    defs: dict[str, Any] = {}
    for kind in targets:
        key = drivers[kind].key_fields
        name_field, qualifiers = key[-1], [f for f in key[:-1] if f in drivers[kind].references]
        singular = kind.rstrip("s").replace("_", " ")
        props: dict[str, Any] = {
            name_field: {
                "type": "string",
                "minLength": 1,
                "description": f"The {singular}'s {name_field}.",
            }
        }
        for q in qualifiers:
            props[q] = {
                "type": "string",
                "minLength": 1,
                "description": f"Name of the {q} the {singular} belongs to "
                f"(to pick one of several {kind} with that {name_field}).",
            }
        defs[f"ref_{kind}"] = {
            "description": f"A reference to a {singular} declared in the manifest: its "
            f"{name_field}, or a mapping qualifying it"
            + (f" by {', '.join(qualifiers)}." if qualifiers else "."),
            # anyOf, not oneOf: the branches are disjoint by type and anyOf stops at the
            # first match (a third of the validation time on large manifests).
            "anyOf": [
                {
                    "type": "string",
                    "minLength": 1,
                    "description": f"The {singular}'s {name_field}.",
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [name_field],
                    "properties": props,
                    "description": f"A qualified reference to a {singular}.",
                },
            ],
        }
    return defs


def build_bundle() -> dict[str, Any]:
    """The published schema: every part under $defs, one array property per section."""
    common = _read_json(PARTS / "_common.schema.json")
    defs: dict[str, Any] = dict(common["$defs"])
    defs.update(ref_definitions())
    properties: dict[str, Any] = {
        "version": {
            "const": 1,
            "description": "Manifest format version; optional, and 1 when given.",
        },
        "stack": {
            "$ref": "#/$defs/stack",
            "description": "The stack this manifest makes: every resource it creates is "
            "marked with it, and `plan --prune` deletes only resources marked with it that "
            "the manifest no longer declares. Every file of a manifest that names a stack "
            "names the same one; `--stack NAME` overrides it.",
        },
    }
    properties["vars"] = {
        "$ref": "#/$defs/vars",
        "description": "Variables declared for ${var.NAME}, each with a type and an "
        "optional default.",
    }
    from bootstrap.drivers.base import kinds

    for kind in kinds():
        part = _read_json(PARTS / f"{kind}.schema.json")
        part = {k: v for k, v in part.items() if k not in ("$schema", "$comment")}
        # Every kind can be repeated; the loader stamps for_each out before checking.
        part["properties"]["for_each"] = {
            "$ref": "#/$defs/for_each",
            "description": "One resource per item of this list or map (${each.key}, "
            "${each.value}).",
        }
        defs[kind] = part
        properties[kind] = {
            "type": ["array", "null"],
            "description": f"{part['title']}: a list of items.",
            "items": {"$ref": f"#/$defs/{kind}"},
        }
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "openstack-bootstrap manifest",
        "description": "What an OpenStack cloud must look like: one list per resource kind. "
        "Generated from schemas/parts by `python -m bootstrap.schema`; do not edit.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "$defs": dict(sorted(defs.items())),
    }


def render_bundle() -> str:
    return json.dumps(build_bundle(), indent=2, ensure_ascii=False) + "\n"


# An installed package carries a copy (bootstrap/manifest.schema.json links to the bundle
# in a checkout; building a wheel copies its content).
PACKAGED = PACKAGE_DIR / "manifest.schema.json"


def load_bundle() -> dict[str, Any]:
    """The published bundle (what editors see); a test keeps it equal to the parts."""
    if not BUNDLE.is_file() and PACKAGED.is_file():
        return _read_json(PACKAGED)
    if not BUNDLE.is_file():
        raise FileNotFoundError(
            f"{BUNDLE} is missing; run `python -m bootstrap.schema` to generate it"
        )
    return _read_json(BUNDLE)


def rendered_files() -> dict[Path, str]:
    """Every published schema and its text: the manifest bundle and the output documents."""
    from bootstrap.schema.documents import DOCUMENTS

    files = {BUNDLE: render_bundle()}
    for name, build in DOCUMENTS.items():
        files[SCHEMA_DIR / name] = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bootstrap.schema",
        description="Bundle schemas/parts/*.schema.json into schemas/manifest.schema.json "
        "and write the plan and apply-summary schemas.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a schema is stale")
    args = parser.parse_args(argv)
    stale = 0
    for path, text in rendered_files().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current == text:
            continue
        if args.check:
            print(f"{path} is out of date; run `python -m bootstrap.schema`", file=sys.stderr)
            stale += 1
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 1 if stale else 0
