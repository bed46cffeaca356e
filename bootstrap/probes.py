"""Probes: checks a plan needs that are not reads of the cloud's lists.

A driver declares them (`Driver.probes`) from the manifest and what was read: a local
file's digests, a key file's text, whether a password still works. The engine runs them
after reading, once each, and hands their results to the drivers' `diff` as facts, so
reading stays plain observation and every comparison happens in `diff`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud

# Probe -> its result.
Facts = Mapping["Probe", Any]


class Probe:
    """A frozen dataclass describing one check; `run` does its I/O."""

    def run(self, cloud: Cloud) -> Any:  # pragma: no cover - every probe overrides
        raise NotImplementedError


@dataclass(frozen=True)
class FileDigests(Probe):
    """Hex digests of a local file, one streamed pass for all algorithms."""

    path: str
    algos: tuple[str, ...]

    def run(self, cloud: Cloud) -> dict[str, str]:
        from bootstrap.drivers._glance import file_digests

        return file_digests(self.path, list(self.algos))


@dataclass(frozen=True)
class FileText(Probe):
    """A local text file's content ("" when it does not exist)."""

    path: str
    missing_ok: bool = False

    def run(self, cloud: Cloud) -> str:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            if self.missing_ok:
                return ""
            raise


def run_probes(cloud: Cloud, probes: Iterable[Probe], parallelism: int = 4) -> dict[Probe, Any]:
    """Run each distinct probe once; errors propagate (a plan never guesses)."""
    unique = list(dict.fromkeys(probes))
    if not unique:
        return {}

    def one(p: Probe) -> tuple[Probe, Any]:
        return p, p.run(cloud)  # a probe that asks the cloud retries with cloud.with_retries

    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(unique)))) as pool:
        return dict(pool.map(one, unique))
