"""Threshold selection against a brute-force search, and the held-out trade-off analysis."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.model_selection import StratifiedKFold, train_test_split

from ftlens.core.evaluation import EvalOptions, Predictions, evaluate
from ftlens.core.threshold import Rule, at_threshold, choose, curves, table

RULES = [
    Rule("fbeta", beta=1.0),
    Rule("fbeta", beta=2.0),
    Rule("fbeta", beta=0.5),
    Rule("target_recall", target=0.8),
    Rule("target_recall", target=0.5),
    Rule("target_precision", target=0.7),
    Rule("target_precision", target=0.95),
    Rule("cost", cost_fp=1.0, cost_fn=5.0),
    Rule("cost", cost_fp=3.0, cost_fn=1.0),
]


def counts(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    pred = s >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    return tp, fp, int((~pred & (y == 1)).sum()), int((~pred & (y == 0)).sum())


def brute_force(y: np.ndarray, s: np.ndarray, rule: Rule) -> float | None:
    """Try every unique score; the best value, ties to the highest threshold; None if no
    threshold reaches the target."""
    found: list[tuple[float, float]] = []
    for thr in np.unique(s):
        tp, fp, fn, _ = counts(y, s, thr)
        p = tp / (tp + fp)
        r = tp / (tp + fn) if tp + fn else 0.0
        if rule.kind == "fbeta":
            b2 = rule.beta**2
            value = (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0
        elif rule.kind == "target_recall":
            if r < (rule.target or 0):
                continue
            value = p
        elif rule.kind == "target_precision":
            if p < (rule.target or 0):
                continue
            value = r
        else:
            value = -(rule.cost_fp * fp + rule.cost_fn * fn)
        found.append((value, float(thr)))
    if not found:
        return None
    best = max(v for v, _ in found)
    return max(thr for v, thr in found if v >= best - 1e-9)


@st.composite
def scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 40))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    grid = draw(st.booleans())  # a coarse grid gives many ties
    score = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]) if grid else st.floats(
        0, 1, allow_nan=False)
    s = np.array(draw(st.lists(score, min_size=n, max_size=n)), dtype=np.float64)
    return y, s


@settings(max_examples=100, deadline=None)
@given(scored(), st.sampled_from([0.3, 0.6, 0.9, 1.0]))
def test_choice_equals_brute_force_for_every_rule(case: tuple[np.ndarray, np.ndarray],
                                                  target: float) -> None:
    y, s = case
    t = table(y, s)
    rules = [*RULES, Rule("target_recall", target=target),
             Rule("target_precision", target=target)]
    for rule in rules:
        got = choose(t, rule)
        want = brute_force(y, s, rule)
        if want is None:
            assert got is None, rule
            continue
        assert got is not None, rule
        assert got.threshold == want, rule
        tp, fp, fn, tn = counts(y, s, want)
        assert (got.tp, got.fp, got.fn, got.tn) == (tp, fp, fn, tn), rule
        assert got.precision == pytest.approx(tp / (tp + fp)), rule
        assert got.recall == pytest.approx(tp / (tp + fn) if tp + fn else 0.0), rule
        assert got.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn)), rule
    # the operating point's metrics are scikit-learn's
    point = choose(t, Rule())
    assert point is not None
    pred = (s >= point.threshold).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert point.precision == pytest.approx(skm.precision_score(y, pred, zero_division=0))
        assert point.recall == pytest.approx(skm.recall_score(y, pred, zero_division=0))
        assert point.f1 == pytest.approx(skm.f1_score(y, pred, zero_division=0))


@pytest.mark.parametrize(("y", "s", "rule", "threshold"), [
    # max F1: 0.8 (P 1, R 2/3, F1 .8) beats 0.5 (P 3/5, R 1, F1 .75)
    ([1, 1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5], Rule(), 0.8),
    # F2 favours recall: 0.5 (F2 .882) beats 0.8 (F2 .714)
    ([1, 1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.5], Rule(beta=2.0), 0.5),
    # a tie in F1 (2/3 at 0.8 and at 0.1) goes to the highest threshold
    ([1, 0, 0, 1], [0.8, 0.5, 0.3, 0.1], Rule(), 0.8),
    # recall >= 0.75 first reached at 0.2
    ([1, 1, 0, 1, 0], [0.9, 0.6, 0.4, 0.2, 0.1], Rule("target_recall", target=0.75), 0.2),
    # precision >= 0.9: only 0.9 and 0.6 qualify; recall is higher at 0.6
    ([1, 1, 0, 1, 0], [0.9, 0.6, 0.4, 0.2, 0.1], Rule("target_precision", target=0.9), 0.6),
    # unreachable precision: the top-scored row is a negative and precision never reaches 0.9
    ([0, 1, 1], [0.9, 0.5, 0.4], Rule("target_precision", target=0.9), None),
    # no positives: recall can never reach a target
    ([0, 0, 0], [0.9, 0.5, 0.4], Rule("target_recall", target=0.5), None),
    # false negatives 10× as costly: cost 1 at 0.2 (one false alarm), 2 at 0.1, 10 at 0.6
    ([1, 1, 0, 1, 0], [0.9, 0.6, 0.4, 0.2, 0.1], Rule("cost", cost_fp=1, cost_fn=10), 0.2),
    # equal costs: one error at 0.6 and one at 0.2, a tie that goes to the higher threshold
    ([1, 1, 0, 1, 0], [0.9, 0.6, 0.4, 0.2, 0.1], Rule("cost"), 0.6),
    # false positives 10× as costly: cost 1 at 0.6, 2 at 0.9, 10 at 0.2
    ([1, 1, 0, 1, 0], [0.9, 0.6, 0.4, 0.2, 0.1], Rule("cost", cost_fp=10, cost_fn=1), 0.6),
])
def test_choice_by_hand(y: list[int], s: list[float], rule: Rule, threshold: float | None
                        ) -> None:
    got = choose(table(np.array(y), np.array(s)), rule)
    assert (None if got is None else got.threshold) == threshold
    assert brute_force(np.array(y), np.array(s), rule) == threshold


@pytest.mark.parametrize("seed", range(6))
def test_at_threshold_counts_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 2)
    t = table(y, s)
    for thr in [*np.unique(s), 0.5, 0.0, -1.0, 1.5, float(s.max()) + 1e-9, 0.333]:
        p = at_threshold(t, float(thr))
        assert p.threshold == thr
        assert (p.tp, p.fp, p.fn, p.tn) == counts(y, s, float(thr)), thr
        pos = p.tp + p.fp
        assert p.precision == pytest.approx(p.tp / pos if pos else 0.0)


def test_table_lists_every_unique_score_highest_first() -> None:
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.3, 0.3, 0.9, 0.1, 0.5, 0.9])
    t = table(y, s)
    np.testing.assert_array_equal(t.thresholds, [0.9, 0.5, 0.3, 0.1])
    np.testing.assert_array_equal(t.tp, [1, 1, 2, 3])
    np.testing.assert_array_equal(t.fp, [1, 2, 3, 3])
    assert (t.positives, t.negatives) == (3, 3)


@pytest.mark.parametrize(("y", "s"), [
    ([1, 1, 1, 1], [0.2, 0.5, 0.7, 0.9]),  # all positive
    ([0, 0, 0], [0.2, 0.5, 0.9]),  # all negative
    ([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]),  # all scores equal
    ([1], [0.7]),  # a single row
    ([0], [0.7]),
])
def test_degenerate_inputs_do_not_crash(y: list[int], s: list[float]) -> None:
    ya, sa = np.array(y), np.array(s)
    t = table(ya, sa)
    assert len(t.thresholds) == len(set(s))
    for rule in RULES:
        got = choose(t, rule)
        want = brute_force(ya, sa, rule)
        assert (None if got is None else got.threshold) == want, rule
    half = at_threshold(t, 0.5)
    assert (half.tp, half.fp, half.fn, half.tn) == counts(ya, sa, 0.5)
    c = curves(ya, sa)
    if len(set(y)) == 1:
        assert c.roc_auc is None and c.average_precision is None
    else:
        assert c.roc_auc == pytest.approx(0.5)


def test_curves_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    c = curves(y, s)
    assert c.roc_auc == pytest.approx(skm.roc_auc_score(y, s))
    assert c.average_precision == pytest.approx(skm.average_precision_score(y, s))
    prec, rec, _ = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(c.pr_precision, prec)
    np.testing.assert_allclose(c.pr_recall, rec)


def test_rule_descriptions() -> None:
    assert Rule().describe() == "max F1"
    assert Rule(beta=2).describe() == "max F2"
    assert "0.9" in Rule("target_recall", target=0.9).describe()
    assert "recall" in Rule("target_precision", target=0.9).describe()
    assert "5" in Rule("cost", cost_fp=1, cost_fn=5).describe()


# --- the trade-off analysis: tuning on one part, reporting on another --------------------------

def _binary(n: int, seed: int) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    s = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1).round(3)
    y_true = ["spam" if v else "ham" for v in y]
    y_pred = ["spam" if v >= 0.5 else "ham" for v in s]
    return y_true, y_pred, y, s


def _confusion_at(y: np.ndarray, s: np.ndarray, thr: float) -> list[list[int]]:
    """Rows/columns (ham, spam, unparseable) when spam is predicted for s >= thr."""
    tp, fp, fn, tn = counts(y, s, thr)
    return [[tn, fp, 0], [fn, tp, 0]]


def test_tuned_on_all_rows_warns_that_the_threshold_was_tuned_on_the_test_set() -> None:
    y_true, y_pred, y, s = _binary(200, 0)
    ev = evaluate(Predictions(y_true, y_pred, scores=s), EvalOptions(positive="spam"))
    th = ev.threshold
    assert th is not None
    assert th.held_out is False and th.n_reported == 200 and th.tuned_on == "all rows"
    assert th.chosen is not None and th.chosen.threshold == brute_force(y, s, Rule())
    assert th.report_chosen is not None
    np.testing.assert_array_equal(th.report_chosen.confusion,
                                  _confusion_at(y, s, th.chosen.threshold))
    np.testing.assert_array_equal(th.report_half.confusion, _confusion_at(y, s, 0.5))
    warned = [f for f in ev.findings if f.id == "threshold_tuned_on_test"]
    assert len(warned) == 1 and warned[0].severity == "warn"
    assert any(f.id == "threshold_choice" for f in ev.findings)


@pytest.mark.parametrize(("split", "seed"), [(0.5, 0), (0.3, 4)])
def test_tune_on_split_reports_on_the_other_rows(split: float, seed: int) -> None:
    n = 200
    y_true, y_pred, y, s = _binary(n, 1)
    ev = evaluate(Predictions(y_true, y_pred, scores=s),
                  EvalOptions(positive="spam", tune_split=split, seed=seed))
    th = ev.threshold
    assert th is not None and th.held_out is True
    tune, rep = train_test_split(np.arange(n), train_size=split, random_state=seed, stratify=y)
    assert not set(tune) & set(rep) and len(tune) + len(rep) == n
    assert th.n_reported == len(rep) == n - round(split * n)
    # chosen on the tuning rows only ...
    assert th.chosen is not None
    assert th.chosen.threshold == brute_force(y[tune], s[tune], Rule())
    # ... and judged on the other rows only
    assert th.report_chosen is not None and th.report_chosen.n == len(rep)
    np.testing.assert_array_equal(th.report_chosen.confusion,
                                  _confusion_at(y[rep], s[rep], th.chosen.threshold))
    np.testing.assert_array_equal(th.report_half.confusion, _confusion_at(y[rep], s[rep], 0.5))
    half = th.at_half
    assert (half.tp, half.fp, half.fn, half.tn) == counts(y[rep], s[rep], 0.5)
    assert not any(f.id == "threshold_tuned_on_test" for f in ev.findings)
    # the curves still use every row
    assert th.curves.roc_auc == pytest.approx(skm.roc_auc_score(y, s))


def test_tune_cv_gives_out_of_fold_metrics() -> None:
    n = 240
    y_true, y_pred, y, s = _binary(n, 2)
    ev = evaluate(Predictions(y_true, y_pred, scores=s),
                  EvalOptions(positive="spam", tune_cv=4, seed=7))
    th = ev.threshold
    assert th is not None
    assert th.held_out is True and th.n_reported == n and "4-fold" in th.tuned_on
    predicted = np.zeros(n, dtype=int)
    thresholds = set()
    for tune, held in StratifiedKFold(4, shuffle=True, random_state=7).split(s, y):
        thr = brute_force(y[tune], s[tune], Rule())
        assert thr is not None
        thresholds.add(thr)
        predicted[held] = s[held] >= thr
    assert th.report_chosen is not None
    expected = [[int(((y == 0) & (predicted == 0)).sum()), int(((y == 0) & (predicted == 1)).sum()),
                 0],
                [int(((y == 1) & (predicted == 0)).sum()), int(((y == 1) & (predicted == 1)).sum()),
                 0]]
    np.testing.assert_array_equal(th.report_chosen.confusion, expected)
    # the threshold to deploy is chosen on every row
    assert th.chosen is not None and th.chosen.threshold == brute_force(y, s, Rule())
    assert not any(f.id == "threshold_tuned_on_test" for f in ev.findings)


def test_multiclass_with_probs_thresholds_one_vs_rest() -> None:
    rng = np.random.default_rng(5)
    labels = ("a", "b", "c")
    n = 150
    true = rng.integers(0, 3, n)
    probs = rng.dirichlet([1, 1, 1], n)
    probs[np.arange(n), true] += 0.5
    probs /= probs.sum(axis=1, keepdims=True)
    preds = Predictions([labels[i] for i in true], [labels[i] for i in probs.argmax(axis=1)],
                        probs=probs, prob_labels=labels)
    ev = evaluate(preds, EvalOptions(positive="b"))
    th = ev.threshold
    assert th is not None and th.positive == "b"
    y = (true == 1).astype(int)
    s = probs[:, 1]
    np.testing.assert_array_equal(th.scores, s)
    np.testing.assert_array_equal(th.is_positive, y)
    assert th.chosen is not None and th.chosen.threshold == brute_force(y, s, Rule())

    def expected(thr: float) -> np.ndarray:
        others = probs.copy()
        others[:, 1] = -np.inf
        pred = np.where(s >= thr, 1, others.argmax(axis=1))
        return skm.confusion_matrix(true, pred, labels=[0, 1, 2, 3])[:3]

    assert th.report_chosen is not None
    np.testing.assert_array_equal(th.report_chosen.confusion, expected(th.chosen.threshold))
    np.testing.assert_array_equal(th.report_half.confusion, expected(0.5))
    assert th.report_half.n_unparseable == 0


def test_no_threshold_analysis_without_scores_or_with_rule_none() -> None:
    y_true, y_pred, _, s = _binary(60, 3)
    assert evaluate(Predictions(y_true, y_pred)).threshold is None
    assert evaluate(Predictions(y_true, y_pred, scores=s),
                    EvalOptions(rule=None)).threshold is None
    # two classes: the rarer one is the default positive class
    ev = evaluate(Predictions(y_true, y_pred, scores=s))
    assert ev.positive == "spam" and ev.threshold is not None
