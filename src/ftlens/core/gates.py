"""The value a ``--require`` gate refers to."""

from __future__ import annotations

from ftlens.core.classification import ClassificationReport
from ftlens.core.labels import match_label
from ftlens.core.requirements import Requirement
from ftlens.core.tradeoff import ThresholdAnalysis
from ftlens.errors import ConfigError


def actual_value(req: Requirement, report: ClassificationReport,
                 threshold: ThresholdAnalysis | None, positive: str | None) -> float | None:
    m = req.metric
    overall = {
        "accuracy": report.accuracy, "balanced_accuracy": report.balanced_accuracy,
        "mcc": report.mcc, "kappa": report.kappa, "macro_f1": report.macro.f1,
        "micro_f1": report.micro.f1, "weighted_f1": report.weighted.f1,
        "unparseable_rate": report.n_unparseable / report.n if report.n else 0.0,
    }
    if m in overall:
        return overall[m]
    label = req.label or positive
    if m in ("auc", "average_precision"):
        if threshold is None or (label is not None
                                 and match_label(label, [threshold.positive]) is None):
            return None
        return threshold.curves.roc_auc if m == "auc" else threshold.curves.average_precision
    if label is None:  # precision/recall/f1 without a class: macro average
        return float(getattr(report.macro, m))
    found = match_label(label, report.labels)  # "Fraud" names the label "fraud"
    if found is None:
        raise ConfigError(f"requirement {req.text!r} names {label!r}, which is not a label",
                          hint="labels are " + ", ".join(report.labels))
    return float(getattr(report.of(found), m))
