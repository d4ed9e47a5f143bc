"""An evaluation as JSON-ready data (``--json``, and what the HTML report plots)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ftlens.core.classification import UNPARSEABLE, ClassificationReport, Interval

if TYPE_CHECKING:
    from ftlens.core.evaluation import Evaluation
    from ftlens.core.threshold import Curves, OperatingPoint

MAX_CURVE_POINTS = 400


def _ci(i: Interval) -> list[float]:
    return [round(i.low, 6), round(i.high, 6)]


def report_to_dict(r: ClassificationReport) -> dict[str, Any]:
    return {
        "n": r.n, "n_unparseable": r.n_unparseable,
        "accuracy": r.accuracy, "accuracy_ci": _ci(r.accuracy_ci),
        "balanced_accuracy": r.balanced_accuracy, "mcc": r.mcc, "kappa": r.kappa,
        "micro": vars(r.micro), "macro": vars(r.macro), "weighted": vars(r.weighted),
        "majority_label": r.majority_label, "majority_accuracy": r.majority_accuracy,
        "confusion": {"rows": list(r.labels), "columns": [*r.labels, UNPARSEABLE],
                      "matrix": r.confusion.tolist()},
        "per_class": [{
            "label": c.label, "precision": c.precision, "recall": c.recall, "f1": c.f1,
            "support": c.support, "predicted": c.predicted,
            "precision_wilson": _ci(c.precision_ci), "recall_wilson": _ci(c.recall_ci),
        } for c in r.per_class],
    }


def _thin(*arrays: np.ndarray) -> list[list[float | None]]:
    """At most MAX_CURVE_POINTS points; an undefined value (a curve of one class) is null,
    never NaN, which is not JSON."""
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).astype(int)) if n else (
        np.array([], dtype=int))
    return [[round(float(a[i]), 6) if np.isfinite(a[i]) else None for a in arrays]
            for i in idx]


def _curves(c: Curves) -> dict[str, Any]:
    return {
        "roc_auc": c.roc_auc, "average_precision": c.average_precision,
        "pr": {"columns": ["recall", "precision"], "points": _thin(c.pr_recall, c.pr_precision)},
        "roc": {"columns": ["fpr", "tpr"], "points": _thin(c.roc_fpr, c.roc_tpr)},
    }


def _point(p: OperatingPoint | None) -> dict[str, Any] | None:
    return None if p is None else vars(p)


def evaluation_to_dict(ev: Evaluation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "verdict": ev.verdict, "positive": ev.positive,
        "metrics": report_to_dict(ev.report),
        "bootstrap": {
            "resamples": ev.options.n_boot, "seed": ev.options.seed,
            "confidence": ev.options.confidence, "accuracy": _ci(ev.intervals.accuracy),
            "macro_f1": _ci(ev.intervals.macro_f1), "mcc": _ci(ev.intervals.mcc),
            "per_class": {label: {"precision": _ci(p), "recall": _ci(r), "f1": _ci(f)}
                          for label, p, r, f in zip(ev.report.labels, ev.intervals.precision,
                                                    ev.intervals.recall, ev.intervals.f1,
                                                    strict=True)},
        },
        "threshold": None, "comparison": None, "leakage": None,
        "findings": [f.to_dict() for f in ev.findings],
    }
    if ev.leakage is not None:
        lk = ev.leakage
        out["leakage"] = {
            "seen_rows": lk.seen.n_seen, "unseen_rows": lk.seen.n_rows - lk.seen.n_seen,
            "judged_on": "unseen_rows", "all_rows_verdict": lk.all_verdict,
            "metrics_all_rows": report_to_dict(lk.all_rows),
            "shifts": [s.to_dict() for s in lk.shifts], "rows": lk.seen.rows()}
    t = ev.threshold
    if t is not None:
        out["threshold"] = {
            "positive": t.positive, "rule": t.rule.describe(), "tuned_on": t.tuned_on,
            "held_out": t.held_out, "n_reported": t.n_reported,
            "chosen": _point(t.chosen), "at_0_5": _point(t.at_half),
            "metrics_at_chosen": None if t.report_chosen is None else report_to_dict(
                t.report_chosen),
            "metrics_at_0_5": report_to_dict(t.report_half),
            "curves": _curves(t.curves),
            "scores": [round(float(s), 6) for s in t.scores],
            "is_positive": t.is_positive.astype(int).tolist(),
        }
    c = ev.comparison
    if c is not None:
        out["comparison"] = {
            "n": c.n, "both_correct": c.both_correct, "only_candidate": c.only_candidate,
            "only_baseline": c.only_baseline, "both_wrong": c.both_wrong,
            "mcnemar_p": c.mcnemar_p, "needed_n": c.needed_n,
            "differences": [{"name": d.name, "estimate": d.estimate, "ci": _ci(d.interval),
                             "significant": d.significant} for d in c.differences],
        }
    return out
