"""Run directories for the report tests, made with the real commands' ``--json`` output.

``python -m tests.support.report_run tests/fixtures/report/run`` rewrites the committed
golden-test run directory (then regenerate the golden with ``FTLENS_UPDATE_GOLDEN=1``).
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner
from tests.support.curve_generator import generate

from ftlens.cli import cli
from ftlens.report.provenance import write_provenance

ROOT = Path(__file__).resolve().parents[2]
FIXED_DATE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'


def cli_json(*args: str) -> dict[str, Any]:
    """What ``ftlens ARGS --json`` prints, parsed; run from the repository root."""
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def prediction_rows(seed: int, n: int, skill: float, labels: tuple[str, str] = ("spam", "ham"),
                    ) -> list[dict[str, Any]]:
    """Binary rows with probabilities (4 decimals), ids and a few unparseable answers;
    ``skill`` separates the classes' scores."""
    rng = np.random.default_rng(seed)
    pos, neg = labels
    out = []
    for i in range(n):
        is_pos = bool(rng.random() < 0.35)
        p = round(float(np.clip(skill * is_pos + (1 - skill) * rng.random(), 0, 1)), 4)
        pred = pos if p >= 0.5 else neg
        if i % 40 == 7:
            pred = "not sure"
        out.append({"id": f"m{i}", "label": pos if is_pos else neg, "prediction": pred,
                    "probs": {pos: p, neg: round(1 - p, 4)}})
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def overfit_results_csv(path: Path, seed: int = 3, n_steps: int = 160) -> Path:
    """A synthetic run that overfits, as an OpenAI result CSV."""
    run, _ = generate("overfit", seed, n_steps=n_steps)
    assert run.valid_loss is not None
    valid = dict(zip(run.valid_loss.steps.tolist(), run.valid_loss.values.tolist(), strict=True))
    lines = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for step, loss in zip(run.train_loss.steps.tolist(), run.train_loss.values.tolist(),
                          strict=True):
        v = valid.get(step)
        lines.append(f"{step},{loss:.5f},,{'' if v is None or math.isnan(v) else f'{v:.5f}'},")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def task_results_csv(path: Path, labels: tuple[str, str], n_steps: int = 60) -> Path:
    """An ftlens result CSV with task metrics every 10 steps: recall of ``labels[0]`` peaks at
    step 30 while the validation loss keeps falling."""
    import csv

    pos = labels[0]
    columns = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy",
               "classification/rows", "classification/macro_f1", f"classification/recall/{pos}"]
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(columns)
        for step in range(1, n_steps + 1):
            row: list[object] = [step, 2 * 0.96 ** step + 0.1, 0.5, "", ""]
            if step % 10 == 0:
                recall = 0.9 - 0.0004 * (step - 30) ** 2
                row[3:] = [2 * 0.97 ** step + 0.2, 0.6, 100, recall - 0.05, recall]
            out.writerow(row)
    return path


def dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def spam_run(run_dir: Path, work: Path, *, n: int = 120) -> dict[str, Path]:
    """audit.json of examples/spam, curves.json of an overfitting run, eval.json of a tuned
    model compared with its base, provenance.json. Returns the input files."""
    spam = ROOT / "examples" / "spam"
    files = {s: spam / f"{s}.jsonl" for s in ("train", "valid", "test")}
    dump(run_dir / "audit.json", cli_json(
        "audit", str(files["train"]), "--valid", str(files["valid"]), "--test",
        str(files["test"])))
    results = overfit_results_csv(work / "results.csv")
    dump(run_dir / "curves.json", cli_json("curves", str(results)))
    tuned = write_jsonl(work / "tuned.jsonl", prediction_rows(0, n, 0.45))
    base = write_jsonl(work / "base.jsonl", prediction_rows(0, n, 0.1))
    dump(run_dir / "eval.json", cli_json("metrics", str(tuned), "--compare", str(base)))
    write_provenance(run_dir, {**files, "predictions": tuned},
                     model="ft:smollm2-135m-instruct:ftlens:spam:ftjob-test",
                     base_model="smollm2-135m-instruct",
                     hyperparameters={"n_epochs": 2, "batch_size": 1,
                                      "learning_rate_multiplier": 1.0}, now=FIXED_DATE)
    return {"tuned": tuned, "base": base, "results": results, **files}


