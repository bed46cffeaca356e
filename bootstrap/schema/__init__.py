"""The manifest's JSON Schema: bundled from per-kind parts (bundle.py), checked with real
formats (formats.py), and its errors made readable and located (translate.py).

`check(doc)` validates one parsed file with Draft 2020-12 and turns every jsonschema
error into a `Problem`: a readable message plus the JSON path to locate it in the YAML.
"""

from bootstrap.schema.bundle import (
    BUNDLE,
    PACKAGED,
    PARTS,
    build_bundle,
    load_bundle,
    main,
    ref_definitions,
    render_bundle,
)
from bootstrap.schema.formats import fast_validator, format_checker, validator
from bootstrap.schema.translate import (
    Problem,
    Translator,
    check,
    describe,
    did_you_mean,
    render_path,
)

__all__ = [
    "BUNDLE",
    "PACKAGED",
    "PARTS",
    "Problem",
    "Translator",
    "build_bundle",
    "check",
    "describe",
    "did_you_mean",
    "fast_validator",
    "format_checker",
    "load_bundle",
    "main",
    "ref_definitions",
    "render_bundle",
    "render_path",
    "validator",
]
