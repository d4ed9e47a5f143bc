"""``ftlens metrics`` end to end: JSON output, gates and exit codes, comparison, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn import metrics as skm
from tests.support import cli_run

from ftlens.cli import cli

ROOT = Path(__file__).resolve().parents[2]
N = 120


def _rows(seed: int = 0, n: int = N) -> list[dict[str, Any]]:
    """Binary spam/ham rows with probabilities, a few unparseable answers, ids."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        spam = bool(rng.random() < 0.35)
        p = float(np.clip(0.45 * spam + 0.55 * rng.random(), 0, 1))
        pred = "spam" if p >= 0.5 else "ham"
        if i % 40 == 7:
            pred = "not sure"
        out.append({"id": f"m{i}", "label": "spam" if spam else "ham", "prediction": pred,
                    "probs": {"spam": round(p, 4), "ham": round(1 - p, 4)}})
    return out


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def preds(tmp_path: Path) -> Path:
    return _write(tmp_path / "preds.jsonl", _rows())


invoke, as_json, run_main = cli_run.helpers("metrics")


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftlens", "metrics", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def one_clear_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    assert stderr.startswith("error:")
    return stderr


def test_json_output(preds: Path) -> None:
    rows = _rows()
    data = as_json(str(preds), "--positive", "spam")
    assert data["verdict"] in ("ready", "not_ready", "inconclusive")
    assert data["positive"] == "spam"
    m = data["metrics"]
    y_true = [r["label"] for r in rows]
    y_pred = [r["prediction"] for r in rows]
    assert m["n"] == N
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    conf = m["confusion"]
    assert conf["rows"] == ["ham", "spam"]
    assert conf["columns"] == ["ham", "spam", "unparseable"]
    assert sum(map(sum, conf["matrix"])) == N
    assert sum(row[-1] for row in conf["matrix"]) == sum(p == "not sure" for p in y_pred) == 3
    per_class = {c["label"]: c for c in m["per_class"]}
    assert set(per_class) == {"ham", "spam"}
    assert per_class["spam"]["recall"] == pytest.approx(
        skm.recall_score(y_true, y_pred, labels=["spam"], average="macro"))
    assert per_class["spam"]["support"] == y_true.count("spam")
    boot = data["bootstrap"]
    assert boot["resamples"] == 1000 and boot["seed"] == 0
    lo, hi = boot["per_class"]["spam"]["recall"]
    assert lo <= per_class["spam"]["recall"] <= hi
    th = data["threshold"]
    assert th["positive"] == "spam"
    assert th["curves"]["pr"]["columns"] == ["recall", "precision"]
    points = th["curves"]["pr"]["points"]
    assert points and all(len(p) == 2 and 0 <= p[0] <= 1 and 0 <= p[1] <= 1 for p in points)
    assert th["curves"]["roc_auc"] == pytest.approx(skm.roc_auc_score(
        [t == "spam" for t in y_true], [r["probs"]["spam"] for r in rows]))
    assert th["scores"] == [r["probs"]["spam"] for r in rows]
    assert th["is_positive"] == [int(t == "spam") for t in y_true]
    assert th["chosen"]["threshold"] in th["scores"]
    assert {f["id"] for f in data["findings"]} >= {"threshold_choice", "threshold_tuned_on_test",
                                                    "unparseable_outputs"}
    for f in data["findings"]:
        assert set(f) >= {"id", "severity", "title", "evidence", "advice"}


def test_tune_on_split_in_json(preds: Path) -> None:
    th = as_json(str(preds), "--positive", "spam", "--tune-on-split", "0.5")["threshold"]
    assert th["held_out"] is True and th["n_reported"] == N // 2
    assert th["metrics_at_0_5"]["n"] == N // 2


def test_terminal_output(preds: Path) -> None:
    result = invoke(str(preds), "--positive", "spam", "--target-recall", "0.9")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for word in ("ftlens metrics", "confusion matrix", "unparseable", "macro-F1", "verdict:",
                 "recall >= 0.9"):
        assert word in text, word


@pytest.mark.parametrize(("require", "code"), [
    (["recall(spam)>=0.99"], 1),
    (["recall(spam)>=0.1", "accuracy>=0.5"], 0),
    (["accuracy>=0.5", "precision(ham)>=0.999"], 1),
])
def test_require_sets_the_exit_code(preds: Path, require: list[str], code: int) -> None:
    args = [str(preds), "--positive", "spam", "--json"]
    for r in require:
        args += ["--require", r]
    result = invoke(*args)
    assert result.exit_code == code, (result.output, result.exception)
    data = json.loads(result.stdout)
    failed = [f for f in data["findings"] if f["id"] == "requirement_failed"]
    assert bool(failed) == (code == 1)


def test_require_exit_codes_with_python_dash_m(preds: Path) -> None:
    bad = run_module(str(preds), "--positive", "spam", "--require", "recall(spam)>=0.99",
                     "--json")
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["verdict"] == "not_ready"
    good = run_module(str(preds), "--require", "accuracy>=0.1")
    assert good.returncode == 0, good.stderr
    assert "verdict:" in good.stdout


