"""Environments: layers of files over a base, merged resource by resource.

A resource of a later layer that names the same resource as an earlier one (same kind,
same key fields as written: `name`, and `project`/`domain`/... where the kind has them)
changes it: its fields replace the earlier ones, maps merge key by key, lists are
replaced whole, `state: absent` makes it absent in that environment. Anything else in a
layer is simply added. Two files of one layer changing the same resource is an error.
Merged values keep the file and line they came from.
"""

from __future__ import annotations

import json
from typing import Any

from bootstrap.drivers.base import Driver
from bootstrap.errors import Source
from bootstrap.manifest.lang import Report
from bootstrap.manifest.specs import File
from bootstrap.manifest.yaml import YList, YMap, plain


def written_key(kind: str, node: YMap, drv: type[Driver]) -> str:
    """The resource's natural key as written (before references are resolved)."""
    parts = [plain(node.get(f)) for f in drv.key_fields]
    return kind + json.dumps(parts, sort_keys=True, default=str)


def merge(base: YMap, over: YMap) -> YMap:
    out = type(base).__new__(type(base))
    YMap.__init__(out, base.start)
    if hasattr(base, "each_key"):
        out.each_key = base.each_key  # type: ignore[attr-defined]
    for source in (base, over):
        for k, v in source.items():
            if source is over and isinstance(v, YMap) and isinstance(out.get(k), YMap):
                v = merge(out[k], v)
            out[k] = v
            out.key_src[k], out.val_src[k] = source.key_src[k], source.val_src[k]
    return out


def merge_layers(
    layers: list[list[File]], drivers: dict[str, type[Driver]], report: Report
) -> None:
    """Fold every layer into the ones before it, in place."""
    if len(layers) < 2:
        return  # no environment: nothing to fold (and no written keys to compute)
    # written key -> (file whose section holds it, kind, position in the section)
    known: dict[str, tuple[File, str, int]] = {}
    for number, files in enumerate(layers):
        changed: dict[str, Source] = {}
        for f in files:
            for kind, drv in drivers.items():
                section = f.root.get(kind)
                if not isinstance(section, YList):
                    continue
                kept = YList(section.start)
                for node, src in zip(section, section.item_src, strict=True):
                    if not isinstance(node, YMap) or number == 0:
                        keep(kept, node, src, known, f, kind, drv)
                        continue
                    key = written_key(kind, node, drv)
                    if key in changed:
                        report(
                            f"two files of one environment change the same {kind} "
                            f"resource (also at {changed[key]})",
                            node.start,
                        )
                        continue
                    changed[key] = node.start
                    if key in known:
                        owner, okind, index = known[key]
                        target = owner.root[okind]
                        target[index] = merge(target[index], node)
                    else:
                        keep(kept, node, src, known, f, kind, drv)
                f.root[kind] = kept


def keep(
    kept: YList, node: Any, src: Source, known: dict, f: File, kind: str, drv: type[Driver]
) -> None:
    if isinstance(node, YMap):
        known.setdefault(written_key(kind, node, drv), (f, kind, len(kept)))
    kept.append(node)
    kept.item_src.append(src)
