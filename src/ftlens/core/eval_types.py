"""The inputs of an evaluation (predictions, options) and its bootstrap intervals: plain
values that the evaluation and its rules, threshold analysis and gates all share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ftlens.core.classification import Interval
from ftlens.core.requirements import Requirement
from ftlens.core.threshold import Rule


@dataclass(frozen=True)
class Predictions:
    """Rows of (true label, predicted label), optionally with scores.

    ``probs``: ``(n, len(prob_labels))`` probabilities per class; ``scores``: one score per row
    for the positive class. Either may be None."""

    y_true: Sequence[str]
    y_pred: Sequence[str]
    scores: np.ndarray | None = None
    probs: np.ndarray | None = None
    prob_labels: tuple[str, ...] = ()
    ids: Sequence[str] | None = None


@dataclass(frozen=True)
class EvalOptions:
    labels: tuple[str, ...] | None = None
    positive: str | None = None
    min_score: float = 0.85
    rule: Rule | None = field(default_factory=Rule)  # None: no threshold search
    tune_split: float | None = None  # fraction of rows used to choose the threshold
    tune_cv: int | None = None  # folds: choose on the others, apply to each
    n_boot: int = 1000
    seed: int = 0
    confidence: float = 0.95
    requirements: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class BootIntervals:
    precision: tuple[Interval, ...]
    recall: tuple[Interval, ...]
    f1: tuple[Interval, ...]
    macro_f1: Interval
    mcc: Interval
    accuracy: Interval
