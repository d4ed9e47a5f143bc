"""Task metrics while the tiny model trains, on a two-class and a four-class set: events,
checkpoints and the result CSV carry them, and at a checkpoint they equal what `ftlens metrics`
computes from that checkpoint's own predictions on the validation rows."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.support.cli_run import helpers
from tests.support.toy_chat import TOY, chat, distinct, write_jsonl

from ftlens.core.task_metrics import PREFIX, ROWS
from ftlens.errors import ConfigError
from ftlens.io.chat_dataset import read_conversations
from ftlens.io.training_logs import read_run
from ftlens.train.artifacts import load_tuned
from ftlens.train.config import Event, TaskMetricsSettings, TrainConfig
from ftlens.train.engine import TrainResult, train
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.scoring import score_labels

_, metrics_json, _ = helpers("metrics")
TOPICS = {"billing": "my invoice charged twice refund", "login": "cannot sign in password reset",
          "shipping": "parcel late tracking courier", "other": "general question about hours"}


def _four_class(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    names = list(TOPICS)
    rows = []
    for i in range(n):
        label = names[i % 4]
        words = TOPICS[label].split()
        rng.shuffle(words)
        rows.append({"messages": [
            {"role": "system", "content": "Route the ticket: billing, login, shipping, other."},
            {"role": "user", "content": f"{' '.join(words)} ticket {seed}{i}"},
            {"role": "assistant", "content": label}]})
    return rows


def _train(tmp: Path, train_rows: list[dict[str, object]], valid_rows: list[dict[str, object]],
           settings: TaskMetricsSettings) -> tuple[TrainResult, list[Event], Path]:
    valid = write_jsonl(tmp / "valid.jsonl", valid_rows)
    config = TrainConfig(
        model="tiny-random-llama", training_file=str(write_jsonl(tmp / "train.jsonl",
                                                                 train_rows)),
        validation_file=str(valid), out_dir=str(tmp / "run"),
        hyperparameters=Hyperparameters(n_epochs=3, batch_size=4,
                                        learning_rate_multiplier=10.0),
        eval_every=2, valid_batch=3, keep_checkpoints=3, seed=1, task_metrics=settings)
    events: list[Event] = []
    return train(config, callbacks=[events.append]), events, valid


def _metrics(events: list[Event]) -> dict[int, dict[str, Any]]:
    return {int(e.data["step"]): e.data for e in events if e.type == "metrics" and e.data}


def _predictions(checkpoint: str, valid: Path, labels: tuple[str, ...], positive: str | None,
                 out: Path) -> Path:
    """The checkpoint's own predictions on the validation rows, reloaded from disk."""
    model, tok = load_tuned(checkpoint)
    convs = read_conversations(valid)
    prompts = [c.messages[:-1] for c in convs]
    probs = score_labels(model, tok, prompts, labels).probs
    lines = []
    for conv, p in zip(convs, probs, strict=True):
        if positive is not None:  # two classes: positive above 0.5
            pos = labels.index(positive)
            pred = positive if p[pos] > 0.5 else labels[1 - pos]
        else:
            pred = labels[int(np.argmax(p))]
        lines.append({"label": conv.label, "prediction": pred,
                      "probs": dict(zip(labels, map(float, p), strict=True))})
    out.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return out


def _check_against_metrics_cli(got: dict[str, Any], preds: Path, labels: tuple[str, ...],
                               positive: str | None) -> None:
    report = metrics_json(str(preds), *(["--positive", positive] if positive else []))
    m = report["metrics"]
    assert got[ROWS] == m["n"] == len(preds.read_text(encoding="utf-8").splitlines())
    assert round(got[PREFIX + "accuracy"] * m["n"]) == sum(
        row[i] for i, row in enumerate(m["confusion"]["matrix"]))  # counts: exactly
    assert got[PREFIX + "accuracy"] == pytest.approx(m["accuracy"], abs=1e-9)
    assert got[PREFIX + "macro_f1"] == pytest.approx(m["macro"]["f1"], abs=1e-9)
    assert got[PREFIX + "weighted_f1_score"] == pytest.approx(m["weighted"]["f1"], abs=1e-9)
    for c in m["per_class"]:
        for name in ("precision", "recall", "f1"):
            assert got[f"{PREFIX}{name}/{c['label']}"] == pytest.approx(c[name], abs=1e-9)
    if positive is not None:
        pos = next(c for c in m["per_class"] if c["label"] == positive)
        assert got[PREFIX + "precision"] == pytest.approx(pos["precision"], abs=1e-9)
        assert got[PREFIX + "recall"] == pytest.approx(pos["recall"], abs=1e-9)
        assert got[PREFIX + "f1.0"] == pytest.approx(pos["f1"], abs=1e-9)
        curves = report["threshold"]["curves"]
        assert got[PREFIX + "auroc"] == pytest.approx(curves["roc_auc"], abs=1e-9)
        assert got[PREFIX + "auprc"] == pytest.approx(curves["average_precision"], abs=1e-9)
    assert set(labels) == {c["label"] for c in m["per_class"]}


