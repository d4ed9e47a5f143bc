"""report.json of the committed run directory, against its golden copy.

Regenerate after an intended change: ``FTLENS_UPDATE_GOLDEN=1 pytest tests/report``."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.report_run import ROOT

from ftlens import __version__
from ftlens.report.render import write_report

GOLDEN = ROOT / "tests" / "fixtures" / "report" / "report.golden.json"
VOLATILE = ("generated", "ftlens_version")


def stable(summary: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in summary.items() if k not in VOLATILE}
    if out["provenance"] is not None:
        out["provenance"] = {k: v for k, v in out["provenance"].items()
                             if k not in ("date", "ftlens_version")}
    return out


def test_report_json_matches_the_golden_copy(fixture_run: Path, tmp_path: Path) -> None:
    now = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    written = write_report(fixture_run, tmp_path / "out" / "report.html", now=now)
    data = json.loads(written.json.read_text())
    assert data == written.summary
    assert data["generated"] == "2026-05-06T07:08:09Z"
    assert data["ftlens_version"] == __version__
    got = stable(data)
    if os.environ.get("FTLENS_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_report_json_keys_are_stable(fixture_run: Path) -> None:
    data = write_report(fixture_run).summary
    assert list(data) == ["schema", "title", "verdict", "reasons", "sections", "findings",
                          "key_numbers", "provenance", "ftlens_version", "generated"]
    assert data["reasons"] and all(set(r) == {"verdict", "section", "finding", "text"}
                                   for r in data["reasons"])
    assert data["schema"] == "ftlens.report/1"
    assert list(data["sections"]) == list(data["key_numbers"]) == ["audit", "curves", "eval"]
    assert set(data["findings"][0]) == {"section", "id", "severity", "title", "evidence",
                                        "advice", "inconclusive"}
    assert list(data["key_numbers"]["eval"]) == [
        "n", "n_unparseable", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "mcc",
        "positive", "per_class", "threshold", "comparison"]


def test_absent_sections_are_null(fixture_run: Path) -> None:
    for name in ("audit.json", "eval.json", "provenance.json"):
        (fixture_run / name).unlink()
    data = write_report(fixture_run).summary
    assert data["sections"]["audit"] is None and data["sections"]["eval"] is None
    assert data["key_numbers"]["audit"] is None and data["provenance"] is None
    assert data["sections"]["curves"]["source"] == "curves.json"
