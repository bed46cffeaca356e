"""The published JSON Schema: in sync with its parts, complete, and strict."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bootstrap import schema
from bootstrap.drivers.base import kinds, registry


def walk_schemas(node: Any, path: str = "#"):
    """Every (path, subschema) of a schema document."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            if k in ("properties", "$defs", "dependentSchemas", "patternProperties"):
                for name, sub in v.items():
                    yield from walk_schemas(sub, f"{path}/{k}/{name}")
            elif isinstance(v, (dict, list)) and k not in ("enum", "const", "required"):
                yield from walk_schemas(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_schemas(v, f"{path}/{i}")


def test_the_bundle_is_up_to_date_with_the_parts():
    published = schema.BUNDLE.read_text(encoding="utf-8")
    assert published == schema.render_bundle(), "run `python -m bootstrap.schema`"
    assert schema.main(["--check"]) == 0


def test_the_bundle_is_a_valid_2020_12_schema_with_id_and_title():
    bundle = schema.load_bundle()
    Draft202012Validator.check_schema(bundle)
    assert bundle["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert bundle["$id"] and bundle["title"]
    assert list(bundle["properties"]) == ["version", "stack", "vars", *kinds()]


def test_every_property_has_a_description():
    missing = [
        f"{path}/properties/{name}"
        for path, node in walk_schemas(schema.load_bundle())
        for name, sub in node.get("properties", {}).items()
        if not (isinstance(sub, dict) and sub.get("description"))
    ]
    assert not missing, missing


def test_every_object_refuses_unknown_fields():
    loose = [
        path
        for path, node in walk_schemas(schema.load_bundle())
        if "properties" in node
        and node.get("additionalProperties") is not False
        and "/dependentSchemas/" not in path
        and "/not" not in path
        and "/if" not in path
    ]
    assert not loose, loose


def test_every_kind_has_a_part_matching_its_driver_declarations():
    bundle = schema.load_bundle()
    drivers = registry()
    for kind in kinds():
        part = json.loads((schema.PARTS / f"{kind}.schema.json").read_text())
        assert part["title"] and part["description"], kind
        props = bundle["$defs"][kind]["properties"]
        drv = drivers[kind]
        for f in drv.key_fields:
            assert f in props, (kind, f)
        for f in drv.secret_fields:
            assert props[f]["$ref"] == "#/$defs/secret", (kind, f)
        for decl, target in drv.references.items():
            node: Any = bundle["$defs"][kind]
            for seg in decl.split("."):
                name = seg.removesuffix("[]")
                if "properties" not in node:  # a list item written as a name or a mapping
                    node = next(b for b in node["oneOf"] if name in b.get("properties", {}))
                node = node["properties"][name]
                if seg.endswith("[]"):
                    node = node["items"]
            refs = {node.get("$ref")} | {b.get("$ref") for b in node.get("oneOf", [])}
            refs |= {
                p.get("$ref")
                for b in node.get("oneOf", [])
                for p in b.get("properties", {}).values()
            }
            assert f"#/$defs/ref_{target}" in refs, (kind, decl)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"projects": [{"nmae": "x"}]},
            "unknown field 'nmae' in projects[0]; did you mean 'name'?",
        ),
        (
            {"flavors": [{"name": "f", "vcpus": "two"}]},
            "field 'vcpus' must be an integer, got 'two'",
        ),
        ({"projets": []}, "unknown section 'projets'; did you mean 'projects'?"),
        ({"version": 3}, "version must be 1, got 3"),
    ],
)
def test_messages_are_readable(doc, message):
    bundle = schema.load_bundle()
    problems = schema.check(doc, bundle, hidden=lambda path: False)
    assert message in [p.message for p in problems]


def test_hidden_values_are_not_shown():
    bundle = schema.load_bundle()
    doc = {"users": [{"name": "u", "password": 271828}]}
    problems = schema.check(doc, bundle, hidden=lambda path: path[2:3] == ("password",))
    assert problems and all("271828" not in p.message for p in problems)


# --- the compiled check and the located one agree ------------------------------------


def _every_yaml() -> list:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return sorted([*root.glob("tests/**/*.yaml"), *root.glob("manifests/**/*.yaml")])


def test_the_compiled_check_agrees_with_jsonschema_on_every_manifest():
    """The fast validator answers alone for a valid file: it must never pass a file the
    located check would refuse (nor refuse one it passes)."""
    from bootstrap.manifest.yaml import parse_yaml
    from bootstrap.schema import fast_validator, load_bundle, validator

    bundle = load_bundle()
    fast, slow = fast_validator(bundle), validator(bundle)
    checked, invalid = 0, 0
    for path in _every_yaml():
        root, _ = parse_yaml(path.read_text(encoding="utf-8", errors="replace"), str(path))
        if root is None:
            continue
        expected = not any(True for _ in slow.iter_errors(root))
        assert fast.is_valid(root) == expected, path
        checked += 1
        invalid += not expected
    assert checked > 50 and invalid > 5  # both verdicts were exercised
