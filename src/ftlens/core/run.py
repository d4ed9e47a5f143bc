"""One fine-tuning run's logged metrics, whatever wrote them (OpenAI, Hugging Face, TRL, CSV).

Every reader in :mod:`ftlens.io.training_logs` maps its format to :class:`TrainingRun`; the
diagnosis in :mod:`ftlens.core.curves` only sees this type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Series:
    """A metric over training steps: ``steps`` strictly increasing, ``values`` may hold NaN or
    inf (a diverged run), never missing entries (absent steps are simply not listed)."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.values):
            raise ValueError(f"{len(self.steps)} steps but {len(self.values)} values")

    def __len__(self) -> int:
        return len(self.steps)

    @staticmethod
    def of(pairs: list[tuple[int, float]]) -> Series:
        """From (step, value) pairs in any order; a repeated step keeps its last value."""
        latest = dict(pairs)
        steps = np.array(sorted(latest), dtype=np.int64)
        return Series(steps, np.array([latest[s] for s in steps.tolist()], dtype=np.float64))


@dataclass(frozen=True)
class StepsBack:
    """Where the steps of a table log (a CSV, JSON lines) first go back or repeat within one
    column: a resumed run replaying steps from its checkpoint, or two runs in one file. The
    later value at a step replaces the earlier one."""

    line: int | None  # the row's line in the file (None: not known)
    step: int
    after: int  # the column's step on an earlier row, at or above ``step``
    column: str


@dataclass(frozen=True)
class TrainingRun:
    train_loss: Series
    valid_loss: Series | None = None  # on a small validation batch, every few steps
    train_accuracy: Series | None = None  # mean token accuracy
    valid_accuracy: Series | None = None
    full_valid_loss: Series | None = None  # over the whole validation file (epoch ends)
    full_valid_accuracy: Series | None = None
    # preference tuning (DPO): the mean reward margin of chosen over rejected answers, and
    # the share of pairs where it is positive; ``train_loss`` is then the DPO loss
    reward_margin: Series | None = None
    valid_reward_margin: Series | None = None
    reward_accuracy: Series | None = None
    valid_reward_accuracy: Series | None = None
    # task metrics (``classification/accuracy``, ``classification/recall/spam``…: the names of
    # :mod:`ftlens.core.task_metrics`, OpenAI's legacy result file's), by name
    task_metrics: Mapping[str, Series] = field(default_factory=dict)
    checkpoint_steps: tuple[int, ...] | None = None  # steps with a saved checkpoint, if known
    total_steps: int | None = None
    steps_per_epoch: int | None = None  # when examples and batch size are known
    source: str = ""  # the format it was read from, e.g. "openai result csv"
    meta: dict[str, object] = field(default_factory=dict)
    steps_back: StepsBack | None = None  # a table log whose steps go back (None: they never do)

    @property
    def preference(self) -> bool:
        """A DPO run: its loss starts near ln 2 and its reward margin should rise."""
        return self.reward_margin is not None
