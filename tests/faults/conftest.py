"""Fault-injection tier: the tool against the local cloud while its requests fail.

Every test here is marked ``faults`` and ``integration`` (it needs the local cloud, so
`pytest -m 'not integration'` leaves it out). The figures of each scenario (faults
injected, exit codes of the runs, duplicates, missing markers, seconds) are printed at
the end of the run and written to ``$FAULTS_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROWS: list[dict] = []


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def report():
    return ROWS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("fault-injection figures")
    for r in ROWS:
        tr.write_line(
            f"{r['scenario']:<14} faults={r['injected']:>3} of {r['requests']:>4} requests "
            f"{r['kinds']}  exit codes={r['exit_codes']}  re-runs={r['reruns']}  "
            f"duplicates={r['duplicates']}  missing={r['missing']}  "
            f"unmarked={r['unmarked']}  {r['seconds']:.0f}s"
        )
    path = os.environ.get("FAULTS_REPORT")
    if path:
        Path(path).write_text(json.dumps(ROWS, indent=2))
