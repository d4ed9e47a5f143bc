"""Threshold analysis of scored predictions for one positive class (one-vs-rest).

Choosing a threshold on the data you report on makes the reported numbers optimistic. With
``tune_split`` the threshold is chosen on a stratified part and reported on the rest; with
``tune_cv`` every row is predicted with a threshold chosen on the other folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from ftlens.core.classification import (
    ClassificationReport,
    confusion_from_codes,
    report_from_confusion,
)
from ftlens.core.threshold import Curves, OperatingPoint, Rule, at_threshold, choose, curves, table

if TYPE_CHECKING:
    from ftlens.core.eval_types import EvalOptions, Predictions


@dataclass(frozen=True)
class ThresholdAnalysis:
    positive: str
    rule: Rule
    curves: Curves  # on every row
    chosen: OperatingPoint | None  # chosen on the tuning rows (all rows unless split/cv)
    at_half: OperatingPoint  # threshold 0.5, on the reported rows
    report_chosen: ClassificationReport | None  # metrics at the chosen threshold, reported rows
    report_half: ClassificationReport  # metrics at 0.5, reported rows
    tuned_on: str  # "all rows", "50 % split", "5-fold cross-validation"
    n_reported: int
    held_out: bool  # whether the chosen threshold is judged on rows it was not chosen on
    scores: np.ndarray  # positive-class score of every row (for the report's slider)
    is_positive: np.ndarray  # 1 where the true label is the positive class


def positive_scores(preds: Predictions, positive: str) -> np.ndarray | None:
    if preds.probs is not None and positive in preds.prob_labels:
        return np.asarray(preds.probs[:, preds.prob_labels.index(positive)], dtype=np.float64)
    if preds.scores is not None:
        return np.asarray(preds.scores, dtype=np.float64)
    return None


def thresholded(preds: Predictions, labels: tuple[str, ...], pred_codes: np.ndarray,
                positive: str, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted codes when the positive class is predicted for score >= threshold. Below it:
    the other class (binary), or the most probable other class (multi-class, with probs)."""
    pos = labels.index(positive)
    if len(labels) == 2:
        other = np.full(len(scores), 1 - pos)
    elif preds.probs is not None:
        cols = [preds.prob_labels.index(lab) if lab in preds.prob_labels else None
                for lab in labels]
        probs = np.stack([preds.probs[:, c] if c is not None and i != pos
                          else np.full(len(scores), -np.inf) for i, c in enumerate(cols)],
                         axis=1)
        other = probs.argmax(axis=1)
    else:
        other = np.where(pred_codes == pos, len(labels), pred_codes)
    return np.where(scores >= threshold, pos, other)


def analyse_threshold(preds: Predictions, labels: tuple[str, ...], true_codes: np.ndarray,
                      pred_codes: np.ndarray, positive: str, options: EvalOptions,
                      tune_on: Predictions | None = None) -> ThresholdAnalysis | None:
    """``tune_on``: other predictions (the validation set's) to choose the threshold on; it is
    then judged on every row of ``preds``. Else ``options`` say how (all rows, a split, CV)."""
    scores = positive_scores(preds, positive)
    if scores is None or not np.isfinite(scores).all():
        return None
    if len(labels) > 2 and preds.probs is None:
        return None  # below the threshold we could not say which other class it is
    rule = options.rule or Rule()
    y = (true_codes == labels.index(positive)).astype(np.int64)
    k = len(labels)

    def report(rows: np.ndarray, threshold: float) -> ClassificationReport:
        codes = thresholded(preds, labels, pred_codes, positive, scores, threshold)
        return report_from_confusion(
            confusion_from_codes(true_codes[rows], codes[rows], k), labels)

    everything = np.arange(len(y))
    folds = options.tune_cv or (2 if options.tune_split else 0)
    if folds and min(int(y.sum()), int(len(y) - y.sum())) < folds:
        raise ValueError(
            f"too few rows to tune the threshold on separate rows: {int(y.sum())} "
            f"'{positive}' and {int(len(y) - y.sum())} other rows; each side needs at least "
            f"{folds}")
    if options.tune_cv:
        return _cross_validated(preds, labels, true_codes, positive, options, rule, scores, y,
                                pred_codes)
    if tune_on is not None:
        return _tuned_elsewhere(preds, tune_on, positive, rule, scores, y, report)
    tune, rep = everything, everything
    tuned_on = "all rows"
    if options.tune_split:
        tune, rep = train_test_split(everything, train_size=options.tune_split,
                                     random_state=options.seed, stratify=y)
        tuned_on = f"{options.tune_split:.0%} of rows (reported on the other {len(rep)})"
    chosen = choose(table(y[tune], scores[tune]), rule)
    return ThresholdAnalysis(
        positive=positive, rule=rule, curves=curves(y, scores), chosen=chosen,
        at_half=at_threshold(table(y[rep], scores[rep]), 0.5),
        report_chosen=None if chosen is None else report(rep, chosen.threshold),
        report_half=report(rep, 0.5), tuned_on=tuned_on, n_reported=len(rep),
        held_out=bool(options.tune_split), scores=scores, is_positive=y,
    )


