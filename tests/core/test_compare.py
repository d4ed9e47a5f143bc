"""Comparing two models on the same items: exact McNemar, paired bootstrap, sample size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from ftlens.core.compare import compare, needed_sample_size
from ftlens.core.evaluation import EvalOptions, Predictions, evaluate

LABELS = ("ham", "spam")
Z_ALPHA = 1.959963984540054  # two-sided 5 %
Z_POWER = 0.8416212335729143  # 80 % power


def _models(n: int, acc_c: float, acc_b: float, seed: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True codes and two models right with the given probabilities (wrong: the other label,
    sometimes unparseable)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 2, n)

    def model(acc: float) -> np.ndarray:
        wrong = np.where(rng.random(n) < 0.2, 2, 1 - true)
        return np.where(rng.random(n) < acc, true, wrong)

    return true, model(acc_c), model(acc_b)


@pytest.mark.parametrize(("n", "acc_c", "acc_b", "seed"), [
    (50, 0.8, 0.7, 0), (200, 0.9, 0.85, 1), (31, 0.5, 0.5, 2), (400, 0.7, 0.9, 3),
    (12, 1.0, 0.5, 4),
])
def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs(
        n: int, acc_c: float, acc_b: float, seed: int) -> None:
    true, cand, base = _models(n, acc_c, acc_b, seed)
    cmp = compare(true, cand, base, LABELS, n_boot=200, seed=0)
    ok_c, ok_b = cand == true, base == true
    b, c = int((ok_c & ~ok_b).sum()), int((~ok_c & ok_b).sum())
    assert (cmp.only_candidate, cmp.only_baseline) == (b, c)
    assert cmp.both_correct == int((ok_c & ok_b).sum())
    assert cmp.both_wrong == int((~ok_c & ~ok_b).sum())
    assert cmp.n == n == cmp.both_correct + cmp.both_wrong + b + c
    want = binomtest(b, b + c, 0.5, alternative="two-sided").pvalue if b + c else 1.0
    assert cmp.mcnemar_p == pytest.approx(want, rel=1e-12)
    acc = cmp.difference("accuracy")
    assert acc.estimate == pytest.approx(ok_c.mean() - ok_b.mean())
    assert acc.interval.low <= acc.estimate <= acc.interval.high
    for i, label in enumerate(LABELS):
        rec = cmp.difference(f"recall({label})")
        rows = true == i
        assert rec.estimate == pytest.approx((cand[rows] == i).mean() - (base[rows] == i).mean())


def test_identical_predictions() -> None:
    true, cand, _ = _models(120, 0.8, 0.8, 5)
    cmp = compare(true, cand, cand.copy(), LABELS, n_boot=300, seed=1)
    assert cmp.mcnemar_p == 1.0
    assert cmp.only_candidate == cmp.only_baseline == 0
    assert cmp.needed_n is None
    for d in cmp.differences:
        assert d.estimate == 0.0
        assert (d.interval.low, d.interval.high) == (0.0, 0.0)
        assert not d.significant


def _preds(true: np.ndarray, pred: np.ndarray) -> Predictions:
    names = (*LABELS, "maybe")
    return Predictions([LABELS[i] for i in true], [names[i] for i in pred])


def test_identical_models_give_no_significant_gain() -> None:
    true, cand, _ = _models(150, 0.85, 0.85, 6)
    ev = evaluate(_preds(true, cand), EvalOptions(rule=None), baseline=_preds(true, cand))
    assert ev.comparison is not None and ev.comparison.needed_n is None
    found = [f for f in ev.findings if f.id == "no_significant_gain"]
    assert len(found) == 1 and found[0].severity == "warn"
    assert "p = 1" in found[0].evidence
    assert "would detect" not in found[0].evidence  # no difference, no sample size to quote


def test_a_clearly_better_candidate_is_a_significant_gain() -> None:
    true, cand, base = _models(300, 0.92, 0.6, 7)
    ev = evaluate(_preds(true, cand), EvalOptions(rule=None), baseline=_preds(true, base))
    cmp = ev.comparison
    assert cmp is not None and cmp.mcnemar_p < 1e-6
    assert cmp.difference("accuracy").interval.low > 0
    ids = {f.id: f for f in ev.findings}
    assert ids["significant_gain"].severity == "info"
    assert "no_significant_gain" not in ids and "worse_than_baseline" not in ids


def test_a_clearly_worse_candidate_fails() -> None:
    true, cand, base = _models(300, 0.6, 0.92, 8)
    ev = evaluate(_preds(true, cand), EvalOptions(rule=None), baseline=_preds(true, base))
    assert ev.comparison is not None and ev.comparison.difference("accuracy").interval.high < 0
    worse = [f for f in ev.findings if f.id == "worse_than_baseline"]
    assert len(worse) == 1 and worse[0].severity == "fail"
    assert ev.verdict == "not_ready"


def test_small_difference_is_not_significant_and_quotes_the_needed_sample_size() -> None:
    true, cand, base = _models(60, 0.8, 0.75, 9)
    ev = evaluate(_preds(true, cand), EvalOptions(rule=None), baseline=_preds(true, base))
    cmp = ev.comparison
    assert cmp is not None
    assert cmp.difference("accuracy").interval.low <= 0 <= cmp.difference("accuracy").interval.high
    found = next(f for f in ev.findings if f.id == "no_significant_gain")
    assert cmp.needed_n == needed_sample_size(cmp.only_candidate / 60, cmp.only_baseline / 60)
    assert cmp.needed_n is not None and cmp.needed_n > 60
    assert f"{cmp.needed_n:,}" in found.evidence


def test_baseline_with_other_true_labels_is_rejected() -> None:
    with pytest.raises(ValueError, match="true labels differ"):
        evaluate(Predictions(["a", "b"], ["a", "b"]), EvalOptions(rule=None),
                 baseline=Predictions(["b", "a"], ["a", "b"]))


def _connor(p10: float, p01: float) -> float:
    delta, psi = p10 - p01, p10 + p01
    return (Z_ALPHA * math.sqrt(psi) + Z_POWER * math.sqrt(psi - delta**2)) ** 2 / delta**2


def test_needed_sample_size_matches_connor_by_hand() -> None:
    # p10 0.2, p01 0.1: (1.96·√0.3 + 0.8416·√0.29)² / 0.01 = 233.09… → 234
    assert _connor(0.2, 0.1) == pytest.approx(233.09, abs=0.01)
    assert needed_sample_size(0.2, 0.1) == 234
    assert needed_sample_size(0.1, 0.2) == 234  # a loss is as hard to detect as a gain
    for p10, p01 in [(0.05, 0.02), (0.3, 0.1), (0.12, 0.11)]:
        assert needed_sample_size(p10, p01) == math.ceil(_connor(p10, p01))


def test_needed_sample_size_grows_as_the_difference_shrinks() -> None:
    sizes = [needed_sample_size(0.1 + d, 0.1) for d in (0.2, 0.1, 0.05, 0.02, 0.01)]
    assert all(s is not None for s in sizes)
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)  # type: ignore[type-var]
    assert needed_sample_size(0.1, 0.1) is None
    assert needed_sample_size(0.0, 0.0) is None
