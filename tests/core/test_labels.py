"""Label balance: the final assistant answer as the class."""

from __future__ import annotations

import pytest

from ftlens.core.labels import label_report, looks_like_classification

BROKEN = {"train": {"ham": 15, "spam": 7, "phishing": 2},
          "test": {"ham": 7, "spam": 4, "scam": 1}}


def test_label_report_on_the_broken_fixture_counts() -> None:
    r = label_report(BROKEN)
    assert r is not None
    assert r.labels == ("ham", "spam", "phishing", "scam")
    assert r.majority == "ham"
    assert r.imbalance_ratio == pytest.approx(15 / 2)
    assert r.baseline_accuracy == {"train": pytest.approx(15 / 24), "test": pytest.approx(7 / 12)}
    assert r.rare == (("phishing", 2), ("spam", 7))
    assert dict(r.unseen) == {"test": ("scam",)}
    assert r.counts == BROKEN


@pytest.mark.parametrize(("train", "ratio", "baseline"), [
    ({"a": 50, "b": 50}, 1.0, 0.5),
    ({"a": 80, "b": 20}, 4.0, 0.8),
    ({"a": 90, "b": 9, "c": 1}, 90.0, 0.9),
    ({"x": 30, "y": 20, "z": 10}, 3.0, 0.5),
])
def test_imbalance_ratio_and_baseline(train: dict[str, int], ratio: float,
                                      baseline: float) -> None:
    r = label_report({"train": train})
    assert r is not None
    assert r.imbalance_ratio == pytest.approx(ratio)
    assert r.baseline_accuracy["train"] == pytest.approx(baseline)
    assert r.majority == max(train, key=train.__getitem__)


def test_baseline_on_held_out_uses_the_train_majority() -> None:
    # test is dominated by 'spam', but the majority-class baseline answers train's majority
    r = label_report({"train": {"ham": 30, "spam": 10}, "test": {"ham": 2, "spam": 8}})
    assert r is not None
    assert r.majority == "ham"
    assert r.baseline_accuracy["test"] == pytest.approx(0.2)


@pytest.mark.parametrize(("train", "rare"), [
    ({"a": 100, "b": 10}, ()),
    ({"a": 100, "b": 9}, (("b", 9),)),
    ({"a": 100, "b": 3, "c": 1, "d": 3}, (("c", 1), ("b", 3), ("d", 3))),
])
def test_rare_classes_sorted_by_count(train: dict[str, int], rare: tuple) -> None:
    r = label_report({"train": train})
    assert r is not None
    assert r.rare == rare


def test_unseen_labels_per_split() -> None:
    r = label_report({"train": {"a": 20, "b": 20}, "valid": {"a": 5, "z": 1, "c": 2},
                      "test": {"a": 3, "b": 3}})
    assert r is not None
    assert dict(r.unseen) == {"valid": ("c", "z")}  # sorted, and only splits with any


def test_label_order_ties() -> None:
    r = label_report({"train": {"b": 5, "a": 5, "c": 1}, "test": {"c": 10}})
    assert r is not None
    assert r.labels == ("a", "b", "c")  # train count desc, then total desc, then name


@pytest.mark.parametrize("per_split", [
    # free-text answers: every answer is different
    {"train": {f"The answer to question {i} is a long sentence.": 1 for i in range(40)}},
    # few classes, but the answers are long paragraphs
    {"train": {"x" * 80: 20, "y" * 80: 20}},
    # a single class
    {"train": {"ham": 40}},
    # nothing in train
    {"train": {}, "test": {"a": 5, "b": 5}},
    {"test": {"a": 5, "b": 5}},
    {},
])
def test_label_report_none_when_not_classification(per_split: dict) -> None:
    assert label_report(per_split) is None


def test_looks_like_classification() -> None:
    assert looks_like_classification({"spam": 40, "ham": 60}, 100)
    assert not looks_like_classification({"spam": 40}, 40)
    assert not looks_like_classification({}, 0)
    # 10 distinct answers in 20 examples: too many distinct values for the size
    assert not looks_like_classification({str(i): 2 for i in range(10)}, 20)
    assert looks_like_classification({str(i): 10 for i in range(10)}, 100)
