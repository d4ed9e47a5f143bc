"""Preference tuning (DPO) in the engine: the loss against TRL's DPOTrainer, a real run on the
tiny model, and the preference pairs it is given."""

from __future__ import annotations

import csv
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.support.preference import mean_preference
from tests.support.toy_chat import TOY_PREFERENCES, chat, preference, write_jsonl

from ftlens.core.curves import diagnose
from ftlens.core.run import Series, TrainingRun
from ftlens.errors import DataError
from ftlens.io.chat_dataset import read_preferences
from ftlens.io.training_logs import read_run
from ftlens.train import models
from ftlens.train.artifacts import load_tuned
from ftlens.train.config import Event, TrainConfig
from ftlens.train.engine import TrainResult, train
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.masking import IGNORE
from ftlens.train.preference import PairExample, PreferenceRun, encode_pairs


@pytest.fixture(scope="module")
def pref_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("dpo") / "pairs.jsonl", TOY_PREFERENCES)


@pytest.fixture(scope="module")
def dpo_run(pref_file: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[TrainResult, list[Event]]:
    events: list[Event] = []
    config = TrainConfig(
        model="tiny-random-llama", training_file=str(pref_file),
        validation_file=str(pref_file), out_dir=str(tmp_path_factory.mktemp("dpo-run")),
        objective="dpo", hyperparameters=Hyperparameters(
            n_epochs=4, batch_size=4, learning_rate_multiplier=10.0, beta=0.1),
        eval_every=3, seed=1)
    return train(config, callbacks=[events.append]), events


def _metrics(events: list[Event]) -> list[dict[str, float]]:
    return [e.data for e in events if e.type == "metrics" and e.data]


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")
def test_dpo_loss_and_rewards_equal_trls_dpo_trainer(pref_file: Path) -> None:
    """The engine's step statistics on a LoRA adapter moved away from the base (so policy
    and reference differ) against TRL's DPOTrainer evaluating the same pairs, tokens and
    adapter, with the LoRA-disabled model as the reference in both."""
    from accelerate import Accelerator
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from ftlens.train.loss import AnswerLogps

    torch.manual_seed(0)
    model, tok = models.load_model(models.resolve("tiny-random-llama"))
    pairs = encode_pairs(tok, read_preferences(pref_file), max_length=512, path="pairs")

    class Tokenized(DPOTrainer):  # our token ids as they are: the check is of the loss
        def _prepare_dataset(self, dataset, *args, **kwargs):  # type: ignore[no-untyped-def]
            return dataset

    rows = [_trl_row(p) for p in pairs]
    args = DPOConfig(output_dir=tempfile.mkdtemp(), beta=0.1, bf16=False, use_cpu=True,
                     per_device_eval_batch_size=len(rows), report_to=[], max_length=None)
    trainer = Tokenized(model=model, args=args, processing_class=tok,
                        train_dataset=Dataset.from_list(rows),
                        eval_dataset=Dataset.from_list(rows),
                        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                               task_type="CAUSAL_LM"))
    peft_model = trainer.model
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    theirs = trainer.evaluate()
    acc = Accelerator(cpu=True)
    net = AnswerLogps(peft_model)
    run = PreferenceRun(acc, net, pairs, pairs, tok.pad_token_id or 0, 256, 0.1,
                        peft_model.disable_adapter)
    ours = run.evaluate(range(len(pairs)))
    assert abs(theirs["eval_rewards/margins"]) > 1e-3  # the policy is not the reference
    assert ours["loss"] == pytest.approx(theirs["eval_loss"], abs=1e-5)
    assert ours["chosen_reward"] == pytest.approx(theirs["eval_rewards/chosen"], abs=1e-5)
    assert ours["rejected_reward"] == pytest.approx(theirs["eval_rewards/rejected"], abs=1e-5)
    assert ours["reward_margin"] == pytest.approx(theirs["eval_rewards/margins"], abs=1e-5)
    assert ours["reward_accuracy"] == pytest.approx(theirs["eval_rewards/accuracies"])


def _trl_row(pair: PairExample) -> dict[str, list[int]]:
    """TRL's tokenized preference row: the shared prompt, then each answer up to its last
    trained token (the turn closer)."""
    out = {}
    for key, ex in (("chosen_ids", pair.chosen), ("rejected_ids", pair.rejected)):
        trained = [i for i, label in enumerate(ex.labels) if label != IGNORE]
        out["prompt_ids"] = ex.input_ids[:trained[0]]
        out[key] = ex.input_ids[trained[0]:trained[-1] + 1]
    return out