def xss_run(run_dir: Path, work: Path) -> None:
    """A run whose messages, labels, file names, model names and run name carry HTML."""
    data_dir = work / f"{SCRIPT[:-8]}"  # "<script>alert(1)<" + "/script>..." makes the path
    train = data_dir / f"script>{ATTR}.jsonl"
    system = {"role": "system", "content": f"classify {SCRIPT}"}
    lines = []
    for i in range(14):
        label = SCRIPT if i % 2 else ATTR
        lines.append(json.dumps({"messages": [
            system, {"role": "user", "content": f"message {i % 12} {ATTR} {SCRIPT}"},
            {"role": "assistant", "content": label}]}))
    lines.append(json.dumps({"messages": [
        system, {"role": "user", "content": "x", SCRIPT: 1, ATTR: 2},
        {"role": "assistant", "content": SCRIPT}]}))
    data_dir.mkdir(parents=True, exist_ok=True)
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dump(run_dir / "audit.json", cli_json("audit", str(train), "--model", f"{ATTR}{SCRIPT}"))
    curves = cli_json("curves", str(task_results_csv(work / "results.csv", (SCRIPT, ATTR))))
    curves["source"] = SCRIPT + ATTR
    dump(run_dir / "curves.json", curves)
    rows = prediction_rows(1, 60, 0.45, labels=(SCRIPT, ATTR))
    for r in rows[:3]:
        r["prediction"] = f"{ATTR} maybe"
    preds = write_jsonl(data_dir / f"script>{ATTR}.preds.jsonl", rows)
    base = write_jsonl(work / "base.jsonl", prediction_rows(1, 60, 0.1, labels=(SCRIPT, ATTR)))
    dump(run_dir / "eval.json", cli_json("metrics", str(preds), "--compare", str(base),
                                         "--positive", SCRIPT))
    write_provenance(run_dir, {SCRIPT: train, ATTR: preds}, model=SCRIPT, base_model=ATTR,
                     hyperparameters={SCRIPT: ATTR}, extra={ATTR: SCRIPT}, now=FIXED_DATE)


def fixture_run(run_dir: Path, work: Path) -> None:
    """The committed golden-test run: a broken dataset's audit, an overfitting run, a small
    evaluation with a baseline, provenance with relative paths."""
    broken = Path("examples") / "broken"
    dump(run_dir / "audit.json", cli_json(
        "audit", str(broken / "train.jsonl"), "--test", str(broken / "test.jsonl")))
    dump(run_dir / "curves.json", cli_json(
        "curves", str(overfit_results_csv(work / "results.csv", seed=5, n_steps=120))))
    tuned = write_jsonl(work / "tuned.jsonl", prediction_rows(2, 40, 0.5))
    base = write_jsonl(work / "base.jsonl", prediction_rows(2, 40, 0.2))
    dump(run_dir / "eval.json", cli_json("metrics", str(tuned), "--compare", str(base),
                                         "--bootstrap", "200"))
    write_provenance(run_dir, {"train": broken / "train.jsonl", "test": broken / "test.jsonl"},
                     model="ft:gpt-4o-mini-2024-07-18:acme:spam:abc123",
                     base_model="gpt-4o-mini-2024-07-18",
                     hyperparameters={"n_epochs": 3, "batch_size": 1,
                                      "learning_rate_multiplier": 1.8}, now=FIXED_DATE)


if __name__ == "__main__":  # regenerate the committed fixture run
    import os
    import tempfile

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        fixture_run(Path(sys.argv[1]), Path(tmp))


def leaky_run(run_dir: Path, work: Path, *, n: int = 120, leaked: int = 15) -> None:
    """The spam run, with an eval.json judged against training data that holds the first
    ``leaked`` test inputs."""
    spam_run(run_dir, work, n=n)
    rows = prediction_rows(0, n, 0.45)
    texts = [f"test message {i}: call {i * 7919 % 10007} about order {i * 31 % 97}"
             for i in range(n)]

    def chat_file(path: Path, pairs: list[tuple[str, str]]) -> Path:
        return write_jsonl(path, [{"messages": [{"role": "user", "content": t},
                                                {"role": "assistant", "content": y}]}
                                  for t, y in pairs])

    test = chat_file(work / "leaky-test.jsonl", [(t, r["label"]) for t, r in zip(
        texts, rows, strict=True)])
    train = chat_file(work / "leaky-train.jsonl", [(t, r["label"]) for t, r in zip(
        texts[:leaked], rows, strict=False)] + [(f"other {i}", "ham") for i in range(30)])
    dump(run_dir / "eval.json", cli_json(
        "metrics", str(work / "tuned.jsonl"), "--compare", str(work / "base.jsonl"),
        "--data", str(test), "--train", str(train)))
