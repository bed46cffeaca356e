"""One tree of errors, and the diagnostics that validate/plan collect.

Nothing in the engine turns an error into a boolean: a failure is an exception of this
tree (or a Diagnostic in a list) until the CLI decides the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Source(NamedTuple):
    """Where something was written: 1-based line and column. A named tuple (ordered and
    hashable like one): a manifest of 10,000 resources makes about 100,000 of them."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" | "warning"
    summary: str
    detail: str = ""
    address: str | None = None
    source: Source | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self) -> str:
        where = f"{self.source}: " if self.source else ""
        addr = f" [{self.address}]" if self.address else ""
        text = f"{where}{self.severity}: {self.summary}{addr}"
        if self.detail:
            text += "\n    " + self.detail.replace("\n", "\n    ")
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "summary": self.summary,
            "detail": self.detail or None,
            "address": self.address,
            "file": self.source.file if self.source else None,
            "line": self.source.line if self.source else None,
            "column": self.source.column if self.source else None,
        }


class BootstrapError(Exception):
    """Root of every error the tool raises on purpose."""


class ManifestError(BootstrapError):
    """The manifest is invalid; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        first = errors[0].format() if errors else "invalid manifest"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ConfigError(BootstrapError):
    """Credentials or cloud selection are wrong (clouds.yaml, OS_* variables)."""


@dataclass
class CloudError(BootstrapError):
    """An OpenStack API call failed. `retryable` says whether trying again may help."""

    message: str
    address: str | None = None
    status: int | None = None
    retryable: bool = False
    request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f"{self.address}: " if self.address else ""
        code = f" (HTTP {self.status})" if self.status and "(HTTP" not in self.message else ""
        return f"{where}{self.message}{code}"


class NotFound(CloudError):
    pass


class Conflict(CloudError):
    pass


class Forbidden(CloudError):
    pass


class AmbiguousResource(CloudError):
    """Two live resources answer to one natural key: the tool refuses to guess."""


class ResourceFailed(CloudError):
    """A resource reached an error state (e.g. a server in ERROR with Nova's fault)."""


class WaitTimeout(CloudError):
    pass


class PlanError(BootstrapError):
    """The plan cannot be made or must not be applied (stale saved plan, refused change)."""


class StalePlan(PlanError):
    pass


class PreflightError(BootstrapError):
    """A permission or capability the plan needs is missing; checked before any write."""


class DependencyFailed(BootstrapError):
    """A resource was skipped because something it depends on failed."""

    def __init__(self, address: str, root: str):
        self.address = address
        self.root = root
        super().__init__(f"{address}: skipped because {root} failed")
