"""The `lifecycle:` block every kind accepts: read it, check it against the kind.

The schema (`$defs/lifecycle`, shared by every part) checks the shape; this checks what
needs the kind: `ignore_changes` names fields the kind compares, and
`create_before_destroy` is possible for the kind (Nova flavor names, Keystone names and
keypair names are unique: a second one cannot exist while the first does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bootstrap.drivers.base import Driver
from bootstrap.errors import Source
from bootstrap.manifest.specs import Item
from bootstrap.model import Lifecycle

Report = Callable[[str, Source | None, Item | str | None], None]


def read_lifecycle(it: Item, drv: type[Driver], error: Report) -> Lifecycle:
    block: Any = it.spec.pop("lifecycle", None)
    if not isinstance(block, dict):
        return Lifecycle()
    ignore: set[str] = set()
    known = drv.updatable | drv.immutable
    for i, name in enumerate(block.get("ignore_changes") or []):
        if not isinstance(name, str):
            continue
        if name not in known:
            error(
                f"lifecycle.ignore_changes: {drv.kind} has no compared field {name!r}; "
                f"fields: {', '.join(sorted(known))}",
                it.src(("lifecycle", "ignore_changes", i)),
                it,
            )
            continue
        ignore.add(name)
    cbd = block.get("create_before_destroy")
    if cbd is True and drv.create_before_destroy_impossible:
        error(
            f"lifecycle.create_before_destroy is impossible for {drv.kind}: "
            f"{drv.create_before_destroy_impossible}",
            it.src(("lifecycle", "create_before_destroy")),
            it,
        )
        cbd = None
    return Lifecycle(
        prevent_destroy=block.get("prevent_destroy") is True,
        ignore_changes=frozenset(ignore),
        create_before_destroy=cbd if isinstance(cbd, bool) else None,
    )
