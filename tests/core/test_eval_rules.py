"""The verdict on labelled predictions, the --require gates and their parser."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn import metrics as skm

from ftlens.core.evaluation import EvalOptions, Evaluation, Predictions, evaluate
from ftlens.core.findings import Finding
from ftlens.core.gates import actual_value
from ftlens.core.requirements import Requirement, parse_requirement
from ftlens.errors import ConfigError


def rows(*groups: tuple[str, str, int]) -> Predictions:
    """Predictions from (true label, predicted label, count) groups."""
    y_true = [t for t, _, n in groups for _ in range(n)]
    y_pred = [p for _, p, n in groups for _ in range(n)]
    return Predictions(y_true, y_pred)


def by_id(ev: Evaluation) -> dict[str, Finding]:
    """The first finding of each id (small_sample comes once per class)."""
    out: dict[str, Finding] = {}
    for f in ev.findings:
        out.setdefault(f.id, f)
    return out


# 98 % accuracy, 12 % fraud recall: 3 of 25 frauds caught, no false alarm, 1,075 legitimate
FRAUD = rows(("fraud", "fraud", 3), ("fraud", "ok", 22), ("ok", "ok", 1075))
# 500/500, precision and recall 0.9 for both classes
BALANCED = rows(("spam", "spam", 450), ("spam", "ham", 50), ("ham", "ham", 450),
                ("ham", "spam", 50))
# 95 % precision, 10 % recall for spam
TIMID = rows(("spam", "spam", 20), ("spam", "ham", 180), ("ham", "spam", 1), ("ham", "ham", 799))
# 12 positives, 11 found: recall 0.917 with a Wilson interval of about 0.65–0.99
SMALL = rows(("spam", "spam", 11), ("spam", "ham", 1), ("ham", "ham", 30))
# 6 % unparseable answers
GARBLED = rows(("spam", "spam", 47), ("spam", "maybe", 3), ("ham", "ham", 47),
               ("ham", "I am not sure", 3))


def test_fraud_accuracy_paradox_is_not_ready_naming_recall() -> None:
    ev = evaluate(FRAUD, EvalOptions(positive="fraud"))
    assert ev.report.accuracy == pytest.approx(0.98)
    assert ev.report.of("fraud").recall == pytest.approx(0.12)
    assert ev.verdict == "not_ready"
    found = by_id(ev)
    assert found["low_recall"].severity == "fail"
    assert "fraud" in found["low_recall"].title and "12.0%" in found["low_recall"].evidence
    assert found["low_recall"].details["classes"] == {"fraud": pytest.approx(0.12)}
    assert found["accuracy_paradox"].severity == "fail"
    assert "98.0%" in found["accuracy_paradox"].evidence
    assert "97.7%" in found["accuracy_paradox"].evidence  # always answering 'ok'
    assert "low_accuracy" not in found


def test_fraud_without_a_positive_class_still_names_fraud() -> None:
    ev = evaluate(FRAUD, EvalOptions())
    assert ev.verdict == "not_ready"
    low = by_id(ev)["low_recall"]
    assert set(low.details["classes"]) == {"fraud"}
    assert "accuracy_paradox" in by_id(ev)


@pytest.mark.parametrize("positive", ["spam", None])
def test_balanced_ninety_ninety_is_ready(positive: str | None) -> None:
    ev = evaluate(BALANCED, EvalOptions(positive=positive))
    assert ev.verdict == "ready"
    assert [f.id for f in ev.findings] == ["meets_bar"]
    assert "90.0%" in ev.findings[0].evidence


def test_same_numbers_below_the_bar_are_not_ready() -> None:
    ev = evaluate(BALANCED, EvalOptions(positive="spam", min_score=0.95))
    assert ev.verdict == "not_ready"
    assert {"low_accuracy", "low_precision", "low_recall"} <= set(by_id(ev))


def test_precision_recall_imbalance_is_named() -> None:
    ev = evaluate(TIMID, EvalOptions(positive="spam"))
    spam = ev.report.of("spam")
    assert spam.precision == pytest.approx(20 / 21)
    assert spam.recall == pytest.approx(0.1)
    found = by_id(ev)
    assert found["precision_recall_imbalance"].severity == "warn"
    assert found["precision_recall_imbalance"].details["classes"] == ["spam"]
    assert "95.2%" in found["precision_recall_imbalance"].evidence
    assert "10.0%" in found["precision_recall_imbalance"].evidence
    assert ev.verdict == "not_ready"


def test_small_sample_with_the_bar_inside_the_interval_is_inconclusive() -> None:
    ev = evaluate(SMALL, EvalOptions(positive="spam"))
    ci = ev.report.of("spam").recall_ci
    assert ci.low < 0.85 < ci.high
    found = by_id(ev)
    assert found["small_sample"].severity == "warn" and found["small_sample"].inconclusive
    assert not [f for f in ev.findings if f.severity == "fail"]
    assert ev.verdict == "inconclusive"


def test_small_sample_far_below_the_bar_is_only_info() -> None:
    # 5 of 12 found, 5 of 25 flagged right: both intervals (about 0.19–0.68 and 0.09–0.39) are
    # wide but clearly below 0.85
    ev = evaluate(rows(("spam", "spam", 5), ("spam", "ham", 7), ("ham", "spam", 20),
                       ("ham", "ham", 80)), EvalOptions(positive="spam"))
    small = by_id(ev)["small_sample"]
    assert small.inconclusive is False
    assert ev.verdict == "not_ready"


def test_enough_support_is_not_a_small_sample() -> None:
    ev = evaluate(BALANCED, EvalOptions(positive="spam"))
    assert ev.report.of("spam").recall_ci.half_width < 0.1
    assert "small_sample" not in by_id(ev)


def test_a_never_predicted_class_with_ample_support_is_not_a_small_sample() -> None:
    # 500 spam examples, never predicted: the precision interval is (0, 1) because there are no
    # spam predictions, not because there are too few spam examples
    ev = evaluate(rows(("spam", "ham", 500), ("ham", "ham", 500)), EvalOptions())
    assert ev.report.of("spam").recall_ci.half_width < 0.1
    assert "low_recall" in by_id(ev)
    small = [f for f in ev.findings if f.id == "small_sample"]
    assert not [f for f in small if "too few spam" in f.title], small


@pytest.mark.parametrize(("unparseable", "severity"), [(3, "fail"), (1, "warn")])
def test_unparseable_outputs(unparseable: int, severity: str) -> None:
    preds = rows(("spam", "spam", 50 - unparseable), ("spam", "maybe", unparseable),
                 ("ham", "ham", 50 - unparseable), ("ham", "I am not sure", unparseable))
    ev = evaluate(preds, EvalOptions(positive="spam"))
    found = by_id(ev)["unparseable_outputs"]
    assert found.severity == severity
    assert ev.report.n_unparseable == 2 * unparseable
    if severity == "fail":
        assert ev.verdict == "not_ready"


def test_majority_baseline_paradox_without_a_failing_class() -> None:
    # 96 % accuracy while always answering 'ok' gives 95 %: barely above the baseline
    ev = evaluate(rows(("ok", "ok", 950), ("bad", "bad", 40), ("bad", "ok", 10)),
                  EvalOptions(min_score=0.75))
    paradox = by_id(ev)["accuracy_paradox"]
    assert "barely above" in paradox.title
    assert "95.0%" in paradox.evidence


def test_a_single_class_is_said_plainly_not_called_a_paradox() -> None:
    ev = evaluate(rows(("ok", "ok", 48), ("ok", "bad", 2)), EvalOptions(min_score=0.75))
    found = by_id(ev)
    assert "accuracy_paradox" not in found
    single = found["single_class"]
    assert single.title == "only one class is present: every true label is 'ok'"
    assert "cannot be judged" in single.evidence and single.inconclusive
    assert ev.verdict == "inconclusive"
    one = evaluate(rows(("spam", "spam", 30), ("ham", "ham", 30), ("ham", "x", 1)))
    assert by_id(one)["unparseable_outputs"].title == "1 answer (1.6%) is not a label"


SCORED_N = 200


def _scored() -> Predictions:
    rng = np.random.default_rng(0)
    y = rng.random(SCORED_N) < 0.3
    s = np.clip(0.4 * y + 0.6 * rng.random(SCORED_N), 0, 1)
    return Predictions(["spam" if v else "ham" for v in y],
                       ["spam" if v >= 0.5 else "ham" for v in s], scores=s)


@pytest.mark.parametrize(("preds", "options", "baseline"), [
    (FRAUD, EvalOptions(positive="fraud"), None),
    (BALANCED, EvalOptions(positive="spam"), None),
    (TIMID, EvalOptions(positive="spam"), None),
    (SMALL, EvalOptions(positive="spam"), None),
    (GARBLED, EvalOptions(positive="spam"), None),
    (_scored(), EvalOptions(positive="spam"), None),
    (_scored(), EvalOptions(positive="spam", tune_split=0.5), None),
    (BALANCED, EvalOptions(positive="spam"), BALANCED),
    (BALANCED, EvalOptions(requirements=(parse_requirement("recall(spam)>=0.95"),
                                         parse_requirement("accuracy>=0.5"))), None),
], ids=["fraud", "balanced", "timid", "small", "garbled", "scored", "scored-split",
        "compared", "gates"])
def test_every_finding_explains_itself_with_numbers(
        preds: Predictions, options: EvalOptions, baseline: Predictions | None) -> None:
    ev = evaluate(preds, options, baseline)
    assert ev.findings
    for f in ev.findings:
        assert f.title and f.evidence, f
        assert re.search(r"\d", f.evidence), (f.id, f.evidence)
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", f.id)
        if f.severity == "fail":
            assert f.advice, f.id
    severities = [f.severity for f in ev.findings]
    assert severities == sorted(severities, key=["fail", "warn", "info"].index)


# --- requirements -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "metric", "label", "op", "value"), [
    ("recall(spam)>=0.9", "recall", "spam", ">=", 0.9),
    ("precision>=0.8", "precision", None, ">=", 0.8),
    ("  precision  >=  .8  ", "precision", None, ">=", 0.8),
    ("recall( spam ) > .9", "recall", "spam", ">", 0.9),
    ("f1(very urgent)<1", "f1", "very urgent", "<", 1.0),
    ("macro_f1>0.7", "macro_f1", None, ">", 0.7),
    ("accuracy==1", "accuracy", None, "==", 1.0),
    ("mcc>=-.5", "mcc", None, ">=", -0.5),
    ("unparseable_rate<=0.05", "unparseable_rate", None, "<=", 0.05),
    ("auc(spam)>=0.95", "auc", "spam", ">=", 0.95),
    ("average_precision>=0.5", "average_precision", None, ">=", 0.5),
    ("balanced_accuracy>=0.8", "balanced_accuracy", None, ">=", 0.8),
    ("kappa>0.6", "kappa", None, ">", 0.6),
])
def test_parse_requirement(text: str, metric: str, label: str | None, op: str,
                           value: float) -> None:
    req = parse_requirement(text)
    assert (req.metric, req.label, req.op, req.value) == (metric, label, op, value)
    assert req.text == text.strip()


@pytest.mark.parametrize(("text", "message"), [
    ("foo>=0.9", "unknown metric 'foo'"),
    ("recal(spam)>=0.9", "unknown metric 'recal'"),
    ("accuracy(spam)>=0.9", "takes no class label"),
    ("macro_f1(spam)>0.5", "takes no class label"),
    ("recall>=", "cannot read"),
    ("recall>=abc", "cannot read"),
    ("recall(spam)=>0.9", "cannot read"),
    ("recall 0.9", "cannot read"),
    ("", "cannot read"),
    ("recall>=0.9 and precision>=0.8", "cannot read"),
    ("Recall>=0.9", "cannot read"),
])
def test_bad_requirements_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        parse_requirement(text)
    assert info.value.hint  # says how to write it


@pytest.mark.parametrize(("op", "actual", "holds"), [
    (">=", 0.9, True), (">=", 0.8999, False), (">", 0.9, False), (">", 0.91, True),
    ("<=", 0.9, True), ("<", 0.9, False), ("==", 0.9, True), ("==", 0.91, False),
])
def test_requirement_operators(op: str, actual: float, holds: bool) -> None:
    assert Requirement("x", "accuracy", None, op, 0.9).holds(actual) is holds


# --- gates ------------------------------------------------------------------------------------

# three classes with different per-class numbers, so per-class, macro and positive differ
THREE = rows(("a", "a", 40), ("a", "b", 10), ("b", "b", 25), ("b", "c", 5), ("c", "c", 18),
             ("c", "a", 2))


@pytest.mark.parametrize(("text", "positive", "expected"), [
    ("recall(a)>=0", None, lambda r: r.of("a").recall),
    ("precision(c)>=0", None, lambda r: r.of("c").precision),
    ("f1(b)>=0", "a", lambda r: r.of("b").f1),
    ("recall>=0", None, lambda r: r.macro.recall),  # no label, no positive: macro
    ("precision>=0", None, lambda r: r.macro.precision),
    ("recall>=0", "b", lambda r: r.of("b").recall),  # no label: the positive class
    ("accuracy>=0", "b", lambda r: r.accuracy),
    ("macro_f1>=0", None, lambda r: r.macro.f1),
    ("weighted_f1>=0", None, lambda r: r.weighted.f1),
    ("micro_f1>=0", None, lambda r: r.micro.f1),
    ("mcc>=0", None, lambda r: r.mcc),
    ("kappa>=0", None, lambda r: r.kappa),
    ("balanced_accuracy>=0", None, lambda r: r.balanced_accuracy),
    ("unparseable_rate<=1", None, lambda r: 0.0),
])
def test_gate_values(text: str, positive: str | None, expected: object) -> None:
    ev = evaluate(THREE, EvalOptions(positive=positive, requirements=(parse_requirement(text),)))
    got = actual_value(parse_requirement(text), ev.report, ev.threshold, positive)
    assert got == pytest.approx(expected(ev.report))  # type: ignore[operator]
    met = by_id(ev)["requirement_met"]
    assert met.severity == "info" and met.details["actual"] == pytest.approx(got)


def test_gate_values_match_scikit_learn() -> None:
    ev = evaluate(THREE, EvalOptions())
    y_true, y_pred = list(THREE.y_true), list(THREE.y_pred)
    for text, want in [
        ("recall(b)>=0", skm.recall_score(y_true, y_pred, labels=["b"], average="macro")),
        ("recall>=0", skm.recall_score(y_true, y_pred, average="macro")),
        ("mcc>=0", skm.matthews_corrcoef(y_true, y_pred)),
        ("macro_f1>=0", skm.f1_score(y_true, y_pred, average="macro")),
    ]:
        got = actual_value(parse_requirement(text), ev.report, None, None)
        assert got == pytest.approx(want), text


def test_auc_gate_uses_the_threshold_curves() -> None:
    preds = _scored()
    req = parse_requirement("auc>=0.99")
    ev = evaluate(preds, EvalOptions(positive="spam", requirements=(req,)))
    assert ev.threshold is not None
    auc = skm.roc_auc_score([t == "spam" for t in preds.y_true], preds.scores)
    assert actual_value(req, ev.report, ev.threshold, "spam") == pytest.approx(auc)
    failed = by_id(ev)["requirement_failed"]
    assert failed.details["actual"] == pytest.approx(auc) and auc < 0.99
    # another class than the analysed one, or no scores at all: not available, so failed
    assert actual_value(parse_requirement("auc(ham)>=0"), ev.report, ev.threshold,
                        "spam") is None
    no_scores = evaluate(BALANCED, EvalOptions(requirements=(parse_requirement("auc>=0.5"),)))
    assert "not available" in by_id(no_scores)["requirement_failed"].evidence
    assert no_scores.verdict == "not_ready"


def test_failed_gate_is_a_fail_finding_and_not_ready() -> None:
    ev = evaluate(BALANCED, EvalOptions(requirements=(parse_requirement("recall(spam)>=0.95"),
                                                      parse_requirement("precision>=0.8"))))
    found = [f for f in ev.findings if f.id.startswith("requirement_")]
    assert [(f.id, f.severity) for f in found] == [("requirement_failed", "fail"),
                                                   ("requirement_met", "info")]
    assert "0.9" in found[0].evidence and "recall(spam)" in found[0].evidence
    assert found[0].details == {"requirement": "recall(spam)>=0.95", "actual": 0.9}
    assert ev.verdict == "not_ready"


def test_gate_naming_an_unknown_label_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'fraud'"):
        evaluate(BALANCED, EvalOptions(requirements=(parse_requirement("recall(fraud)>=0.9"),)))
