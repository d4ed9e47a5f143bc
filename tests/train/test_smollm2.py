"""The real SmolLM2-135M-Instruct from the packaged GGUF: a few LoRA steps run on the CPU with
finite, falling loss, and its labels score by their first token."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tests.support.toy_chat import TOY, chat

from ftlens.train.config import Event, TrainConfig
from ftlens.train.engine import train
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.scoring import score_labels


@pytest.mark.slow
def test_smollm2_lora_steps_lower_a_finite_loss(toy_files: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    train_file, _ = toy_files
    events: list[Event] = []
    config = TrainConfig(model="smollm2-135m-instruct", training_file=str(train_file),
                         out_dir=str(tmp_path), hyperparameters=Hyperparameters(
                             n_epochs=2, batch_size=4), seed=0)
    result = train(config, callbacks=[events.append])
    losses = [float(e.data["train_loss"]) for e in events if e.type == "metrics" and e.data]
    assert result.status == "succeeded" and len(losses) == 6
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
    prompts = [chat(t, y)["messages"][:-1] for t, y in TOY[:4]]
    scores = score_labels(result.model, result.tokenizer, prompts, ["spam", "ham"])
    assert scores.mode == "first_token" and abs(scores.probs.sum(axis=1) - 1).max() < 1e-9
