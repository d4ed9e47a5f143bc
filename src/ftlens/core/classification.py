"""Classification metrics of labelled predictions, with scikit-learn doing the arithmetic.

Predictions outside the label set (a model that answered "maybe") are kept in an explicit
``unparseable`` column of the confusion matrix and count as errors — never dropped.

Speed: labels are encoded to integers once; scikit-learn builds the confusion matrix once;
every other metric is computed by scikit-learn from the confusion matrix, passed as the k×k
(true, predicted) cells weighted by their counts — the same numbers as on the raw rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest
from sklearn import metrics as skm

from ftlens.core.wording import first

UNPARSEABLE = "unparseable"


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # true examples of the class
    predicted: int  # examples predicted as the class
    precision_ci: Interval  # Wilson, over the predicted examples
    recall_ci: Interval  # Wilson, over the true examples


@dataclass(frozen=True)
class Averages:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ClassificationReport:
    labels: tuple[str, ...]
    confusion: np.ndarray  # (k, k+1): rows true labels; columns labels + unparseable
    per_class: tuple[ClassMetrics, ...]
    accuracy: float
    accuracy_ci: Interval
    balanced_accuracy: float
    mcc: float
    kappa: float
    micro: Averages
    macro: Averages  # macro-F1 is the mean of per-class F1, not F1 of macro P and R
    weighted: Averages
    n: int
    n_unparseable: int
    majority_label: str
    majority_accuracy: float  # accuracy of always answering the most common true label

    def of(self, label: str) -> ClassMetrics:
        return self.per_class[self.labels.index(label)]


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion; (0, 1) when there are no trials."""
    if trials == 0:
        return Interval(0.0, 1.0)
    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence,
                                                    method="wilson")
    return Interval(float(ci.low), float(ci.high))


def encode(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
           ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """``(labels, true codes, predicted codes)``; a value matches a label exactly, or up to
    case and surrounding spaces when that is unambiguous; a prediction outside ``labels`` gets
    code ``len(labels)`` (unparseable). ``labels`` default to the sorted true labels. A true label
    outside ``labels`` raises ValueError."""
    t = np.asarray(y_true, dtype=object)
    p = np.asarray(y_pred, dtype=object)
    if t.shape != p.shape:
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    uniq, inverse = np.unique(np.concatenate([t, p]).astype(str), return_inverse=True)
    chosen = tuple(sorted({str(u) for u in uniq[np.unique(inverse[: len(t)])]})) if (
        labels is None) else tuple(labels)
    index = {label: i for i, label in enumerate(chosen)}
    folded: dict[str, int] = {}
    for i, label in enumerate(chosen):  # "Spam" answers the label "spam", unless ambiguous
        folded[label.casefold()] = -1 if label.casefold() in folded else i
    table = np.array([index.get(u, folded.get(u.strip().casefold(), -1)) for u in uniq],
                     dtype=np.int64)
    table[table < 0] = len(chosen)
    codes = table[inverse]
    true_codes, pred_codes = codes[: len(t)], codes[len(t) :]
    if (true_codes == len(chosen)).any():
        unknown = sorted(set(t[true_codes == len(chosen)].astype(str)))
        raise ValueError(f"true labels {first(map(repr, unknown), 5)} are not in the label set "
                         f"{list(chosen)}")
    return chosen, true_codes, pred_codes


def confusion_from_codes(true_codes: np.ndarray, pred_codes: np.ndarray, k: int) -> np.ndarray:
    """(k, k+1) confusion matrix, scikit-learn's, with the unparseable column."""
    full = skm.confusion_matrix(true_codes, pred_codes, labels=np.arange(k + 1))
    return full[:k]


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], *,
                           labels: Sequence[str] | None = None) -> ClassificationReport:
    """Every metric of labelled predictions (see the module docstring)."""
    names, t, p = encode(y_true, y_pred, labels)
    return report_from_confusion(confusion_from_codes(t, p, len(names)), names)


def _cells(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The confusion matrix as weighted (true, predicted) samples."""
    k, m = confusion.shape
    true = np.repeat(np.arange(k), m)
    pred = np.tile(np.arange(m), k)
    weight = confusion.ravel().astype(np.float64)
    keep = weight > 0
    return true[keep], pred[keep], weight[keep]


def report_from_confusion(confusion: np.ndarray, labels: Sequence[str]) -> ClassificationReport:
    """All metrics from a (k, k+1) confusion matrix."""
    k = len(labels)
    confusion = np.asarray(confusion, dtype=np.int64)
    t, p, w = _cells(confusion)
    idx = list(range(k))
    n = int(confusion.sum())
    with warnings.catch_warnings():
        # Undefined values (a class never predicted) follow scikit-learn's zero_division=0
        # policy; the findings say so in words.
        warnings.simplefilter("ignore")
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            t, p, labels=idx, sample_weight=w, zero_division=0)
        avgs = {avg: Averages(*map(float, skm.precision_recall_fscore_support(
            t, p, labels=idx, average=avg, sample_weight=w, zero_division=0)[:3]))
            for avg in ("micro", "macro", "weighted")}
        accuracy = float(skm.accuracy_score(t, p, sample_weight=w)) if n else 0.0
        balanced = float(skm.balanced_accuracy_score(t, p, sample_weight=w)) if n else 0.0
        mcc = float(skm.matthews_corrcoef(t, p, sample_weight=w)) if n else 0.0
        kappa = float(skm.cohen_kappa_score(t, p, labels=list(range(k + 1)),
                                            sample_weight=w)) if n else 0.0
    correct = int(np.trace(confusion[:, :k]))
    predicted = confusion[:, :k].sum(axis=0)
    per_class = tuple(
        ClassMetrics(
            label=labels[i], precision=float(prec[i]), recall=float(rec[i]), f1=float(f1[i]),
            support=int(confusion[i].sum()), predicted=int(predicted[i]),
            precision_ci=wilson(int(confusion[i, i]), int(predicted[i])),
            recall_ci=wilson(int(confusion[i, i]), int(confusion[i].sum())),
        )
        for i in range(k)
    )
    support_arr = confusion.sum(axis=1)
    major = int(np.argmax(support_arr)) if k else 0
    return ClassificationReport(
        labels=tuple(labels), confusion=confusion, per_class=per_class,
        accuracy=accuracy, accuracy_ci=wilson(correct, n), balanced_accuracy=balanced,
        mcc=mcc, kappa=float(np.nan_to_num(kappa)), micro=avgs["micro"],
        macro=avgs["macro"], weighted=avgs["weighted"], n=n,
        n_unparseable=int(confusion[:, k].sum()),
        majority_label=labels[major] if k else "", majority_accuracy=(
            float(support_arr[major]) / n if n else 0.0),
    )
