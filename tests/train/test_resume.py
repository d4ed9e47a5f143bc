"""A run cut off mid-training (the process killed) resumes from its latest resume point:
weights, optimiser, schedule, data order and random state, so the steps done again give the
losses of an uninterrupted run, and its result CSV and event log hold each step once."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from tests.support.toy_chat import TOY_PREFERENCES, write_jsonl

from ftlens.train.artifacts import RESUME_DIR, read_meta, resume_point
from ftlens.train.config import Event, TaskMetricsSettings, TrainConfig
from ftlens.train.engine import train
from ftlens.train.hyperparams import Hyperparameters


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even the engine's error handling)."""


def _config(train_file: Path, valid_file: Path, out: Path, **extra: object) -> TrainConfig:
    return TrainConfig(model="tiny-random-llama", training_file=str(train_file),
                       validation_file=str(valid_file), out_dir=str(out), seed=3,
                       hyperparameters=Hyperparameters(n_epochs=2, batch_size=2,
                                                       learning_rate_multiplier=10.0),
                       eval_every=2, valid_batch=2, resume_every=4,
                       **extra)  # type: ignore[arg-type]


def _kill_at(step: int) -> object:
    def callback(event: Event) -> None:
        if event.type == "metrics" and event.data and event.data["step"] == step:
            raise Killed
    return callback


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("objective", ["supervised", "dpo", "task metrics"])
def test_an_interrupted_run_resumes_to_the_losses_of_an_uninterrupted_one(
        toy_files: tuple[Path, Path], tmp_path: Path, objective: str) -> None:
    """(With task metrics: their sampled rows rotate on from where the cut run left them.)"""
    files = toy_files
    extra: dict[str, object] = {"objective": objective}
    if objective == "task metrics":
        extra = {"task_metrics": TaskMetricsSettings(sample=4)}
    if objective == "dpo":
        pairs = write_jsonl(tmp_path / "pairs.jsonl", TOY_PREFERENCES)
        files = (pairs, pairs)
    whole = train(_config(*files, tmp_path / "whole", **extra))
    out = tmp_path / "cut"
    with pytest.raises(Killed):
        train(_config(*files, out, **extra), callbacks=[_kill_at(10)])
    point = resume_point(out)
    assert point is not None and read_meta(point)["step"] == 8  # resume points at 4, 6 (epoch), 8
    assert [int(r["step"]) for r in _rows(out)] == list(range(1, 11))  # 9, 10 done twice
    resumed = train(_config(*files, out, **extra, resume_from=str(point)))
    assert resumed.status == "succeeded"
    rows, reference = _rows(out), _rows(tmp_path / "whole")
    assert list(rows[0]) == list(reference[0])  # the same columns
    if objective == "task metrics":
        assert sum(bool(r["classification/accuracy"]) for r in rows) > 4
    assert [int(r["step"]) for r in rows] == list(range(1, whole.steps + 1))
    for got, want in zip(rows, reference, strict=True):
        for key, value in want.items():
            if value:
                assert float(got[key]) == pytest.approx(float(value), rel=1e-4, abs=1e-6), key
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    steps = [e["data"]["step"] for e in events if e["type"] == "metrics"]
    assert steps == list(range(1, whole.steps + 1))  # no gap, no repeat
    assert resumed.trained_tokens == whole.trained_tokens


def test_a_resume_point_cut_while_being_replaced_leaves_the_previous_one(
        toy_files: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train(_config(*toy_files, out), callbacks=[_kill_at(9)])
    folder = out / RESUME_DIR
    folder.rename(out / (RESUME_DIR + ".old"))  # killed between the two renames of a save
    (out / (RESUME_DIR + ".partial")).mkdir()  # and a half-written new one
    point = resume_point(out)
    assert point is not None and point.name == RESUME_DIR + ".old"
    assert read_meta(point)["step"] == 8
    shutil.rmtree(point)
    assert resume_point(out) is None