def _check_logs(result: TrainResult, events: list[Event], n_valid: int, sample: int) -> None:
    by_step = _metrics(events)
    epoch = result.total_steps // 3
    scored = {s for s, d in by_step.items() if ROWS in d}
    assert scored == {s for s, d in by_step.items() if "valid_loss" in d or s % epoch == 0}
    for s in scored:  # every row at an epoch's end, the sample between
        assert by_step[s][ROWS] == (n_valid if s % epoch == 0 else sample)
    for ckpt in result.checkpoints:  # the checkpoints carry their step's values
        assert {k: v for k, v in ckpt["metrics"].items() if k.startswith(PREFIX)} == {
            k: v for k, v in by_step[ckpt["step"]].items() if k.startswith(PREFIX)}
    with (result.out_dir / "results.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result.total_steps
    for row in rows:
        data = by_step[int(row["step"])]
        for key in (k for k in row if k.startswith(PREFIX)):
            if key in data:
                assert float(row[key]) == pytest.approx(data[key], rel=1e-5)
            else:
                assert row[key] == ""
    run = read_run(result.out_dir / "results.csv")  # and the curves reader reads them back
    assert set(run.task_metrics) == {k for d in by_step.values() for k in d
                                     if k.startswith(PREFIX)}


def test_two_classes(tmp_path: Path) -> None:
    valid_rows = distinct(20, seed=5)
    settings = TaskMetricsSettings(positive="spam", betas=(0.5, 1.0, 2.0), sample=6)
    result, events, valid = _train(tmp_path, [chat(t, y) for t, y in TOY], valid_rows, settings)
    assert result.status == "succeeded"
    _check_logs(result, events, len(valid_rows), 6)
    last = result.checkpoints[-1]
    got = last["metrics"]
    for beta in ("f0.5", "f2.0"):  # F-beta from the positive class's precision and recall
        b = float(beta[1:])
        p, r = got[PREFIX + "precision"], got[PREFIX + "recall"]
        want = (1 + b * b) * p * r / (b * b * p + r) if p + r else 0.0
        assert got[PREFIX + beta] == pytest.approx(want, abs=1e-12)
    preds = _predictions(last["path"], valid, ("ham", "spam"), "spam", tmp_path / "p.jsonl")
    _check_against_metrics_cli(got, preds, ("ham", "spam"), "spam")


def test_four_classes(tmp_path: Path) -> None:
    valid_rows = _four_class(16, seed=8)
    result, events, valid = _train(tmp_path, _four_class(24, seed=7), valid_rows,
                                   TaskMetricsSettings(sample=5))
    _check_logs(result, events, len(valid_rows), 5)
    labels = tuple(sorted(TOPICS))
    for ckpt in result.checkpoints[-2:]:
        assert PREFIX + "auroc" not in ckpt["metrics"]  # binary only
        preds = _predictions(ckpt["path"], valid, labels, None,
                             tmp_path / f"p{ckpt['step']}.jsonl")
        _check_against_metrics_cli(ckpt["metrics"], preds, labels, None)


def test_free_text_answers_are_refused_before_training(tmp_path: Path) -> None:
    rows = [chat(f"tell me about {w}", f"{w} is a fine word number {i}")
            for i, w in enumerate(["apple", "river", "stone", "cloud", "market", "garden"] * 2)]
    with pytest.raises(ConfigError, match=r"small label set.*free text"):
        _train(tmp_path, rows, rows[:6], TaskMetricsSettings())
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_positive_class_that_is_no_label_is_refused(tmp_path: Path) -> None:
    rows = [chat(t, y) for t, y in TOY]
    with pytest.raises(ConfigError, match="'fraud' is not one of the labels ham, spam"):
        _train(tmp_path, rows, rows[:6], TaskMetricsSettings(positive="fraud"))
