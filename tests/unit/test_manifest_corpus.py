"""The manifest corpus: every bad input reports exactly the expected located diagnostics.

tests/cases/manifest/invalid/<case>.yaml (or a folder <case>/ for multi-file cases) is
loaded like `bootstrap validate` does (loader + graph). Its expectations live in a sibling
<case>.expected (or <case>/expected), one diagnostic a line:

    [file:]LINE:COL: error|warning: TEXT

TEXT must occur in "summary [address]"; `{case}` stands for the case's folder. Every
expected diagnostic must be reported at that position and nothing else may be reported.

tests/cases/manifest/valid/<case>.yaml (or folder) must load without any diagnostic, and
its <case>.stages holds the exact `bootstrap graph` text output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bootstrap import graph, manifest, render
from bootstrap.errors import Diagnostic

CASES = Path(__file__).resolve().parent.parent / "cases" / "manifest"
# Variables the corpus may use; BOOTSTRAP_TEST_UNSET_VARIABLE is deliberately missing.
ENV = {"BOOTSTRAP_TEST_SECRET": "s3cr3t-Value!", "BOOTSTRAP_TEST_EMPTY": "", "PW": "pw-123"}
LINE = re.compile(
    r"^(?:(?P<file>[^:\s]+):)?(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<text>.+)$"
)


@dataclass
class Expected:
    file: str | None
    line: int
    column: int
    severity: str
    text: str

    def __str__(self) -> str:
        where = f"{self.file}:" if self.file else ""
        return f"{where}{self.line}:{self.column}: {self.severity}: {self.text}"


def cases(kind: str) -> list[Path]:
    folder = CASES / kind
    return sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix in (".yaml", ".yml"))


def expectations(case: Path) -> list[Expected]:
    path = case / "expected" if case.is_dir() else case.with_suffix(".expected")
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        m = LINE.match(raw)
        assert m, f"{path}: cannot parse expectation {raw!r}"
        out.append(Expected(m["file"], int(m["line"]), int(m["col"]), m["sev"], m["text"]))
    return out


def run(paths: list[str]) -> list[Diagnostic]:
    loaded, diags = manifest.load(paths, environ=ENV)
    if loaded is not None:
        _g, more = graph.build(loaded)
        diags = diags + more
    return diags


def matches(d: Diagnostic, exp: Expected, case: Path) -> bool:
    if d.source is None or d.severity != exp.severity:
        return False
    if (d.source.line, d.source.column) != (exp.line, exp.column):
        return False
    if exp.file is not None and os.path.relpath(d.source.file, case) != exp.file:
        return False
    folder = str(case if case.is_dir() else case.parent)
    shown = d.summary + (f" [{d.address}]" if d.address else "")
    return exp.text.replace("{case}", folder) in shown


def test_the_corpus_is_large_enough():
    assert len(cases("invalid")) >= 60
    assert len(cases("valid")) >= 5


@pytest.mark.parametrize("case", cases("invalid"), ids=lambda p: p.stem)
def test_invalid_case(case: Path):
    expected = expectations(case)
    assert expected, "a case without expectations could never fail"
    diags = run([str(case)])
    shown = "\n".join(d.format() for d in diags) or "(nothing)"
    assert any(d.is_error for d in diags), f"no error reported; got:\n{shown}"
    unmatched = list(diags)
    for exp in expected:
        found = next((d for d in unmatched if matches(d, exp, case)), None)
        assert found is not None, f"expected `{exp}`; got:\n{shown}"
        unmatched.remove(found)
    assert not unmatched, "unexpected: " + "\n".join(d.format() for d in unmatched)


@pytest.mark.parametrize("case", cases("valid"), ids=lambda p: p.stem)
def test_valid_case(case: Path):
    loaded, diags = manifest.load([str(case)], environ=ENV)
    assert loaded is not None
    assert diags == [], "\n".join(d.format() for d in diags)
    g, more = graph.build(loaded)
    assert more == []
    expected = (case.parent / (case.stem + ".stages")).read_text(encoding="utf-8")
    assert render.graph_text(g, graph.stages(g)) + "\n" == expected


def test_every_diagnostic_is_located():
    """file:line:column on every diagnostic of the corpus (1-based)."""
    for case in cases("invalid"):
        for d in run([str(case)]):
            assert d.source is not None and d.source.line >= 1 and d.source.column >= 1, (
                case.name,
                d.format(),
            )
