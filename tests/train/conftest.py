"""Shared pieces for the engine tests: a toy chat set, one short tiny-model run that several
tests read."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.toy_chat import TOY, chat, write_jsonl

from ftlens.train.config import Event, TrainConfig
from ftlens.train.engine import TrainResult, train
from ftlens.train.hyperparams import Hyperparameters


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("toy")
    train_rows = [chat(t, y) for t, y in TOY]
    valid_rows = [chat(t + " please", y) for t, y in TOY[:6]]
    return write_jsonl(folder / "train.jsonl", train_rows), write_jsonl(folder / "valid.jsonl",
                                                                         valid_rows)


@pytest.fixture(scope="session")
def tiny_run(toy_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[TrainResult, list[Event]]:
    """30 steps of the tiny model on the toy set: 5 epochs of 6 steps of 2 examples."""
    train_file, valid_file = toy_files
    events: list[Event] = []
    config = TrainConfig(
        model="tiny-random-llama", training_file=str(train_file),
        validation_file=str(valid_file), out_dir=str(tmp_path_factory.mktemp("run")),
        hyperparameters=Hyperparameters(n_epochs=5, batch_size=2,
                                        learning_rate_multiplier=10.0),
        eval_every=4, valid_batch=3, keep_checkpoints=2, seed=1)
    return train(config, callbacks=[events.append]), events
