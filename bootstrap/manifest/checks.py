"""What a driver's semantic checks see of one resource (Driver.check).

The checks run after references are resolved, only on what the schema accepted; they
report through the loader so every diagnostic is located where the value was written.
"""

from __future__ import annotations

from typing import Any

from bootstrap.manifest.refs import References, Report
from bootstrap.manifest.specs import Item, get_at
from bootstrap.model import Address, Ref


class Checker:
    """One resource under check: its spec, and located error/warning reports."""

    def __init__(self, item: Item, refs: References, error: Report, warn: Report):
        self._item = item
        self._refs = refs
        self._error = error
        self._warn = warn

    @property
    def spec(self) -> dict[str, Any]:
        return self._item.spec

    @property
    def state(self) -> str:
        return self._item.state

    def error(self, path: tuple, text: str, at_key: bool = False) -> None:
        self._error(text, self._item.src(path, at_key), self._item)

    def warn(self, path: tuple, text: str) -> None:
        self._warn(text, self._item.src(path), self._item)

    def get(self, path: tuple) -> Any:
        return get_at(self.spec, path)

    def ok(self, path: tuple) -> bool:
        """The value at `path` is given and the schema accepted it."""
        return get_at(self.spec, path) is not None and not self._item.is_bad(path)

    def is_bad(self, path: tuple) -> bool:
        """The schema reported a problem at, above or below `path`."""
        return self._item.is_bad(path)

    def written(self, field_name: str) -> bool:
        """The manifest gives the field (even when its value could not be used)."""
        return field_name in self._item.node

    def target(self, value: Any) -> Item | None:
        """The declared resource a reference names (its `.address` and `.spec`)."""
        return self._refs.by_address.get(value.address) if isinstance(value, Ref) else None

    @staticmethod
    def scope(value: Any, qualifier: str) -> Address | None:
        """The domain or project a resolved scope field names (the Default domain if unset)."""
        return References.scope_value(value, qualifier)
