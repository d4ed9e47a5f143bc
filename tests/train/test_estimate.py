"""What a job needs, said before it trains, and a job that cannot fit refused with the
numbers (the memory limit is the one fault faked here: a real out-of-memory cannot be caused
safely in a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftlens.errors import ConfigError
from ftlens.train import estimate as est
from ftlens.train.config import Event, TrainConfig
from ftlens.train.engine import train
from ftlens.train.hyperparams import Hyperparameters


def test_the_estimate_counts_the_model_it_is_given() -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    base = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4))
    n_all = sum(p.numel() for p in base.parameters())
    model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    needs = est.estimate(model, micro_batch_tokens=512, total_tokens=10_000,
                         device=torch.device("cpu"), available=None)
    assert needs.trainable == trainable and needs.parameters == n_all + trainable
    weights = needs.parameters * 4
    assert needs.memory_bytes == weights + trainable * 12 + 512 * 32 * 2 * 34 * 2
    assert needs.seconds is not None and needs.seconds > 0 and needs.fits
    assert "M trainable" in needs.describe() and "GB of memory" in needs.describe()
    tight = est.Needs(needs.parameters, trainable, needs.memory_bytes, needs.memory_bytes - 1,
                      None)
    with pytest.raises(ConfigError, match=r"needs about .* GB of memory and .* GB is "
                                          r"available") as err:
        est.check_fits(tight, "acme/big-70b")
    assert "acme/big-70b cannot be fine-tuned here" in err.value.render()


def test_a_job_says_what_it_needs_and_one_that_cannot_fit_is_refused_before_training(
        toy_files: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    train_file, _ = toy_files

    def job(out: str) -> tuple[TrainConfig, list[Event]]:
        return TrainConfig(model="tiny-random-llama", training_file=str(train_file),
                           out_dir=str(tmp_path / out),
                           hyperparameters=Hyperparameters(n_epochs=1, batch_size=4)), []

    config, events = job("ok")
    assert train(config, callbacks=[events.append]).status == "succeeded"
    said = [e.message for e in events if "needs" in e.message]
    assert said and "M parameters" in said[0] and "GB available" in said[0]
    monkeypatch.setattr(est, "available_memory", lambda device: 1_000_000)
    monkeypatch.setattr("ftlens.train.engine.available_memory", lambda device: 1_000_000)
    config, events = job("tight")
    with pytest.raises(ConfigError, match="cannot be fine-tuned here"):
        train(config, callbacks=[events.append])
    assert not any(e.type == "metrics" for e in events)  # not a single step was trained
