"""How much the test rows the model saw in training move the metrics: every headline metric on
all rows and on the unseen rows only, the difference with a bootstrap interval, and the
``leakage_inflates_metrics`` finding. :func:`ftlens.core.evaluation.evaluate` takes its
verdict on the unseen rows when it is given :class:`~ftlens.core.seen.SeenRows`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ftlens.core.bootstrap import BootMetrics, interval, metrics_of, stratified_confusions
from ftlens.core.classification import ClassificationReport, Interval
from ftlens.core.findings import Finding, Verdict
from ftlens.core.seen import SeenRows


@dataclass(frozen=True)
class MetricShift:
    name: str  # e.g. "recall(spam)", "accuracy", "macro-F1"
    all_rows: float
    unseen: float
    ci: Interval  # of all_rows - unseen

    @property
    def diff(self) -> float:
        return self.all_rows - self.unseen

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.name, "all_rows": self.all_rows, "unseen_rows": self.unseen,
                "difference": self.diff, "difference_ci": [self.ci.low, self.ci.high]}


@dataclass(frozen=True)
class LeakageEffect:
    seen: SeenRows
    all_rows: ClassificationReport  # the metrics on every row (the judged ones are unseen)
    all_verdict: Verdict  # the verdict the evaluation would give on every row
    shifts: tuple[MetricShift, ...]  # headline metrics, largest inflation first


def shifts(seen_confusion: np.ndarray, unseen_confusion: np.ndarray,
           labels: tuple[str, ...], positive: str | None, *, n_boot: int, seed: int,
           confidence: float) -> tuple[MetricShift, ...]:
    """Headline metrics on all rows vs the unseen rows, each difference with its interval from
    resampling the seen and the unseen rows apart (stratified by true class, as elsewhere)."""
    point_all = metrics_of((seen_confusion + unseen_confusion)[None])
    point_unseen = metrics_of(unseen_confusion[None])
    boot_seen = stratified_confusions(seen_confusion, n_boot, seed)
    boot_unseen = stratified_confusions(unseen_confusion, n_boot, seed + 1)
    boot_all, boot_un = metrics_of(boot_seen + boot_unseen), metrics_of(boot_unseen)

    def pick(m: BootMetrics, name: str) -> np.ndarray:
        if name == "accuracy":
            return m.accuracy
        if name == "macro-F1":
            return m.macro_f1
        metric, label = name.rstrip(")").split("(")
        return getattr(m, metric)[:, labels.index(label)]

    names = ["accuracy", "macro-F1"]
    if positive is not None:
        names = [f"{m}({positive})" for m in ("recall", "precision", "f1")] + names
    out = [MetricShift(n, float(pick(point_all, n)[0]), float(pick(point_unseen, n)[0]),
                       interval(pick(boot_all, n) - pick(boot_un, n), confidence))
           for n in names]
    return tuple(sorted(out, key=lambda s: -s.diff))


def leakage_finding(effect: LeakageEffect, unseen_verdict: Verdict) -> Finding:
    seen, top = effect.seen, effect.shifts[0]
    n_unseen = seen.n_rows - seen.n_seen
    n_exact = sum(e is not None for e in seen.exact)
    how = f"{n_exact:,} exactly and {seen.n_seen - n_exact:,} as near-duplicates"
    flips = effect.all_verdict != unseen_verdict
    both = (f"{top.name} {top.all_rows:.3f} on all {seen.n_rows:,} rows, {top.unseen:.3f} on "
            f"the {n_unseen:,} unseen ones (difference {top.diff:+.3f}, 95 % interval "
            f"{top.ci.low:+.3f} to {top.ci.high:+.3f})")
    if top.diff > 0:
        title = (f"the {seen.n_seen:,} test rows seen in training inflate {top.name}: "
                 f"{top.all_rows:.3f} on all rows, {top.unseen:.3f} on the unseen")
    else:
        title = f"{seen.n_seen:,} test rows were seen in training (they inflate no metric here)"
    verdict_text = (f"on all rows the verdict would be {effect.all_verdict}, on the unseen "
                    f"rows it is {unseen_verdict}" if flips else
                    f"the verdict is the same ({unseen_verdict}) on both")
    return Finding(
        "leakage_inflates_metrics", "fail" if flips else "warn", title,
        f"{seen.n_seen:,} of {seen.n_rows:,} test inputs occur in the training data ({how}); "
        f"{both}; the metrics judged are those of the unseen rows; {verdict_text}",
        "remove the leaked rows from the training data (ftlens audit --write-clean) and "
        "retrain, or keep judging on the unseen rows",
        details={"seen_rows": seen.n_seen, "unseen_rows": n_unseen,
                 "shifts": [s.to_dict() for s in effect.shifts]})


def all_seen_finding(seen: SeenRows) -> Finding:
    return Finding(
        "leakage_inflates_metrics", "fail", "every test row was seen in training",
        f"all {seen.n_rows:,} test inputs occur in the training data: no unseen row is left "
        "to judge the model on", "hold out test examples that are not in the training data",
        inconclusive=True, details={"seen_rows": seen.n_seen, "unseen_rows": 0})
