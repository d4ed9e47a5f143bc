"""report.md: the pull-request summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ftlens.report.markdown import markdown_summary, md
from ftlens.report.rundir import load_run_dir


def test_summary_of_the_fixture_run(fixture_run: Path) -> None:
    report = load_run_dir(fixture_run)
    text = markdown_summary(report)
    lines = text.splitlines()
    assert lines[0] == "## ftlens report: ❌ NOT READY"
    assert "| Data audit | not ready | 1 | 7 | audit.json |" in lines
    assert "| Loss curves | not ready | 1 | 0 | curves.json |" in lines
    assert "| Evaluation | inconclusive | 0 | 3 | eval.json |" in lines
    eval_data = json.loads((fixture_run / "eval.json").read_text())
    acc = eval_data["metrics"]["accuracy"]
    lo, hi = eval_data["bootstrap"]["accuracy"]
    assert f"- accuracy {acc:.1%} (95 % CI {lo:.1%}–{hi:.1%})" in text
    curves = json.loads((fixture_run / "curves.json").read_text())
    assert (f"- loss: best checkpoint at step {curves['best_checkpoint']['step']}; overfitting "
            f"from step {curves['overfitting']['onset_step']}") in lines
    # every failure and warning is listed before the informational ones, which fold away
    folded = text.index("<details>")
    for _, f in report.findings:
        assert md(f.title) in text
        assert (text.index(md(f.title)) > folded) == (f.severity == "info")
    assert lines[-1].startswith("**Provenance**: model ft:gpt-4o-mini-2024-07-18:acme:spam:abc123")
    prov = json.loads((fixture_run / "provenance.json").read_text())
    assert f"(sha256 {prov['data'][0]['sha256'][:12]})" in lines[-1]


def test_only_the_sections_present(fixture_run: Path, tmp_path: Path) -> None:
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(fixture_run / "eval.json", only)
    text = markdown_summary(load_run_dir(only))
    assert text.startswith("## ftlens report: ⚠️ INCONCLUSIVE\n")
    assert "| Evaluation |" in text
    assert "Data audit" not in text and "Loss curves" not in text
    assert "Provenance" not in text


def test_no_failures_or_warnings_says_so(fixture_run: Path) -> None:
    path = fixture_run / "eval.json"
    data = json.loads(path.read_text())
    data["findings"] = [f for f in data["findings"] if f["severity"] == "info"]
    data["verdict"] = "ready"
    path.write_text(json.dumps(data))
    for name in ("audit.json", "curves.json"):
        (fixture_run / name).unlink()
    text = markdown_summary(load_run_dir(fixture_run))
    assert text.startswith("## ftlens report: ✅ READY\n")
    assert "- no failures or warnings" in text


def test_user_text_is_escaped() -> None:
    assert md("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert md("a | b *c* _d_ [e](f) `g`") == r"a \| b \*c\* \_d\_ \[e\](f) \`g\`"
    assert md("two\nlines") == "two lines"
