"""The training loop on the tiny random Llama: loss, events, result CSV, checkpoints, reload,
cancel, and clear errors for bad training files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tests.support.toy_chat import TOY, chat, write_jsonl

from ftlens.errors import DataError
from ftlens.io.training_logs import read_run
from ftlens.train.artifacts import RESULT_COLUMNS, load_tuned
from ftlens.train.config import Event, TrainConfig
from ftlens.train.engine import TrainResult, train
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.infer import prompt_ids


def _metrics(events: list[Event]) -> list[dict[str, object]]:
    return [e.data for e in events if e.type == "metrics" and e.data is not None]


def test_loss_falls_over_30_steps(tiny_run: tuple[TrainResult, list[Event]]) -> None:
    result, events = tiny_run
    losses = [float(m["train_loss"]) for m in _metrics(events)]
    assert result.status == "succeeded" and result.steps == result.total_steps == 30
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)


def test_metrics_events_are_shaped_like_openai(tiny_run: tuple[TrainResult, list[Event]]
                                               ) -> None:
    _, events = tiny_run
    metrics = _metrics(events)
    assert [m["step"] for m in metrics] == list(range(1, 31))
    for m in metrics:
        assert m["total_steps"] == 30
        assert 0.0 <= float(m["train_mean_token_accuracy"]) <= 1.0
    with_valid = [m["step"] for m in metrics if "valid_loss" in m]
    assert with_valid == [4, 8, 12, 16, 20, 24, 28, 30]  # every 4 steps and the last one
    full = [m["step"] for m in metrics if "full_valid_loss" in m]
    assert full == [6, 12, 18, 24, 30]  # each epoch's end
    assert all("full_valid_mean_token_accuracy" in m for m in metrics if m["step"] in full)
    assert events[-1].type == "message" and "finished" in events[-1].message


def test_result_csv_has_the_exact_openai_header_and_one_row_per_step(
        tiny_run: tuple[TrainResult, list[Event]]) -> None:
    result, events = tiny_run
    lines = (result.out_dir / "results.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert tuple(lines[0].split(",")) == RESULT_COLUMNS
    rows = list(csv.DictReader(lines))
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    metrics = _metrics(events)
    assert float(rows[3]["valid_loss"]) == pytest.approx(metrics[3]["valid_loss"], rel=1e-5)
    assert rows[0]["valid_loss"] == ""
    run = read_run(result.out_dir / "results.csv")  # the curves reader takes it as is
    assert run.source.startswith("openai") and len(run.train_loss) == 30


def test_event_log_holds_every_event(tiny_run: tuple[TrainResult, list[Event]]) -> None:
    result, events = tiny_run
    logged = [json.loads(line) for line in
              (result.out_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert logged == [e.as_dict() for e in events]
    saved = json.loads((result.out_dir / "result.json").read_text(encoding="utf-8"))
    assert saved["status"] == "succeeded" and saved["trained_tokens"] == result.trained_tokens


def test_checkpoints_each_epoch_keep_the_last(tiny_run: tuple[TrainResult, list[Event]]
                                              ) -> None:
    result, events = tiny_run
    assert [c["step"] for c in result.checkpoints] == [6, 12, 18, 24, 30]
    kept = sorted(p.name for p in (result.out_dir / "checkpoints").iterdir())
    assert kept == ["step-24", "step-30"]  # keep_checkpoints=2
    for name in kept:
        folder = result.out_dir / "checkpoints" / name
        assert (folder / "adapter_model.safetensors").stat().st_size > 0
        meta = json.loads((folder / "ftlens.json").read_text(encoding="utf-8"))
        assert meta["step"] == int(name[5:]) and "full_valid_loss" in meta["metrics"]
    assert [e.data["step"] for e in events if e.type == "checkpoint" and e.data] == [
        6, 12, 18, 24, 30]


def _logits(model: object, tok: object) -> torch.Tensor:
    messages = chat(*TOY[0])["messages"]
    ids = torch.tensor([prompt_ids(tok, messages[:-1])])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_final_model_and_last_checkpoint_reload_to_the_same_logits(
        tiny_run: tuple[TrainResult, list[Event]]) -> None:
    result, _ = tiny_run
    expected = _logits(result.model, result.tokenizer)
    assert result.model_dir is not None
    for folder in (result.model_dir, result.out_dir / "checkpoints" / "step-30"):
        model, tok = load_tuned(folder)
        assert torch.allclose(_logits(model, tok), expected, atol=1e-5)
    base, tok = load_tuned(result.out_dir / "checkpoints" / "step-24")
    assert not torch.allclose(_logits(base, tok), expected, atol=1e-5)  # a different point


def test_cancel_stops_within_one_step(toy_files: tuple[Path, Path], tmp_path: Path) -> None:
    train_file, _ = toy_files
    events: list[Event] = []
    config = TrainConfig(model="tiny-random-llama", training_file=str(train_file),
                         out_dir=str(tmp_path), hyperparameters=Hyperparameters(
                             n_epochs=3, batch_size=2))
    result = train(config, callbacks=[events.append],
                   should_stop=lambda: len(_metrics(events)) >= 3)
    assert result.status == "cancelled" and result.steps == 3
    assert [m["step"] for m in _metrics(events)] == [1, 2, 3]
    assert result.model_dir is None and not (tmp_path / "model").exists()
    lines = (tmp_path / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 3  # what it logged is kept
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "cancelled"


def test_full_fine_tuning_saves_a_standalone_model(toy_files: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    train_file, _ = toy_files
    config = TrainConfig(model="tiny-random-llama", training_file=str(train_file),
                         out_dir=str(tmp_path), method="full",
                         hyperparameters=Hyperparameters(n_epochs=1, batch_size=4))
    result = train(config)
    assert (tmp_path / "model" / "config.json").exists()
    model, tok = load_tuned(tmp_path / "model")
    assert torch.allclose(_logits(model, tok), _logits(result.model, result.tokenizer),
                          atol=1e-5)


def test_a_bad_training_file_names_its_line(tmp_path: Path) -> None:
    rows = [json.dumps(chat(t, y)) for t, y in TOY]
    rows[4] = '{"messages": [{"role": "user", "content": "hi"}'  # truncated
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = TrainConfig(model="tiny-random-llama", training_file=str(path),
                         out_dir=str(tmp_path / "out"))
    with pytest.raises(DataError) as err:
        train(config)
    assert err.value.line == 5 and "JSON" in err.value.render()


def test_an_example_with_nothing_to_train_on_is_refused(tmp_path: Path) -> None:
    rows = [chat(t, y) for t, y in TOY]
    rows[2] = chat("hello", "ham", weight=0)
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = TrainConfig(model="tiny-random-llama", training_file=str(path),
                         out_dir=str(tmp_path / "out"))
    with pytest.raises(DataError) as err:
        train(config)
    assert err.value.line == 3 and "weight 0" in err.value.render()


def test_pause_then_resume_matches_an_uninterrupted_run(toy_files: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    train_file, valid_file = toy_files

    def config(out: Path, resume: Path | None = None) -> TrainConfig:
        return TrainConfig(model="tiny-random-llama", training_file=str(train_file),
                           validation_file=str(valid_file), out_dir=str(out), eval_every=2,
                           hyperparameters=Hyperparameters(n_epochs=2, batch_size=3),
                           resume_from=None if resume is None else str(resume))

    straight = train(config(tmp_path / "straight"))
    events: list[Event] = []
    paused = train(config(tmp_path / "paused"), callbacks=[events.append],
                   should_stop=lambda: "pause" if len(_metrics(events)) >= 5 else None)
    assert paused.status == "paused" and paused.steps == 5
    checkpoint = tmp_path / "paused" / "checkpoints" / "step-5"
    assert (checkpoint / "optimizer.pt").exists()
    resumed = train(config(tmp_path / "paused", resume=checkpoint))
    assert resumed.status == "succeeded" and resumed.steps == straight.steps == 8
    assert resumed.trained_tokens == straight.trained_tokens

    def rows(folder: Path) -> list[dict[str, str]]:
        with (folder / "results.csv").open(encoding="utf-8") as f:
            return list(csv.DictReader(f))

    got, want = rows(tmp_path / "paused"), rows(tmp_path / "straight")
    assert [r["step"] for r in got] == [r["step"] for r in want]  # every step exactly once
    for a, b in zip(got, want, strict=True):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
    assert torch.allclose(_logits(resumed.model, resumed.tokenizer),
                          _logits(straight.model, straight.tokenizer), atol=1e-4)
