"""The engine's memory options: gradient checkpointing (same losses, recomputed activations)
and 4-bit QLoRA, which needs a CUDA GPU and says so on a machine without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftlens.errors import ConfigError
from ftlens.train.config import Event, TrainConfig
from ftlens.train.engine import train
from ftlens.train.hyperparams import Hyperparameters


def _losses(train_file: Path, out: Path, **options: object) -> tuple[list[float], list[str]]:
    events: list[Event] = []
    train(TrainConfig(model="tiny-random-llama", training_file=str(train_file),
                      out_dir=str(out), seed=2, hyperparameters=Hyperparameters(
                          n_epochs=1, batch_size=4, learning_rate_multiplier=10.0),
                      **options),  # type: ignore[arg-type]
          callbacks=[events.append])
    return ([e.data["train_loss"] for e in events if e.type == "metrics" and e.data],
            [e.message for e in events])


def test_gradient_checkpointing_trains_to_the_same_losses(
        toy_files: tuple[Path, Path], tmp_path: Path) -> None:
    plain, _ = _losses(toy_files[0], tmp_path / "plain", gradient_checkpointing=False)
    recomputed, messages = _losses(toy_files[0], tmp_path / "gc", gradient_checkpointing=True)
    assert len(plain) == 3 and plain[0] != plain[-1]  # it trained
    assert recomputed == pytest.approx(plain, rel=1e-5)
    assert any("gradient checkpointing" in m for m in messages)


def test_checkpointing_is_off_by_default_on_a_cpu(toy_files: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    _, messages = _losses(toy_files[0], tmp_path / "auto")
    assert not any("gradient checkpointing" in m for m in messages)


def test_qlora_without_a_gpu_is_a_clear_error(toy_files: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="4-bit QLoRA needs a CUDA GPU"):
        _losses(toy_files[0], tmp_path / "q", quantization="4bit")
    with pytest.raises(ConfigError, match="trains a LoRA adapter"):
        TrainConfig(model="m", training_file="t", out_dir="o", method="full",
                    quantization="4bit")
    with pytest.raises(ConfigError, match="unknown quantization"):
        TrainConfig(model="m", training_file="t", out_dir="o", quantization="8bit")
