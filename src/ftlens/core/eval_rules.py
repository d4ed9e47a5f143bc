"""The findings of an evaluation: what practitioners check before shipping a classifier.

Defaults: accuracy, and precision and recall of every class (or of the positive class when one
is named), at least ``min_score`` (0.85); precision and recall not far apart; accuracy not a
mirage of class imbalance; outputs parseable; enough examples to tell; user gates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftlens.core.classification import ClassificationReport, ClassMetrics
from ftlens.core.compare import Comparison
from ftlens.core.findings import Finding
from ftlens.core.tradeoff import ThresholdAnalysis
from ftlens.core.wording import plural

if TYPE_CHECKING:
    from ftlens.core.eval_types import BootIntervals, EvalOptions

IMBALANCE_GAP = 0.3  # |precision − recall| that counts as far apart
PARADOX_MARGIN = 0.05  # accuracy this close to the majority baseline is no achievement
MINORITY_RECALL = 0.5  # a minority class recalled less than this makes accuracy misleading
SMALL_HALF_WIDTH = 0.1
UNPARSEABLE_FAIL = 0.05


def _pct(x: float) -> str:
    return f"{x:.1%}"


def findings(report: ClassificationReport, cis: BootIntervals, positive: str | None,
             threshold: ThresholdAnalysis | None, comparison: Comparison | None,
             options: EvalOptions) -> list[Finding]:
    checked = [report.of(positive)] if positive else list(report.per_class)
    out = [
        *_score_findings(report, checked, options.min_score),
        *_imbalance(checked),
        *(_single_class(report) or _paradox(report, options.min_score)),
        *_unparseable(report),
        *_small_sample(checked, options.min_score),
        *_threshold(threshold),
        *_comparison(comparison),
        *_gates(report, cis, threshold, positive, options),
    ]
    if not any(f.severity in ("fail", "warn") for f in out):
        shown = ", ".join(f"{c.label} P {_pct(c.precision)} R {_pct(c.recall)}" for c in checked)
        out.append(Finding(
            "meets_bar", "info", f"every checked metric is at least {options.min_score:g}",
            f"accuracy {_pct(report.accuracy)} on {plural(report.n, 'example')}; {shown}"))
    return out


def _score_findings(report: ClassificationReport, checked: list[ClassMetrics], bar: float
                    ) -> list[Finding]:
    out = []
    if report.accuracy < bar:
        out.append(Finding(
            "low_accuracy", "fail", f"accuracy {_pct(report.accuracy)} is below {bar:g}",
            f"{report.n - int(report.accuracy * report.n + 0.5):,} of {report.n:,} examples "
            f"wrong (95 % interval {_pct(report.accuracy_ci.low)}–"
            f"{_pct(report.accuracy_ci.high)})",
            "look at the confusion matrix for the classes it mixes up; more or cleaner "
            "training data for those classes usually helps most"))
    for metric in ("precision", "recall"):
        low = [c for c in checked if getattr(c, metric) < bar]
        if not low:
            continue
        shown = "; ".join(_class_text(report, c, metric) for c in low)
        advice = ("the model raises false alarms for these classes: raise the threshold or add "
                  "hard negative examples" if metric == "precision" else
                  "the model misses these classes: add examples of them, or lower the threshold "
                  "(see the precision/recall trade-off)")
        out.append(Finding(
            f"low_{metric}", "fail",
            f"{metric} below {bar:g} for {', '.join(c.label for c in low)}", shown, advice,
            details={"classes": {c.label: getattr(c, metric) for c in low}}))
    return out


def _class_text(report: ClassificationReport, c: ClassMetrics, metric: str) -> str:
    i = report.labels.index(c.label)
    value = getattr(c, metric)
    if metric == "recall":
        row = report.confusion[i].copy()
        row[i] = 0
        j = int(row.argmax())
        where = (report.labels[j] if j < len(report.labels) else "unparseable")
        missed = c.support - int(report.confusion[i, i])
        extra = f"; most often mistaken for {where} ({int(row[j])})" if missed else ""
        return (f"{c.label}: recall {_pct(value)} — {missed} of {c.support} missed{extra}")
    if not c.predicted:
        return f"{c.label}: never predicted (precision counted as 0)"
    wrong = c.predicted - int(report.confusion[i, i])
    return f"{c.label}: precision {_pct(value)} — {wrong} of {c.predicted} flagged were not"


def _imbalance(checked: list[ClassMetrics]) -> list[Finding]:
    far = [c for c in checked if abs(c.precision - c.recall) >= IMBALANCE_GAP]
    if not far:
        return []
    shown = "; ".join(f"{c.label}: precision {_pct(c.precision)} vs recall {_pct(c.recall)}"
                      for c in far)
    return [Finding(
        "precision_recall_imbalance", "warn", "precision and recall are far apart", shown,
        "the model is tuned to one kind of error: move the decision threshold (see the "
        "trade-off) or rebalance the training data",
        details={"classes": [c.label for c in far]})]


def _single_class(report: ClassificationReport) -> list[Finding]:
    """Every true label the same: accuracy only says how often the model gave that answer."""
    present = [c for c in report.per_class if c.support]
    if len(present) != 1:
        return []
    only = present[0]
    return [Finding(
        "single_class", "warn", f"only one class is present: every true label is "
        f"'{only.label}'",
        f"{report.n:,} rows, all '{only.label}': accuracy ({_pct(report.accuracy)}) is the "
        f"share of '{only.label}' answers; how the model does on any other class, its "
        "precision, the comparison with always answering the majority, and a threshold cannot "
        "be judged", "evaluate on rows of every class the model must tell apart",
        inconclusive=True, details={"label": only.label, "rows": report.n})]


def _paradox(report: ClassificationReport, bar: float) -> list[Finding]:
    if report.accuracy < bar:
        return []
    minority = [c for c in report.per_class if c.label != report.majority_label
                and c.support and c.recall < MINORITY_RECALL]
    near_baseline = report.accuracy - report.majority_accuracy < PARADOX_MARGIN
    if not (minority or near_baseline):
        return []
    parts = [f"accuracy {_pct(report.accuracy)} looks good, but always answering "
             f"'{report.majority_label}' scores {_pct(report.majority_accuracy)}"]
    parts += [f"{c.label} recall is {_pct(c.recall)}" for c in minority]
    return [Finding(
        "accuracy_paradox", "fail", "high accuracy hides a failing class" if minority else
        "accuracy is barely above always answering the majority class", "; ".join(parts),
        "judge per-class recall and precision (or macro-F1), not accuracy, on imbalanced data")]


def _unparseable(report: ClassificationReport) -> list[Finding]:
    if not report.n_unparseable:
        return []
    rate = report.n_unparseable / report.n
    return [Finding(
        "unparseable_outputs", "fail" if rate >= UNPARSEABLE_FAIL else "warn",
        f"{report.n_unparseable:,} answer{'s' if report.n_unparseable != 1 else ''} "
        f"({_pct(rate)}) {'are' if report.n_unparseable != 1 else 'is'} not a label",
        f"{report.n_unparseable:,} of {report.n:,} answers are outside "
        f"{{{', '.join(report.labels)}}}; they count as errors in every metric",
        "train on more examples of the exact answer format, constrain decoding, or score the "
        "labels with logprobs instead of parsing text")]


def _small_sample(checked: list[ClassMetrics], bar: float) -> list[Finding]:
    out = []
    for c in checked:
        # Support decides (recall's interval); precision only once the class is predicted.
        candidates = [("recall", c.recall_ci)] if c.support else []
        if c.predicted:
            candidates.append(("precision", c.precision_ci))
        wide = [(name, ci) for name, ci in candidates if ci.half_width > SMALL_HALF_WIDTH]
        if not wide:
            continue
        straddles = any(ci.low < bar <= ci.high for _, ci in wide)
        shown = "; ".join(f"{name} between {_pct(ci.low)} and {_pct(ci.high)}"
                          for name, ci in wide)
        out.append(Finding(
            "small_sample", "warn" if straddles else "info",
            f"too few {c.label} examples to be sure", f"{c.support} {c.label} examples: {shown} "
            "(95 % Wilson intervals, wider than ±0.10)" + (
                f"; the bar {bar:g} lies inside" if straddles else ""),
            f"label more {c.label} examples for the test set (about 35+ per class narrows a "
            "90 % recall to ±0.1)", inconclusive=straddles))
    return out


def _threshold(analysis: ThresholdAnalysis | None) -> list[Finding]:
    if analysis is None or analysis.chosen is None:
        return []
    c = analysis.chosen
    out = [Finding(
        "threshold_choice", "info",
        f"threshold {c.threshold:.3g} for {analysis.positive} ({analysis.rule.describe()})",
        f"precision {_pct(c.precision)}, recall {_pct(c.recall)} where chosen; at 0.5: "
        f"precision {_pct(analysis.at_half.precision)}, recall {_pct(analysis.at_half.recall)}",
        "")]
    if not analysis.held_out:
        out.append(Finding(
            "threshold_tuned_on_test", "warn", "the threshold was chosen on the rows it is "
            "judged on", f"threshold {c.threshold:.3g} was chosen on all {analysis.n_reported:,}"
            " rows and judged on the same rows: its precision and recall are optimistic",
            "choose it on validation answers (ftlens eval --valid, ftlens metrics --tune-on), "
            "or pass --tune-on-split 0.5 or --tune-cv 5 to choose and judge on different rows"))
    return out


def _comparison(cmp: Comparison | None) -> list[Finding]:
    if cmp is None:
        return []
    acc = cmp.difference("accuracy")
    evidence = (f"accuracy {acc.estimate:+.1%} (95 % interval {acc.interval.low:+.1%} to "
                f"{acc.interval.high:+.1%}); {cmp.only_candidate} items only the candidate gets "
                f"right, {cmp.only_baseline} only the baseline; exact McNemar p = "
                f"{cmp.mcnemar_p:.3g}")
    if acc.interval.high < 0:
        return [Finding("worse_than_baseline", "fail", "worse than the baseline model",
                        evidence, "check the fine-tuning data and hyperparameters")]
    if acc.significant:
        return [Finding("significant_gain", "info", "better than the baseline model", evidence)]
    need = (f"; about {cmp.needed_n:,} test items would detect a difference this size"
            if cmp.needed_n else "")
    return [Finding("no_significant_gain", "warn", "no significant gain over the baseline",
                    evidence + need, "add test items, or improve the fine-tune before relying "
                    "on the difference")]


def _gates(report: ClassificationReport, cis: BootIntervals, threshold: ThresholdAnalysis | None,
           positive: str | None, options: EvalOptions) -> list[Finding]:
    from ftlens.core.gates import actual_value

    out = []
    for req in options.requirements:
        actual = actual_value(req, report, threshold, positive)
        ok = actual is not None and req.holds(actual)
        shown = "not available" if actual is None else f"{actual:.4g}"
        out.append(Finding(
            "requirement_met" if ok else "requirement_failed", "info" if ok else "fail",
            f"requirement {req.text} {'met' if ok else 'failed'}",
            f"{req.metric}{f'({req.label})' if req.label else ''} is {shown}",
            "" if ok else "this is a gate you set (--require)",
            details={"requirement": req.text, "actual": actual}))
    return out