def test_a_dpo_run_starts_at_ln2_and_ends_preferring_the_preferred_answers(
        dpo_run: tuple[TrainResult, list[Event]], pref_file: Path) -> None:
    result, events = dpo_run
    assert result.status == "succeeded"
    metrics = _metrics(events)
    assert metrics[0]["train_loss"] == pytest.approx(math.log(2), abs=1e-6)  # policy = reference
    assert metrics[0]["train_reward_margin"] == pytest.approx(0.0, abs=1e-6)
    assert metrics[-1]["train_loss"] < 0.6
    assert metrics[-1]["full_valid_reward_margin"] > 0.1
    assert metrics[-1]["full_valid_reward_accuracy"] > 0.9
    base, tok = models.load_model(models.resolve("tiny-random-llama"))
    tuned, tuned_tok = load_tuned(result.model_dir)
    before, after = mean_preference(base, tok, pref_file), mean_preference(tuned, tuned_tok,
                                                                           pref_file)
    assert after > before + 1.0, (before, after)
    assert result.hyperparameters["beta"] == 0.1


def test_dpo_results_csv_checkpoints_and_curves(dpo_run: tuple[TrainResult, list[Event]]
                                                ) -> None:
    result, events = dpo_run
    rows = list(csv.DictReader((result.out_dir / "results.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["step", "train_loss", "train_reward_accuracy",
                             "train_reward_margin", "valid_loss", "valid_reward_accuracy",
                             "valid_reward_margin"]
    metrics = _metrics(events)
    assert [int(r["step"]) for r in rows] == [int(m["step"]) for m in metrics]
    assert float(rows[-1]["train_reward_margin"]) == pytest.approx(
        metrics[-1]["train_reward_margin"], rel=1e-5)
    checkpoint = [e.data for e in events if e.type == "checkpoint"][-1]
    assert checkpoint and "train_reward_margin" in checkpoint["metrics"]
    run = read_run(result.out_dir / "results.csv")
    assert run.reward_margin is not None and len(run.reward_margin) == len(rows)
    assert run.meta.get("objective") == "dpo"
    found = {f.id: f for f in diagnose(run).findings}
    rising = found["reward_margin_rising"]
    assert "ln 2" in rising.evidence and "validation reward margin" in rising.evidence
    assert rising.details["margin_end"] > rising.details["margin_start"]
    assert "reward_margin_flat" not in found


def test_a_slow_dpo_loss_with_a_rising_margin_is_not_called_stuck() -> None:
    """Found by hand: 18 steps whose DPO loss fell 11 % while the margin rose 0.05 -> 0.25
    and every validation pair was won were judged loss_stuck (the supervised rule)."""
    steps = np.arange(1, 19)
    run = TrainingRun(train_loss=Series(steps, np.linspace(math.log(2), 0.60, 18)),
                      reward_margin=Series(steps, np.linspace(0.0, 0.25, 18)),
                      reward_accuracy=Series(steps, np.full(18, 1.0)))
    found = {f.id for f in diagnose(run).findings}
    assert "reward_margin_rising" in found and "loss_stuck" not in found
    flat = TrainingRun(train_loss=Series(steps, np.full(18, math.log(2))),
                       reward_margin=Series(steps, np.zeros(18)))
    found = {f.id for f in diagnose(flat).findings}
    assert {"reward_margin_flat", "loss_stuck"} <= found  # neither moves: it is stuck


def test_a_dpo_run_whose_margin_does_not_rise_is_told_so() -> None:
    steps = np.arange(1, 41)
    rng = np.random.default_rng(0)
    flat = Series(steps, rng.normal(0.0, 0.01, 40))
    run = TrainingRun(train_loss=Series(steps, math.log(2) + rng.normal(0, 0.002, 40)),
                      reward_margin=flat, reward_accuracy=Series(steps, np.full(40, 0.5)))
    found = {f.id: f for f in diagnose(run).findings}
    assert found["reward_margin_flat"].severity == "warn"
    assert "training reward margin" in found["reward_margin_flat"].evidence
    assert "wins in 50% of training pairs" in found["reward_margin_flat"].evidence


def test_preference_pairs_that_cannot_train_are_errors_naming_the_line(tmp_path: Path) -> None:
    tok = models.load_model(models.resolve("tiny-random-llama"))[1]
    same = write_jsonl(tmp_path / "same.jsonl", [preference("hi", "ok", "ok")])
    with pytest.raises(DataError, match="are the same") as err:
        encode_pairs(tok, read_preferences(same), max_length=512, path=str(same))
    assert err.value.line == 1
    chats = write_jsonl(tmp_path / "chat.jsonl", [chat("hi", "spam")])
    with pytest.raises(DataError, match="chat example, not a preference pair"):
        read_preferences(chats)


def test_earlier_assistant_turns_of_the_input_are_context_not_trained() -> None:
    tok = models.load_model(models.resolve("tiny-random-llama"))[1]
    row = preference("first", "good", "bad")
    row["input"]["messages"] += [{"role": "assistant", "content": "earlier answer"},  # type: ignore[index]
                                 {"role": "user", "content": "second"}]
    with tempfile.TemporaryDirectory() as folder:
        path = write_jsonl(Path(folder) / "p.jsonl", [row])
        pair = encode_pairs(tok, read_preferences(path), max_length=512, path=str(path))[0]
    trained = tok.decode([t for t in pair.chosen.labels if t != IGNORE])
    assert trained.startswith("good") and "earlier" not in trained
