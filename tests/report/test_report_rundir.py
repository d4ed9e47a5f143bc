"""Reading a run directory: each file alone, results.csv, and one clear error for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.support.report_run import (
    cli_json,
    dump,
    overfit_results_csv,
    prediction_rows,
    write_jsonl,
)

from ftlens.errors import DataError
from ftlens.report.render import write_report
from ftlens.report.rundir import load_run_dir


def error_of(run_dir: Path) -> str:
    with pytest.raises(DataError) as info:
        load_run_dir(run_dir)
    return info.value.render()


def test_missing_directory(tmp_path: Path) -> None:
    text = error_of(tmp_path / "nope")
    assert "no such run directory" in text and "nope" in text


def test_a_file_is_not_a_run_directory(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    assert "not a directory" in error_of(tmp_path / "x.json")


@pytest.mark.parametrize("contents", [{}, {"provenance.json": "{}", "notes.txt": "hi"}])
def test_a_directory_without_section_files(tmp_path: Path, contents: dict[str, str]) -> None:
    for name, text in contents.items():
        (tmp_path / name).write_text(text)
    text = error_of(tmp_path)
    assert "none of the files" in text
    for name in ("audit.json", "curves.json", "eval.json", "results.csv"):
        assert name in text


@pytest.mark.parametrize("name", ["audit.json", "curves.json", "eval.json", "provenance.json"])
def test_corrupt_json_names_the_file_and_line(fixture_run: Path, name: str) -> None:
    path = fixture_run / name
    path.write_text(path.read_text()[:200])  # truncated
    text = error_of(fixture_run)
    assert text.startswith(f"{path}:")
    assert "not valid JSON" in text


def test_empty_file_is_named(fixture_run: Path) -> None:
    (fixture_run / "eval.json").write_text("\n")
    text = error_of(fixture_run)
    assert str(fixture_run / "eval.json") in text and "empty" in text


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("eval.json", {"verdict": "ready", "findings": []}, "missing key 'metrics'"),
    ("eval.json", [1, 2], "the top level is a list"),
    ("audit.json", {"verdict": "great", "splits": {}, "model": {}, "findings": []},
     "'verdict' is 'great'"),
    ("curves.json", {"verdict": "ready", "findings": [{"id": "x", "severity": "bad"}]},
     "'findings[0].severity' is 'bad'"),
    ("curves.json", {"verdict": "ready", "findings": [], "train": {"steps": [1, 2],
                     "raw": [1.0], "smooth": [1.0, 2.0], "noise": 0.1}},
     "'train.raw' and 'train.steps' differ in length"),
    ("provenance.json", {"data": [{"name": "train", "path": 3, "sha256": "x"}]},
     "'data[0].path' is a number, expected a string"),
])
def test_wrong_shape_names_the_file_and_key(fixture_run: Path, name: str, data: object,
                                            expected: str) -> None:
    (fixture_run / name).write_text(json.dumps(data))
    text = error_of(fixture_run)
    assert text.startswith(f"{fixture_run / name}: ")
    assert expected in text
    assert "regenerate it with" in text


def test_threshold_scores_must_match_flags(fixture_run: Path) -> None:
    path = fixture_run / "eval.json"
    data = json.loads(path.read_text())
    data["threshold"]["is_positive"] = data["threshold"]["is_positive"][:-1]
    path.write_text(json.dumps(data))
    assert "one per score" in error_of(fixture_run)


@pytest.mark.parametrize("name", ["audit", "curves", "eval"])
def test_each_file_alone_makes_its_section(fixture_run: Path, tmp_path: Path,
                                           name: str) -> None:
    alone = tmp_path / f"only-{name}"
    alone.mkdir()
    shutil.copy(fixture_run / f"{name}.json", alone)
    report = load_run_dir(alone)
    assert [s.name for s in report.sections] == [name]
    assert report.provenance is None
    assert report.verdict == report.sections[0].verdict
    html = write_report(alone).html.read_text()
    assert f'<section id="{name}">' in html
    others = {"audit", "curves", "eval", "provenance"} - {name}
    assert not any(f'<section id="{o}">' in html for o in others)


def test_results_csv_alone_is_diagnosed(tmp_path: Path) -> None:
    overfit_results_csv(tmp_path / "results.csv")
    report = load_run_dir(tmp_path)
    (curves,) = report.sections
    assert curves.name == "curves" and curves.source == "results.csv"
    assert curves.note == "diagnosed from results.csv"
    assert "overfitting" in {f.id for f in curves.findings}
    html = write_report(tmp_path).html.read_text()
    assert 'class="train-smooth"' in html and 'class="valid-smooth"' in html


def test_results_csv_fills_in_the_points_curves_json_lacks(fixture_run: Path) -> None:
    path = fixture_run / "curves.json"
    data = json.loads(path.read_text())
    findings = data["findings"]
    data["train"] = data["valid"] = None
    path.write_text(json.dumps(data))
    assert 'class="train-smooth"' not in write_report(fixture_run).html.read_text()
    overfit_results_csv(fixture_run / "results.csv", seed=5, n_steps=120)
    curves = load_run_dir(fixture_run).section("curves")
    assert curves is not None and curves.note == "loss points read from results.csv"
    assert curves.data["train"]["steps"][:3] == [1, 2, 3]
    assert [f.id for f in curves.findings] == [f["id"] for f in findings]  # curves.json's
    assert 'class="train-smooth"' in write_report(fixture_run).html.read_text()


def test_results_csv_is_ignored_when_curves_json_has_points(fixture_run: Path) -> None:
    (fixture_run / "results.csv").write_text("not,a\nresult,file\n")
    assert load_run_dir(fixture_run).section("curves").note == ""  # type: ignore[union-attr]


def test_broken_results_csv_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("step,train_loss\n1,abc\n")
    text = error_of(tmp_path)
    assert "results.csv" in text


def test_overall_verdict_is_argued_over_every_section(fixture_run: Path) -> None:
    report = load_run_dir(fixture_run)
    assert {s.name: s.verdict for s in report.sections} == {
        "audit": "not_ready", "curves": "not_ready", "eval": "inconclusive"}
    decision = report.decision
    assert report.verdict == decision.verdict == "not_ready"
    fails = {(r.section, r.finding) for r in decision.reasons if r.verdict == "not_ready"}
    assert fails and {s for s, _ in fails} <= {"audit", "curves", "eval"}
    for section, finding in fails:
        assert any(f.id == finding and f.severity == "fail"
                   for f in report.section(section).findings)  # type: ignore[union-attr]


def test_findings_are_ordered_by_severity(fixture_run: Path) -> None:
    severities = [f.severity for _, f in load_run_dir(fixture_run).findings]
    assert severities == sorted(severities, key=["fail", "warn", "info"].index)
    assert len(severities) == sum(
        len(json.loads((fixture_run / f"{n}.json").read_text())["findings"])
        for n in ("audit", "curves", "eval"))


def test_odd_finding_details_do_not_break_the_page(fixture_run: Path) -> None:
    path = fixture_run / "audit.json"
    data = json.loads(path.read_text())
    for f in data["findings"]:
        f["details"] = {"groups": "not a list", "issues": [1, None], "count": "many"}
    path.write_text(json.dumps(data))
    written = write_report(fixture_run)
    assert "No repeated inputs" in written.html.read_text()
    assert written.summary["key_numbers"]["audit"]["leaked_inputs"] == 0


def eval_only(tmp_path: Path, rows: list[dict[str, object]], *args: str) -> Path:
    run = tmp_path / "run"
    preds = write_jsonl(tmp_path / "preds.jsonl", rows)
    dump(run / "eval.json", cli_json("metrics", str(preds), *args))
    return run


def test_eval_without_scores_has_no_tradeoff_or_comparison(tmp_path: Path) -> None:
    rows = [{"label": r["label"], "prediction": r["prediction"]}
            for r in prediction_rows(0, 60, 0.45)]
    html = write_report(eval_only(tmp_path, rows)).html.read_text()
    assert '<section id="eval">' in html and 'id="confusion"' in html
    assert 'id="tradeoff"' not in html and 'id="comparison"' not in html
    assert "application/json" not in html


def test_multiclass_slider_is_one_against_the_rest(tmp_path: Path) -> None:
    labels = ("billing", "tech", "sales")
    rng = np.random.default_rng(4)
    rows = []
    for i in range(60):
        probs = rng.dirichlet([1.0, 1.0, 1.0])
        probs[i % 3] += 0.6
        probs /= probs.sum()
        rows.append({"label": labels[i % 3], "prediction": labels[int(np.argmax(probs))],
                     "probs": dict(zip(labels, np.round(probs, 4).tolist(), strict=True))})
    written = write_report(eval_only(tmp_path, rows, "--positive", "tech"))
    html = written.html.read_text()
    assert 'id="tradeoff"' in html and "<th>not tech</th>" in html
    assert written.summary["key_numbers"]["eval"]["threshold"]["positive"] == "tech"
