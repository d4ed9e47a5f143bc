"""Bootstrap: vectorised metrics equal scikit-learn's, resampling is stratified and seeded, and
the 95 % intervals cover the true value about 95 % of the time."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from ftlens.core.bootstrap import (
    interval,
    intervals,
    metrics_of,
    paired_confusions,
    stratified_confusions,
)
from ftlens.core.evaluation import EvalOptions, Predictions, evaluate


def _random_confusion(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(2, 5))
    c = rng.integers(0, 25, size=(k, k + 1))
    c[rng.random((k, k + 1)) < 0.3] = 0  # sparse: classes never predicted, empty rows
    if c.sum() == 0:
        c[0, 0] = 1
    return c


HAND = [
    np.array([[5, 0, 0], [0, 0, 0]]),  # one class only, always right
    np.array([[0, 0, 4], [0, 0, 3]]),  # every answer unparseable
    np.array([[3, 2, 0], [0, 0, 0]]),  # a class predicted but never true
    np.array([[1, 0, 0, 0], [0, 0, 0, 2], [0, 5, 0, 1]]),
]


def _rows(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.repeat(np.arange(c.shape[0]), c.sum(axis=1))
    pred = np.concatenate([np.repeat(np.arange(c.shape[1]), row) for row in c])
    return true, pred


@pytest.mark.parametrize("case", [*range(40), *(f"hand{i}" for i in range(len(HAND)))])
def test_metrics_of_equals_scikit_learn(case: int | str) -> None:
    c = HAND[int(case[4:])] if isinstance(case, str) else _random_confusion(
        np.random.default_rng(case))
    k = c.shape[0]
    m = metrics_of(c[None])
    true, pred = _rows(c)
    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            true, pred, labels=labels, zero_division=0)
        macro_f1 = skm.f1_score(true, pred, labels=labels, average="macro", zero_division=0)
        mcc = skm.matthews_corrcoef(true, pred)
    np.testing.assert_allclose(m.precision[0], prec, atol=1e-12)
    np.testing.assert_allclose(m.recall[0], rec, atol=1e-12)
    np.testing.assert_allclose(m.f1[0], f1, atol=1e-12)
    assert m.accuracy[0] == pytest.approx(skm.accuracy_score(true, pred))
    assert m.macro_f1[0] == pytest.approx(macro_f1)
    assert m.mcc[0] == pytest.approx(mcc, abs=1e-12)


def test_metrics_of_is_vectorised_over_a_stack() -> None:
    rng = np.random.default_rng(3)
    stack = np.stack([rng.integers(0, 20, size=(3, 4)) for _ in range(25)])
    together = metrics_of(stack)
    for b in range(len(stack)):
        alone = metrics_of(stack[b : b + 1])
        np.testing.assert_allclose(together.f1[b], alone.f1[0])
        assert together.mcc[b] == pytest.approx(alone.mcc[0])
        assert together.accuracy[b] == pytest.approx(alone.accuracy[0])
    assert together.precision.shape == (25, 3)
    assert together.macro_f1.shape == (25,)


def test_stratified_resamples_keep_row_sums_and_look_like_the_data() -> None:
    c = np.array([[70, 20, 10], [5, 90, 5]])
    boot = stratified_confusions(c, 2000, seed=11)
    assert boot.shape == (2000, 2, 3)
    np.testing.assert_array_equal(boot.sum(axis=2), np.broadcast_to(c.sum(axis=1), (2000, 2)))
    # each row is a multinomial draw from its own proportions
    mean = boot.mean(axis=0) / c.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mean, c / c.sum(axis=1, keepdims=True), atol=0.01)
    assert boot[:, 0, 0].std() == pytest.approx(np.sqrt(100 * 0.7 * 0.3), rel=0.1)


def test_stratified_resampling_is_seeded() -> None:
    c = np.array([[30, 10, 2], [8, 40, 0]])
    a = stratified_confusions(c, 200, seed=5)
    np.testing.assert_array_equal(a, stratified_confusions(c, 200, seed=5))
    assert not np.array_equal(a, stratified_confusions(c, 200, seed=6))


def test_stratified_resampling_of_an_empty_row_stays_empty() -> None:
    c = np.array([[0, 0, 0], [3, 4, 1]])
    boot = stratified_confusions(c, 50, seed=0)
    assert (boot[:, 0] == 0).all()
    assert (boot[:, 1].sum(axis=1) == 8).all()


def test_paired_resamples_keep_marginals_and_pairing() -> None:
    joint = np.zeros((2, 3, 3), dtype=np.int64)
    joint[0] = [[40, 5, 0], [10, 3, 0], [0, 0, 2]]
    joint[1] = [[4, 6, 0], [1, 30, 1], [0, 0, 0]]
    a, b = paired_confusions(joint, 500, seed=1)
    rows = joint.sum(axis=(1, 2))
    np.testing.assert_array_equal(a.sum(axis=2), np.broadcast_to(rows, (500, 2)))
    np.testing.assert_array_equal(b.sum(axis=2), np.broadcast_to(rows, (500, 2)))
    # identical models: the same items in every resample, so identical confusion matrices
    same = np.zeros_like(joint)
    for i in range(2):
        same[i] = np.diag(joint[i].sum(axis=1))
    a, b = paired_confusions(same, 300, seed=2)
    np.testing.assert_array_equal(a, b)


def test_percentile_intervals() -> None:
    samples = np.arange(1001) / 1000
    got = interval(samples)
    assert (got.low, got.high) == pytest.approx((0.025, 0.975))
    two = intervals(np.stack([samples, 2 * samples], axis=1), confidence=0.9)
    assert (two[1].low, two[1].high) == pytest.approx((0.1, 1.9))


def test_evaluate_uses_these_bootstrap_intervals() -> None:
    y_true = ["pos"] * 40 + ["neg"] * 160
    y_pred = ["pos"] * 30 + ["neg"] * 10 + ["pos"] * 12 + ["neg"] * 148
    ev = evaluate(Predictions(y_true, y_pred), EvalOptions(n_boot=700, seed=9, rule=None))
    boot = metrics_of(stratified_confusions(ev.report.confusion, 700, 9))
    assert ev.intervals.recall == tuple(intervals(boot.recall))
    assert ev.intervals.precision == tuple(intervals(boot.precision))
    assert ev.intervals.mcc == interval(boot.mcc)
    assert ev.intervals.macro_f1 == interval(boot.macro_f1)


# --- coverage ---------------------------------------------------------------------------------

POSITIVES, NEGATIVES = 200, 800
DATASETS, RESAMPLES = 400, 1000


@pytest.mark.parametrize(("tpr", "fpr", "seed"), [(0.8, 0.05, 1), (0.7, 0.03, 2)])
def test_bootstrap_intervals_cover_the_true_value_at_the_nominal_rate(
        tpr: float, fpr: float, seed: int) -> None:
    """A population where a positive is flagged with probability ``tpr`` and a negative with
    ``fpr``; class sizes are fixed, so the true recall is ``tpr`` and the true precision is
    ``tpr·P / (tpr·P + fpr·N)``."""
    true_recall = tpr
    true_precision = tpr * POSITIVES / (tpr * POSITIVES + fpr * NEGATIVES)
    rng = np.random.default_rng(seed)
    covered_recall = covered_precision = 0
    for d in range(DATASETS):
        tp = rng.binomial(POSITIVES, tpr)
        fp = rng.binomial(NEGATIVES, fpr)
        # rows: pos, neg; columns: pos, neg, unparseable
        c = np.array([[tp, POSITIVES - tp, 0], [fp, NEGATIVES - fp, 0]])
        boot = metrics_of(stratified_confusions(c, RESAMPLES, seed=seed * 10_000 + d))
        rec, prec = interval(boot.recall[:, 0]), interval(boot.precision[:, 0])
        covered_recall += rec.low <= true_recall <= rec.high
        covered_precision += prec.low <= true_precision <= prec.high
    assert abs(covered_recall / DATASETS - 0.95) <= 0.03
    assert abs(covered_precision / DATASETS - 0.95) <= 0.03


def test_a_too_narrow_interval_would_fail_the_coverage_check() -> None:
    """The coverage check can fail: 50 % intervals cover far less often than 95 %."""
    rng = np.random.default_rng(4)
    covered = 0
    for d in range(200):
        tp = rng.binomial(POSITIVES, 0.8)
        c = np.array([[tp, POSITIVES - tp, 0], [40, NEGATIVES - 40, 0]])
        boot = metrics_of(stratified_confusions(c, 500, seed=d))
        r = interval(boot.recall[:, 0], confidence=0.5)
        covered += r.low <= 0.8 <= r.high
    assert abs(covered / 200 - 0.95) > 0.03
    assert abs(covered / 200 - 0.5) < 0.1