def _tuned_elsewhere(preds: Predictions, tune_on: Predictions, positive: str, rule: Rule,
                     scores: np.ndarray, y: np.ndarray,
                     report: Callable[[np.ndarray, float], ClassificationReport]
                     ) -> ThresholdAnalysis:
    tune_scores = positive_scores(tune_on, positive)
    if tune_scores is None or not np.isfinite(tune_scores).all():
        raise ValueError(f"the predictions to tune the threshold on have no score for "
                         f"{positive!r} on every row")
    tune_y = np.array([str(t).strip().casefold() == positive.casefold()
                       for t in tune_on.y_true], dtype=np.int64)
    if tune_y.min(initial=1) == tune_y.max(initial=0):
        raise ValueError(f"the predictions to tune the threshold on need both {positive!r} "
                         f"and other rows")
    chosen = choose(table(tune_y, tune_scores), rule)
    every = np.arange(len(y))
    return ThresholdAnalysis(
        positive=positive, rule=rule, curves=curves(y, scores), chosen=chosen,
        at_half=at_threshold(table(y, scores), 0.5),
        report_chosen=None if chosen is None else report(every, chosen.threshold),
        report_half=report(every, 0.5), tuned_on=f"{len(tune_y):,} validation rows",
        n_reported=len(y), held_out=True, scores=scores, is_positive=y)


def _cross_validated(preds: Predictions, labels: tuple[str, ...], true_codes: np.ndarray,
                     positive: str, options: EvalOptions, rule: Rule, scores: np.ndarray,
                     y: np.ndarray, pred_codes: np.ndarray) -> ThresholdAnalysis:
    """Each fold predicted with the threshold chosen on the other folds."""
    assert options.tune_cv is not None
    folds = StratifiedKFold(options.tune_cv, shuffle=True, random_state=options.seed)
    out_of_fold = np.empty(len(y), dtype=np.int64)
    for tune, held in folds.split(scores, y):
        point = choose(table(y[tune], scores[tune]), rule)
        threshold = np.inf if point is None else point.threshold
        out_of_fold[held] = thresholded(preds, labels, pred_codes, positive, scores,
                                        threshold)[held]
    k = len(labels)
    half = thresholded(preds, labels, pred_codes, positive, scores, 0.5)
    return ThresholdAnalysis(
        positive=positive, rule=rule, curves=curves(y, scores),
        chosen=choose(table(y, scores), rule),  # the threshold to deploy, chosen on all rows
        at_half=at_threshold(table(y, scores), 0.5),
        report_chosen=report_from_confusion(confusion_from_codes(true_codes, out_of_fold, k),
                                            labels),
        report_half=report_from_confusion(confusion_from_codes(true_codes, half, k), labels),
        tuned_on=f"{options.tune_cv}-fold cross-validation", n_reported=len(y), held_out=True,
        scores=scores, is_positive=y,
    )

