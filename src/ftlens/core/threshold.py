"""The precision/recall trade-off: curves, and choosing an operating threshold.

A row is predicted positive when its score is >= the threshold. Candidate thresholds are the
unique scores (what a brute-force search would try). Ties between equally good thresholds go to
the highest one (the fewest positive predictions). Counts come from scikit-learn's ROC curve.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn import metrics as skm

RuleKind = Literal["fbeta", "target_recall", "target_precision", "cost"]


@dataclass(frozen=True)
class Rule:
    kind: RuleKind = "fbeta"
    beta: float = 1.0
    target: float | None = None  # recall or precision to reach
    cost_fp: float = 1.0
    cost_fn: float = 1.0

    def describe(self) -> str:
        if self.kind == "fbeta":
            return "max F1" if self.beta == 1 else f"max F{self.beta:g}"
        if self.kind == "target_recall":
            return f"highest precision with recall >= {self.target:g}"
        if self.kind == "target_precision":
            return f"highest recall with precision >= {self.target:g}"
        return f"lowest expected cost ({self.cost_fp:g} per false positive, " \
               f"{self.cost_fn:g} per false negative)"


@dataclass(frozen=True)
class Table:
    """Counts at every candidate threshold, highest threshold first."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    positives: int
    negatives: int

    @property
    def fn(self) -> np.ndarray:
        return self.positives - self.tp

    @property
    def precision(self) -> np.ndarray:
        return self.tp / np.maximum(1, self.tp + self.fp)

    @property
    def recall(self) -> np.ndarray:
        return self.tp / max(1, self.positives)

    def fbeta(self, beta: float) -> np.ndarray:
        b2 = beta * beta
        den = (1 + b2) * self.tp + b2 * self.fn + self.fp
        return np.divide((1 + b2) * self.tp, den, out=np.zeros(len(den)), where=den > 0)


def table(y: np.ndarray, scores: np.ndarray) -> Table:
    """``y``: 1 for the positive class, 0 otherwise."""
    y = np.asarray(y, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one class only: the rates are nan, counts still 0
        fpr, tpr, thr = skm.roc_curve(y, scores, drop_intermediate=False)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    keep = np.isfinite(thr)  # the first point (nothing predicted positive) is not a threshold
    tp = np.rint(np.nan_to_num(tpr[keep]) * pos).astype(np.int64)
    fp = np.rint(np.nan_to_num(fpr[keep]) * neg).astype(np.int64)
    return Table(thr[keep], tp, fp, pos, neg)


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float


def point(t: Table, i: int) -> OperatingPoint:
    tp, fp = int(t.tp[i]), int(t.fp[i])
    fn, tn = t.positives - tp, t.negatives - fp
    return OperatingPoint(float(t.thresholds[i]), tp, fp, fn, tn, float(t.precision[i]),
                          float(t.recall[i]), float(t.fbeta(1.0)[i]))


def choose(t: Table, rule: Rule) -> OperatingPoint | None:
    """The operating point the rule picks; None when no threshold satisfies a target."""
    if len(t.thresholds) == 0:
        return None
    if rule.kind == "fbeta":
        value = t.fbeta(rule.beta)
        ok = np.ones(len(value), dtype=bool)
    elif rule.kind == "target_recall":
        value, ok = t.precision, t.recall >= (rule.target or 0) - 1e-12
    elif rule.kind == "target_precision":
        value, ok = t.recall, t.precision >= (rule.target or 0) - 1e-12
    else:
        value = -(rule.cost_fp * t.fp + rule.cost_fn * t.fn).astype(np.float64)
        ok = np.ones(len(value), dtype=bool)
    if not ok.any():
        return None
    best = np.max(value[ok])
    # thresholds are in decreasing order: the first best one is the highest threshold
    i = int(np.flatnonzero(ok & (value >= best - 1e-12))[0])
    return point(t, i)


def at_threshold(t: Table, threshold: float) -> OperatingPoint:
    """Counts when predicting positive for score >= ``threshold``."""
    i = np.searchsorted(-t.thresholds, -threshold, side="right") - 1
    if i < 0:
        return OperatingPoint(threshold, 0, 0, t.positives, t.negatives, 0.0, 0.0, 0.0)
    p = point(t, int(i))
    return OperatingPoint(threshold, p.tp, p.fp, p.fn, p.tn, p.precision, p.recall, p.f1)


@dataclass(frozen=True)
class Curves:
    pr_precision: np.ndarray
    pr_recall: np.ndarray
    pr_thresholds: np.ndarray
    roc_fpr: np.ndarray
    roc_tpr: np.ndarray
    roc_thresholds: np.ndarray
    roc_auc: float | None  # None when only one class is present
    average_precision: float | None


def curves(y: np.ndarray, scores: np.ndarray) -> Curves:
    y = np.asarray(y, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec, rec, pthr = skm.precision_recall_curve(y, scores)
        fpr, tpr, rthr = skm.roc_curve(y, scores)
    both = 0 < y.sum() < len(y)
    return Curves(
        prec, rec, pthr, fpr, tpr, rthr,
        float(skm.roc_auc_score(y, scores)) if both else None,
        float(skm.average_precision_score(y, scores)) if both else None,
    )
