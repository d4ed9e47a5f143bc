"""Judge labelled predictions: metrics with intervals, the threshold trade-off, a comparison
with a baseline model, findings and the verdict. ``ftlens metrics`` and ``ftlens eval`` use
exactly this."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ftlens.core import eval_rules
from ftlens.core import leakage_effect as leak
from ftlens.core.bootstrap import interval, intervals, metrics_of, stratified_confusions
from ftlens.core.classification import (
    ClassificationReport,
    confusion_from_codes,
    encode,
    report_from_confusion,
)
from ftlens.core.compare import Comparison, compare
from ftlens.core.eval_types import BootIntervals, EvalOptions, Predictions
from ftlens.core.findings import Finding, Verdict, sort_findings, verdict
from ftlens.core.leakage_effect import LeakageEffect
from ftlens.core.seen import SeenRows
from ftlens.core.tradeoff import ThresholdAnalysis, analyse_threshold


@dataclass(frozen=True)
class Evaluation:
    report: ClassificationReport
    intervals: BootIntervals
    positive: str | None
    threshold: ThresholdAnalysis | None
    comparison: Comparison | None
    findings: tuple[Finding, ...]
    options: EvalOptions
    leakage: LeakageEffect | None = None  # set when rows seen in training were left out

    @property
    def verdict(self) -> Verdict:
        return verdict(self.findings)


DEFAULT_OPTIONS = EvalOptions()
__all__ = ["BootIntervals", "EvalOptions", "Evaluation", "Predictions", "evaluate"]


def evaluate(preds: Predictions, options: EvalOptions = DEFAULT_OPTIONS,
             baseline: Predictions | None = None, seen: SeenRows | None = None,
             tune_on: Predictions | None = None) -> Evaluation:
    """``seen``: which rows' inputs occur in the training data. When some do, the evaluation
    is taken on the unseen rows, and ``leakage`` compares it with all rows. ``tune_on``: the
    validation set's predictions, to choose the threshold on instead of the test rows."""
    if seen is not None and seen.n_seen:
        return _unseen_only(preds, options, baseline, seen, tune_on)
    labels, t, p = encode(preds.y_true, preds.y_pred, options.labels)
    if options.positive is not None and options.positive not in labels:
        raise ValueError(f"positive class {options.positive!r} is not a label: {list(labels)}")
    report = report_from_confusion(confusion_from_codes(t, p, len(labels)), labels)
    boot = metrics_of(stratified_confusions(report.confusion, options.n_boot, options.seed))
    conf = options.confidence
    cis = BootIntervals(
        tuple(intervals(boot.precision, conf)), tuple(intervals(boot.recall, conf)),
        tuple(intervals(boot.f1, conf)), interval(boot.macro_f1, conf),
        interval(boot.mcc, conf), interval(boot.accuracy, conf))
    positive = options.positive or _default_positive(report)
    threshold = None
    if positive is not None and options.rule is not None:
        threshold = analyse_threshold(preds, labels, t, p, positive, options, tune_on)
    comparison = None
    if baseline is not None:
        _, bt, bp = encode(baseline.y_true, baseline.y_pred, labels)
        if not np.array_equal(bt, t):
            raise ValueError("the baseline's true labels differ from the candidate's")
        comparison = compare(t, p, bp, labels, n_boot=options.n_boot, seed=options.seed,
                             confidence=conf)
    findings = eval_rules.findings(report, cis, positive if options.positive else None,
                                   threshold, comparison, options)
    return Evaluation(report, cis, positive, threshold, comparison,
                      tuple(sort_findings(findings)), options)


def _unseen_only(preds: Predictions, options: EvalOptions, baseline: Predictions | None,
                 seen: SeenRows, tune_on: Predictions | None) -> Evaluation:
    if len(seen.exact) != len(preds.y_true):
        raise ValueError(f"{len(seen.exact)} rows were checked for leakage but there are "
                         f"{len(preds.y_true)} predictions")
    everything = evaluate(preds, options, baseline, tune_on=tune_on)
    if seen.n_seen == seen.n_rows:
        return dataclasses.replace(everything, findings=tuple(sort_findings(
            [*everything.findings, leak.all_seen_finding(seen)])))
    labels = everything.report.labels
    fixed = dataclasses.replace(options, labels=labels,
                                positive=options.positive or everything.positive)
    keep = ~seen.mask
    ev = evaluate(_rows(preds, keep), fixed, _rows(baseline, keep) if baseline else None,
                  tune_on=tune_on)
    _, t, p = encode(preds.y_true, preds.y_pred, labels)
    k = len(labels)
    moved = leak.shifts(confusion_from_codes(t[~keep], p[~keep], k),
                        confusion_from_codes(t[keep], p[keep], k), labels, ev.positive,
                        n_boot=options.n_boot, seed=options.seed,
                        confidence=options.confidence)
    effect = leak.LeakageEffect(seen, everything.report, everything.verdict, moved)
    finding = leak.leakage_finding(effect, ev.verdict)
    return dataclasses.replace(ev, findings=tuple(sort_findings([*ev.findings, finding])),
                               leakage=effect)


def _rows(preds: Predictions, keep: np.ndarray) -> Predictions:
    def take(values: Sequence[str] | None) -> list[str] | None:
        return None if values is None else [v for v, k in zip(values, keep, strict=True) if k]

    return Predictions(
        take(preds.y_true) or [], take(preds.y_pred) or [],
        None if preds.scores is None else preds.scores[keep],
        None if preds.probs is None else preds.probs[keep], preds.prob_labels,
        take(preds.ids))


def _default_positive(report: ClassificationReport) -> str | None:
    """For two classes, the rarer one is 'positive' (spam, fraud); none otherwise."""
    if len(report.labels) != 2:
        return None
    support = [c.support for c in report.per_class]
    return report.labels[int(np.argmin(support))]
