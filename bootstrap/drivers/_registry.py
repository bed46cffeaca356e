"""The registry of kinds: every driver class, found by scanning this package.

A driver registers itself when its class is defined (Driver.__init_subclass__); importing
every public module of bootstrap/drivers/ is what defines them. Nothing else lists kinds.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bootstrap.drivers.base import Driver

_REGISTRY: dict[str, type[Driver]] = {}


def registry() -> dict[str, type[Driver]]:
    """Every registered driver class by kind, in manifest order (imports all drivers)."""
    _import_drivers()
    return {cls.kind: cls for cls in sorted(_REGISTRY.values(), key=lambda c: c.position)}


def driver_modules() -> list[str]:
    """Every module of this package that defines a kind (private helpers start with _)."""
    import bootstrap.drivers as package

    return [
        f"{package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and info.name != "base"
    ]


@functools.cache
def _import_drivers() -> None:
    # Once per process: registering is a side effect of importing the module.
    for module in driver_modules():
        importlib.import_module(module)


def kinds() -> tuple[str, ...]:
    """Every kind, in manifest order."""
    return tuple(registry())
