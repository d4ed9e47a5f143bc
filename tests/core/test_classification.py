"""Classification metrics: every number cross-checked against scikit-learn on the raw rows.

Unparseable predictions (outside the label set) are one extra class in scikit-learn's view: the
reference maps every one of them to a single sentinel before calling scikit-learn.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from ftlens.core.classification import (
    UNPARSEABLE,
    Interval,
    classification_metrics,
    encode,
    report_from_confusion,
    wilson,
)

POOL = ("spam", "ham", "fraud", "legit", "urgent")
OUTSIDE = ("maybe", "n/a", "", "I think spam", "spam!")
SENTINEL = "\x00unparseable\x00"  # cannot collide with a label in POOL
Z95 = 1.959963984540054


@st.composite
def labelled_rows(draw: st.DrawFn) -> tuple[tuple[str, ...] | None, list[str], list[str]]:
    """(explicit label set or None, true labels, predictions), predictions sometimes outside."""
    k = draw(st.integers(2, 5))
    labels = tuple(draw(st.permutations(POOL))[:k])
    n = draw(st.integers(1, 60))
    y_true = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    outside_rate = draw(st.sampled_from([0.0, 0.1, 0.5]))
    y_pred = [
        draw(st.sampled_from(OUTSIDE)) if draw(st.floats(0, 1)) < outside_rate
        else draw(st.sampled_from(labels))
        for _ in range(n)
    ]
    explicit = draw(st.booleans())
    return (labels if explicit else None), y_true, y_pred


def _collapse(y_pred: Sequence[str], names: Sequence[str]) -> list[str]:
    return [p if p in names else SENTINEL for p in y_pred]


@settings(max_examples=100, deadline=None)
@given(labelled_rows())
def test_every_metric_equals_scikit_learn(
        case: tuple[tuple[str, ...] | None, list[str], list[str]]) -> None:
    labels, y_true, y_pred = case
    r = classification_metrics(y_true, y_pred, labels=labels)
    names = labels if labels is not None else tuple(sorted(set(y_true)))
    k = len(names)
    ref = _collapse(y_pred, names)
    n = len(y_true)
    assert r.labels == names
    assert r.n == n

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = skm.confusion_matrix(y_true, ref, labels=[*names, SENTINEL])
        accuracy = skm.accuracy_score(y_true, y_pred)
        balanced = skm.balanced_accuracy_score(y_true, y_pred)
        mcc = skm.matthews_corrcoef(y_true, ref)
        kappa = skm.cohen_kappa_score(y_true, ref)
        prec, rec, f1, support = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=list(names), zero_division=0)
        avgs = {avg: skm.precision_recall_fscore_support(
            y_true, y_pred, labels=list(names), average=avg, zero_division=0)[:3]
            for avg in ("micro", "macro", "weighted")}

    # confusion: rows are the true labels, one extra unparseable column, no row ever dropped
    assert r.confusion.shape == (k, k + 1)
    np.testing.assert_array_equal(r.confusion, cm[:k])
    assert cm[k].sum() == 0  # the sentinel is never a true label
    assert int(r.confusion.sum()) == n
    n_outside = sum(p not in names for p in y_pred)
    assert r.n_unparseable == n_outside == int(r.confusion[:, k].sum())

    approx = {"rel": 1e-9, "abs": 1e-12}
    assert r.accuracy == pytest.approx(accuracy, **approx)
    assert r.balanced_accuracy == pytest.approx(balanced, **approx)
    assert r.mcc == pytest.approx(mcc, **approx)
    # an undefined kappa (e.g. one class everywhere) follows the 0 policy
    assert r.kappa == pytest.approx(0.0 if math.isnan(kappa) else kappa, **approx)
    for i, c in enumerate(r.per_class):
        assert c.label == names[i]
        assert c.precision == pytest.approx(prec[i], **approx)
        assert c.recall == pytest.approx(rec[i], **approx)
        assert c.f1 == pytest.approx(f1[i], **approx)
        assert c.support == support[i]
        assert c.predicted == sum(p == names[i] for p in y_pred)
    for avg, got in (("micro", r.micro), ("macro", r.macro), ("weighted", r.weighted)):
        assert (got.precision, got.recall, got.f1) == pytest.approx(avgs[avg], **approx), avg
    # macro-F1 is the mean of the per-class F1 values
    assert r.macro.f1 == pytest.approx(float(np.mean([c.f1 for c in r.per_class])), **approx)
    counts = {lab: y_true.count(lab) for lab in names}
    assert r.majority_accuracy == pytest.approx(max(counts.values()) / n)
    assert counts[r.majority_label] == max(counts.values())


def test_macro_f1_is_mean_of_f1_not_f1_of_macro_precision_and_recall() -> None:
    # class a: 1 of 10 found, never a false alarm (P 1.0, R 0.1);
    # class b: all 10 found, 9 false alarms (P 10/19, R 1.0)
    y_true = ["a"] * 10 + ["b"] * 10
    y_pred = ["a"] + ["b"] * 9 + ["b"] * 10
    r = classification_metrics(y_true, y_pred)
    f1_a, f1_b = 2 * 1.0 * 0.1 / 1.1, 20 / 29
    assert r.of("a").f1 == pytest.approx(f1_a)
    assert r.of("b").f1 == pytest.approx(f1_b)
    assert r.macro.f1 == pytest.approx((f1_a + f1_b) / 2)
    assert r.macro.f1 == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    harmonic = 2 * r.macro.precision * r.macro.recall / (r.macro.precision + r.macro.recall)
    assert r.macro.precision == pytest.approx((1 + 10 / 19) / 2)
    assert r.macro.recall == pytest.approx(0.55)
    assert harmonic - r.macro.f1 > 0.15  # 0.639 vs 0.436: the common mistake is far off


@pytest.mark.parametrize(("labels", "y_true", "y_pred", "confusion"), [
    # case and surrounding spaces do not matter when unambiguous
    (("ham", "spam"), ["spam", "spam", "ham", "ham"], ["Spam", " SPAM ", "HAM", "ham"],
     [[2, 0, 0], [0, 2, 0]]),
    # the true labels are matched the same way
    (("ham", "spam"), ["Spam", "spam", "HAM"], ["spam", "spam", "ham"],
     [[1, 0, 0], [0, 2, 0]]),
    # two labels differing only in case: an exact answer counts, a third variant is ambiguous
    (("Spam", "spam", "ham"), ["Spam", "spam", "spam", "ham"], ["Spam", "spam", "SPAM", "Ham"],
     [[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]]),
    # anything else is unparseable, including the empty answer and a sentence around a label
    (("ham", "spam"), ["spam", "spam", "ham"], ["", "it is spam", "maybe"],
     [[0, 0, 1], [0, 0, 2]]),
])
def test_case_insensitive_matching(labels: tuple[str, ...], y_true: list[str],
                                   y_pred: list[str], confusion: list[list[int]]) -> None:
    r = classification_metrics(y_true, y_pred, labels=labels)
    assert r.labels == labels
    np.testing.assert_array_equal(r.confusion, confusion)
    assert r.n_unparseable == sum(row[-1] for row in confusion)


def test_encode_codes_and_default_labels() -> None:
    names, t, p = encode(["b", "a", "b"], ["B", "zzz", "a"])
    assert names == ("a", "b")
    np.testing.assert_array_equal(t, [1, 0, 1])
    np.testing.assert_array_equal(p, [1, 2, 0])


def test_true_label_outside_the_label_set_is_an_error() -> None:
    with pytest.raises(ValueError, match="fraud"):
        classification_metrics(["spam", "fraud"], ["spam", "spam"], labels=["spam", "ham"])


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 true labels but 3 predictions"):
        classification_metrics(["a", "b"], ["a", "b", "a"])


def test_labels_never_seen_still_get_a_row_and_column() -> None:
    r = classification_metrics(["a", "a", "b"], ["a", "c", "maybe"], labels=["a", "b", "c"])
    assert r.confusion.shape == (3, 4)
    np.testing.assert_array_equal(r.confusion, [[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert r.of("c").support == 0
    assert r.of("c").precision == 0.0  # one false alarm, zero_division does not apply
    assert r.of("c").recall == 0.0  # no support: zero_division=0
    assert r.of("b").precision == 0.0  # never predicted: zero_division=0


def _wilson_by_hand(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (45, 50), (1, 1), (12, 12),
                                      (500, 1000), (3, 250)])
def test_wilson_matches_the_formula(k: int, n: int) -> None:
    got = wilson(k, n)
    low, high = _wilson_by_hand(k, n)
    assert got.low == pytest.approx(max(0.0, low), abs=1e-12)
    assert got.high == pytest.approx(min(1.0, high), abs=1e-12)
    assert got.half_width == pytest.approx((got.high - got.low) / 2)


def test_wilson_other_confidence_and_no_trials() -> None:
    got = wilson(30, 40, confidence=0.9)
    low, high = _wilson_by_hand(30, 40, z=1.6448536269514722)
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
    assert wilson(0, 0) == Interval(0.0, 1.0)


def test_report_intervals_are_wilson_over_support_and_predictions() -> None:
    y_true = ["spam"] * 20 + ["ham"] * 30
    y_pred = ["spam"] * 15 + ["ham"] * 5 + ["spam"] * 3 + ["ham"] * 25 + ["what"] * 2
    r = classification_metrics(y_true, y_pred)
    spam = r.of("spam")
    assert (spam.support, spam.predicted) == (20, 18)
    assert spam.recall_ci == wilson(15, 20)
    assert spam.precision_ci == wilson(15, 18)
    assert (spam.recall_ci.low, spam.recall_ci.high) == pytest.approx(_wilson_by_hand(15, 20))
    assert r.accuracy_ci == wilson(40, 50)
    assert r.accuracy == pytest.approx(0.8)


def test_report_from_confusion_equals_report_from_rows() -> None:
    rng = np.random.default_rng(7)
    names = ("a", "b", "c")
    y_true = list(rng.choice(names, 300))
    y_pred = list(rng.choice([*names, "junk"], 300, p=[0.3, 0.3, 0.3, 0.1]))
    r = classification_metrics(y_true, y_pred)
    again = report_from_confusion(r.confusion, names)
    assert again.accuracy == r.accuracy
    assert again.mcc == pytest.approx(r.mcc)
    assert again.per_class == r.per_class


def test_unparseable_is_the_column_name() -> None:
    assert UNPARSEABLE == "unparseable"