def test_bad_file_is_exit_2_with_one_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.jsonl"
    p.write_text('{"label": "spam", "prediction": "spam"}\n{"label": "ham", "predic\n')
    proc = run_module(str(p), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    one_clear_error(proc.stderr)
    assert f"{p}:2" in proc.stderr


@pytest.mark.parametrize("content", [
    "",  # empty
    '{"prediction": "spam"}\n',  # no label
    "gold,answer\nspam,spam\n",  # CSV without the columns
])
def test_unreadable_inputs_are_exit_2(tmp_path: Path, content: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / ("p.csv" if "," in content else "p.jsonl")
    p.write_text(content)
    code, out, err = run_main([str(p)], capsys)
    assert code == 2 and out == ""
    assert str(p) in one_clear_error(err)


def test_missing_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main([str(tmp_path / "nope.jsonl")], capsys)
    assert code == 2
    assert "nope.jsonl" in one_clear_error(err)


def test_compare_aligns_a_shuffled_baseline_by_id(tmp_path: Path) -> None:
    cand_rows = _rows(1)
    rng = np.random.default_rng(3)
    base_rows = [dict(r) for r in cand_rows]
    for r in base_rows:  # the baseline errs on about a quarter of the items
        if rng.random() < 0.25:
            r["prediction"] = "ham" if r["label"] == "spam" else "spam"
        else:
            r["prediction"] = r["label"]
    order = rng.permutation(len(base_rows))
    cand = _write(tmp_path / "tuned.jsonl", cand_rows)
    base = _write(tmp_path / "base.jsonl", [base_rows[i] for i in order])
    cmp = as_json(str(cand), "--compare", str(base))["comparison"]
    ok_c = np.array([r["prediction"] == r["label"] for r in cand_rows])
    ok_b = np.array([r["prediction"] == r["label"] for r in base_rows])
    assert cmp["n"] == N
    assert cmp["only_candidate"] == int((ok_c & ~ok_b).sum())
    assert cmp["only_baseline"] == int((~ok_c & ok_b).sum())
    assert cmp["both_correct"] == int((ok_c & ok_b).sum())
    acc = next(d for d in cmp["differences"] if d["name"] == "accuracy")
    assert acc["estimate"] == pytest.approx(ok_c.mean() - ok_b.mean())


def test_compare_without_ids_checks_the_rows_line_up(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{k: v for k, v in r.items() if k != "id"} for r in _rows(2)]
    cand = _write(tmp_path / "tuned.jsonl", rows)
    shorter = _write(tmp_path / "short.jsonl", rows[:-5])
    code, out, err = run_main([str(cand), "--compare", str(shorter)], capsys)
    assert code == 2 and out == ""
    msg = one_clear_error(err)
    assert str(shorter) in msg and f"{N - 5} rows" in msg and str(N) in msg
    shuffled = _write(tmp_path / "shuffled.jsonl", rows[::-1])
    code, _, err = run_main([str(cand), "--compare", str(shuffled)], capsys)
    assert code == 2
    assert "true label" in one_clear_error(err)


def test_compare_with_a_missing_id_is_exit_2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows(4)
    cand = _write(tmp_path / "tuned.jsonl", rows)
    base = _write(tmp_path / "base.jsonl", rows[1:])
    code, _, err = run_main([str(cand), "--compare", str(base)], capsys)
    assert code == 2
    assert "'m0'" in one_clear_error(err)


@pytest.mark.parametrize(("args", "message"), [
    (["--target-recall", "0.9", "--target-precision", "0.8"],
     "--target-recall and --target-precision are alternatives"),
    (["--tune-on-split", "1.5"], "--tune-on-split 1.5 must be between 0 and 1"),
    (["--tune-on-split", "0"], "must be between 0 and 1"),
    (["--cost-fp", "1"], "--cost-fp and --cost-fn go together"),
    (["--cost-fn", "3"], "--cost-fp and --cost-fn go together"),
    (["--tune-on-split", "0.5", "--tune-cv", "5"], "alternatives"),
    (["--tune-cv", "1"], "at least 2 folds"),
    (["--target-recall", "1.5"], "--target-recall 1.5 must be in (0, 1]"),
    (["--beta", "0"], "--beta 0.0 must be positive"),
    (["--threshold", "max"], "--threshold 'max' is not known"),
    (["--bootstrap", "10"], "at least 100 resamples"),
    (["--min-score", "1.5"], "--min-score 1.5"),
    (["--require", "recall(spam)>=high"], "cannot read the requirement"),
    (["--require", "bogus"], "'bogus': it has no comparison"),
    (["--require", "bogus"], 'METRIC[(LABEL)] OP NUMBER'),
    (["--require", "recall(spam)>=90%"], "the bar is a percentage"),
    (["--require", "recall(spam)>=90%"], "0.9 for 90 %"),
    (["--require", "recall(fraud)>=0.9"], "'fraud'"),
    (["--positive", "fraud"], "'fraud'"),
])
def test_contradictory_or_bad_options_are_exit_2(preds: Path, args: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main([str(preds), *args], capsys)
    assert code == 2 and out == ""
    assert message in one_clear_error(err)


def test_contradictory_options_with_python_dash_m(preds: Path) -> None:
    proc = run_module(str(preds), "--target-recall", "0.9", "--target-precision", "0.8")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "are alternatives" in one_clear_error(proc.stderr)
    assert "pick one" in proc.stderr  # how to fix it


def test_metrics_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["metrics", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "ftlens metrics preds.jsonl --positive spam" in result.stdout
    assert '--require "recall(spam)>=0.9"' in result.stdout
    for option in ("--positive", "--target-recall", "--tune-on-split", "--compare", "--json"):
        assert option in result.stdout


def test_csv_with_custom_fields(tmp_path: Path) -> None:
    p = tmp_path / "preds.csv"
    p.write_text("gold,answer,conf\nspam,spam,0.9\nham,ham,0.2\nspam,ham,0.4\nham,ham,0.1\n"
                 "ham,spam,0.7\nham,ham,0.3\n", encoding="utf-8")
    data = as_json(str(p), "--label-field", "gold", "--prediction-field", "answer",
                   "--score-field", "conf", "--positive", "spam", "--bootstrap", "200")
    assert data["metrics"]["n"] == 6
    assert data["metrics"]["confusion"]["matrix"] == [[3, 1, 0], [1, 1, 0]]
    assert data["threshold"]["scores"] == [0.9, 0.2, 0.4, 0.1, 0.7, 0.3]
    assert data["bootstrap"]["resamples"] == 200


@pytest.mark.parametrize("require", ["macro_f1>=0.1", "f1(spam)>=0.1", "weighted_f1>0"])
def test_f1_gates_are_accepted(preds: Path, require: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    # the hint for a bad --require itself suggests "macro_f1>0.7"
    code, out, err = run_main([str(preds), "--require", require, "--json"], capsys)
    assert code == 0, err
    met = [f for f in json.loads(out)["findings"] if f["id"] == "requirement_met"]
    assert [f["details"]["requirement"] for f in met] == [require]


def _chat_file(path: Path, texts: list[str], labels: list[str]) -> Path:
    path.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": t}, {"role": "assistant", "content": y}]}) + "\n"
        for t, y in zip(texts, labels, strict=True)))
    return path


def test_predictions_without_inputs_are_matched_to_the_test_file_by_position(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows(n=40)
    texts = [f"message number {i} about topic {i * 37 % 101}" for i in range(40)]
    labels = [r["label"] for r in rows]
    test = _chat_file(tmp_path / "test.jsonl", texts, labels)
    train = _chat_file(tmp_path / "train.jsonl", [*texts[:5], "unrelated words here"],
                       [*labels[:5], "ham"])
    preds = _write(tmp_path / "preds.jsonl", [{k: v for k, v in r.items() if k != "probs"}
                                              for r in rows])
    out = as_json(str(preds), "--data", str(test), "--train", str(train))
    assert out["leakage"]["seen_rows"] == 5 and out["metrics"]["n"] == 35
    code, _, err = run_main([str(preds), "--train", str(train)], capsys)
    assert code == 2 and "do not carry their inputs" in err and "--data TEST.jsonl" in err
    code, _, err = run_main([str(preds), "--train", str(tmp_path / "nope.jsonl")], capsys)
    assert code == 2 and "nope.jsonl: no such file" in err
    short = _chat_file(tmp_path / "short.jsonl", texts[:30], labels[:30])
    code, _, err = run_main([str(preds), "--data", str(short), "--train", str(train)], capsys)
    assert code == 2 and "30 test examples but 40 predictions" in err
    swapped = _chat_file(tmp_path / "swapped.jsonl", texts, labels[::-1])
    if labels != labels[::-1]:
        code, _, err = run_main([str(preds), "--data", str(swapped), "--train", str(train)],
                                capsys)
        assert code == 2 and "the same rows in the same order" in err
    code, _, err = run_main([str(preds), "--data", str(test)], capsys)
    assert code == 2 and "--data only matters with --train, --valid or --audit" in err
    result = invoke(str(preds), "--data", str(test), "--train", str(train))
    assert "all rows vs the unseen rows" in result.stdout
    assert "judged on the 35 unseen of 40: 5 were seen in" in result.stdout


def test_a_requirement_names_its_label_as_labels_are_matched(
        preds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """"recall(SPAM)" is the recall of "spam", as answers are matched to labels."""
    exact = as_json(str(preds), "--require", "recall(spam)>=0.0")
    loose = as_json(str(preds), "--require", "recall( SPAM )>=0.0")
    pick = [f for f in exact["findings"] if f["id"].startswith("requirement")]
    assert pick and [(f["id"], f["evidence"].casefold()) for f in pick] == [
        (f["id"], f["evidence"].casefold())
        for f in loose["findings"] if f["id"].startswith("requirement")]
