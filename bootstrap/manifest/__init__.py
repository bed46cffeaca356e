"""Load manifest files into a `Manifest`, reporting every problem at once, located.

Steps, each collecting diagnostics instead of stopping:
1. Read: files and folders (recursively *.yaml/*.yml, sorted); over 10 MB is refused
   before parsing; UTF-8 only.
2. Parse (yaml.py): PyYAML events composed into dicts/lists that remember the line/column of
   every key and value. YAML 1.2 core scalars (only true/false are booleans, `yes`/`on`
   stay strings; dates stay strings). Refused: duplicate keys, non-string keys, anchors and
   aliases (no expansion can happen, so "billion laughs" costs nothing), tags other than the
   standard str/int/float/bool/null/map/seq, a second document, nesting deeper than 64.
   Then the language (lang.py, repeat.py, overlay.py): `vars:` declared and given
   values, `${...}` evaluated, for_each stamped out, environment layers merged by
   written key; every value keeps the position it was written at.
3. Schema: the bundled JSON Schema (bootstrap/schema), errors mapped back to positions.
4. Specs: per the drivers' declarations (walked generically): bare-name list items and
   shorthand fields expanded, list-item defaults filled, secrets read (a missing one is
   a warning offline), paths resolved.
5. Keys: kinds in an order where the kinds a natural key refers to come first (projects
   before networks before subnets ...), so every address is known before other references
   are resolved; a duplicate natural key is an error naming both places.
6. References: by name, qualified when needed, preferring the referrer's own scope.
7. Semantic checks no schema can express (CIDRs and pools, port ranges, public keys ...):
   each kind's driver implements them as `check` (see checks.py).
8. A warning for a managed resource lacking what its create needs (`required_for_create`).
"""

from bootstrap.manifest.lang import LoadOptions
from bootstrap.manifest.loader import load
from bootstrap.manifest.yaml import YList, YMap, locate, parse_yaml, plain, resolve_plain

__all__ = ["LoadOptions", "YList", "YMap", "load", "locate", "parse_yaml", "plain", "resolve_plain"]
