"""`apply --summary-json FILE`: one JSON document per apply run, for monitoring a timer.

Written on every outcome the CLI reaches — converged, nothing to do, held back, failed
part-way, interrupted, refused before the first write — with the exit code the process
exits with. Its shape is published as schemas/summary.schema.json (generated from
`bootstrap/schema/documents.py`). Errors pass through the caller's mask, so a secret an
API echoed back never reaches the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bootstrap.apply import FAILED, ApplyResult, skipped_by
from bootstrap.plan import Plan

SUMMARY_FORMAT_VERSION = 1


@dataclass
class RunRecord:
    """What an apply run learned, phase by phase; the CLI fills it in as it goes."""

    started: float = field(default_factory=time.time)
    clock: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    plan: Plan | None = None
    manifest_files: list[str] = field(default_factory=list)
    result: ApplyResult | None = None
    apply_requests: int = 0
    error: str | None = None
    _mark: float = field(default_factory=time.monotonic)

    def phase(self, name: str) -> None:
        """Close the phase `name`: the time since the previous mark is spent on it."""
        now = time.monotonic()
        self.phases[name] = round(now - self._mark, 3)
        self._mark = now


def status_of(record: RunRecord, exit_code: int) -> str:
    """One word a dashboard can group by."""
    result = record.result
    if exit_code == 130 or (result is not None and result.interrupted):
        return "interrupted"
    if record.error is not None or exit_code == 1:
        return "failed"
    if result is not None and result.held or (
        record.plan is not None and any(c.held_back for c in record.plan.changes)
    ):
        return "held-back"
    if record.plan is not None and record.plan.has_changes and result is not None:
        return "changed"
    return "no-changes"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def summary_document(
    record: RunRecord, exit_code: int, version: str, mask: Callable[[str], str]
) -> dict[str, Any]:
    plan, result = record.plan, record.result
    # JSON keys in snake_case, as the plan's summary has them (held_back, not_started).
    outcomes = (
        {k.replace(" ", "_"): v for k, v in result.summary().items()}
        if result is not None
        else None
    )
    failures = []
    held = []
    if result is not None:
        skipped = skipped_by(result)
        for r in sorted(result.results.values(), key=lambda r: str(r.address)):
            if r.outcome == FAILED:
                failures.append(
                    {
                        "address": str(r.address),
                        "error": mask(str(r.error)),
                        "skipped": sorted(skipped.get(str(r.address), [])),
                    }
                )
        held = [
            {"address": str(r.address), "reason": r.detail}
            for r in sorted(result.held, key=lambda r: str(r.address))
        ]
    elif plan is not None:
        held = [
            {"address": str(c.address), "reason": c.held_back}
            for c in plan.changes
            if c.held_back
        ]
    plan_summary = plan.to_json()["summary"] if plan is not None else None
    return {
        "format_version": SUMMARY_FORMAT_VERSION,
        "tool_version": version,
        "status": status_of(record, exit_code),
        "exit_code": exit_code,
        "started_at": _iso(record.started),
        "finished_at": _iso(time.time()),
        "manifest_files": list(record.manifest_files),
        "stack": plan.stack if plan is not None else None,
        "targets": plan.targets.to_json() if plan is not None and plan.targets else None,
        "plan": plan_summary,
        "outcomes": outcomes,
        "requests": {
            "read": plan.requests if plan is not None else 0,
            "apply": record.apply_requests,
        },
        "durations": {
            "total_seconds": round(time.monotonic() - record.clock, 3),
            **{f"{k}_seconds": v for k, v in record.phases.items()},
        },
        "failures": failures,
        "held_back": held,
        "interrupted_by": result.interrupted if result is not None else None,
        "error": mask(record.error) if record.error is not None else None,
    }


def write_summary(path: str, doc: dict[str, Any]) -> None:
    """`-`: one compact line on stdout, after the run's output (a log collector's last
    line). A file: atomically, so a monitor never reads half a document; where a rename
    cannot replace it (a device, a bind-mounted file), written in place."""
    if path == "-":
        print(json.dumps(doc, separators=(",", ":")), flush=True)
        return
    text = json.dumps(doc, indent=2) + "\n"
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.path.isfile(path):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".summary-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
