"""Hyperparameter rules, the learning-rate schedule, length-grouped batching and the dataset
loader's errors (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.toy_chat import TOY, chat, write_jsonl

from ftlens.errors import ConfigError, DataError
from ftlens.io.chat_dataset import read_conversations
from ftlens.train.config import TrainConfig
from ftlens.train.data import Example, micro_batches, step_batches
from ftlens.train.engine import _lr_factor
from ftlens.train.hyperparams import BASE_LEARNING_RATE, Hyperparameters, auto_batch_size
from ftlens.train.masking import IGNORE


@pytest.mark.parametrize(("n", "epochs", "batch"), [
    (10, 10, 1), (20, 5, 1), (33, 3, 1), (260, 3, 1), (1000, 3, 2), (8000, 3, 16),
    (10_000, 2, 20), (200_000, 1, 256)])
def test_auto_hyperparameters_follow_the_documented_rules(n: int, epochs: int, batch: int
                                                          ) -> None:
    resolved = Hyperparameters().resolve(n)
    assert (resolved.n_epochs, resolved.batch_size) == (epochs, batch)
    assert resolved.learning_rate("lora") == BASE_LEARNING_RATE["lora"]


def test_explicit_hyperparameters_win_and_bad_ones_are_named() -> None:
    hp = Hyperparameters.from_dict({"n_epochs": 2, "batch_size": 4,
                                    "learning_rate_multiplier": 0.5})
    assert hp.resolve(1000).as_dict() == {"n_epochs": 2, "batch_size": 4,
                                          "learning_rate_multiplier": 0.5}
    assert hp.resolve(1000).learning_rate("full") == pytest.approx(1e-5)
    for bad in ({"n_epochs": 0}, {"batch_size": 2.5}, {"batch_size": True},
                {"learning_rate_multiplier": "fast"}, {"epochs": 3}):
        with pytest.raises(ConfigError) as err:
            Hyperparameters.from_dict(bad)
        assert next(iter(bad)) in str(err.value)


def test_auto_batch_size_is_bounded() -> None:
    assert auto_batch_size(1) == 1 and auto_batch_size(10**7) == 256


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = TrainConfig(model="m", training_file="t.jsonl", out_dir="o",
                         hyperparameters=Hyperparameters(n_epochs=2), seed=5)
    path = tmp_path / "job.json"
    path.write_text(config.to_json())
    assert TrainConfig.load(path) == config
    with pytest.raises(ConfigError):
        TrainConfig(model="m", training_file="t", out_dir="o", method="qlora")
    path.write_text('{"model": "m"}')
    with pytest.raises(ConfigError):
        TrainConfig.load(path)


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    factors = [_lr_factor(s, 10, 100) for s in range(100)]
    assert factors[:10] == sorted(factors[:10]) and factors[9] < 1.0
    assert factors[10] == 1.0 and factors[10:] == sorted(factors[10:], reverse=True)
    assert factors[-1] == pytest.approx(1 / 90)
    assert _lr_factor(100, 10, 100) == 0.0


def _examples(lengths: list[int]) -> list[Example]:
    return [Example(i + 1, [1] * n, [IGNORE] * (n - 1) + [1]) for i, n in enumerate(lengths)]


@given(st.lists(st.integers(1, 300), min_size=1, max_size=200), st.integers(1, 16),
       st.integers(0, 3))
def test_each_epoch_visits_every_example_once(lengths: list[int], batch: int, epoch: int
                                              ) -> None:
    examples = _examples(lengths)
    batches = step_batches(examples, batch, seed=1, epoch=epoch)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(examples)))
    assert len(batches) == -(-len(examples) // batch)  # the steps_per_epoch the engine plans
    assert all(len(b) <= batch for b in batches)
    assert batches == step_batches(examples, batch, seed=1, epoch=epoch)


def test_batches_group_similar_lengths_and_change_between_epochs() -> None:
    import random

    rng = random.Random(0)
    examples = _examples([rng.randint(10, 500) for _ in range(512)])

    def padding(batches: list[list[int]]) -> int:
        return sum(max(len(examples[i].input_ids) for i in b) * len(b)
                   - sum(len(examples[i].input_ids) for i in b) for b in batches)

    grouped = step_batches(examples, 8, seed=0, epoch=0)
    shuffled = [list(range(512))[k:k + 8] for k in range(0, 512, 8)]
    assert padding(grouped) < 0.2 * padding(shuffled)
    assert grouped != step_batches(examples, 8, seed=0, epoch=1)


@given(st.lists(st.integers(1, 300), min_size=1, max_size=40), st.integers(1, 2000))
def test_micro_batches_keep_within_their_token_budget(lengths: list[int], budget: int) -> None:
    examples = _examples(lengths)
    parts = list(micro_batches(range(len(examples)), examples, budget))
    assert sorted(i for p in parts for i in p) == list(range(len(examples)))
    for part in parts:
        width = max(lengths[i] for i in part)
        assert len(part) == 1 or width * len(part) <= budget


def test_dataset_loader_rejects_bad_files_with_their_line(tmp_path: Path) -> None:
    good = [chat(t, y) for t, y in TOY]
    path = write_jsonl(tmp_path / "ok.jsonl", good)
    assert [c.line for c in read_conversations(path)] == list(range(1, 13))
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(read_conversations(tmp_path / "bom.jsonl")) == 12
    cases = {
        b"": (None, "the file is empty"),
        path.read_bytes() + b"\xff\xfe\n": (13, "UTF-8"),
        path.read_bytes() + b'{"messages": []}\n[1]\n': (13, "1 more bad line"),
        path.read_bytes().replace(b'"assistant"', b'"robot"', 1): (1, "robot"),
    }
    for i, (data, (line, words)) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.jsonl"
        bad.write_bytes(data)
        with pytest.raises(DataError) as err:
            read_conversations(bad)
        assert err.value.line == line and words in err.value.render(), err.value.render()
    with pytest.raises(DataError, match="no such file"):
        read_conversations(tmp_path / "missing.jsonl")
