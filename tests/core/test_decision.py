"""The overall verdict: one rule set over the sections, argued as reasons, most important
first."""

from __future__ import annotations

from ftlens.core.decision import decide
from ftlens.core.findings import Finding


def f(fid: str, severity: str = "fail", *, inconclusive: bool = False,
      title: str = "", evidence: str = "numbers") -> Finding:
    return Finding(fid, severity, title or fid.replace("_", " "), evidence,  # type: ignore[arg-type]
                   inconclusive=inconclusive)


MEETS = f("meets_bar", "info", evidence="accuracy 95.0 % on 761 examples")
LEAK = f("leakage", title="76 of 837 test inputs (9.1%) also in train")
INFLATED = f("leakage_inflates_metrics", "warn", title="the 76 test rows seen in training "
             "inflate recall(spam): 0.700 on all rows, 0.610 on the unseen")


def test_a_failing_evaluation_comes_first_then_the_leak_that_inflated_it() -> None:
    d = decide({"audit": [LEAK], "eval": [f("low_recall", title="spam recall 0.61 on the 761 "
                                            "unseen test rows is below 0.85"), INFLATED]})
    assert d.verdict == "not_ready"
    assert [r.finding for r in d.reasons] == ["low_recall"]
    assert d.sentence.startswith("not ready: spam recall 0.61 on the 761 unseen")


def test_leakage_the_evaluation_accounted_for_does_not_block_a_good_model() -> None:
    d = decide({"audit": [LEAK], "eval": [MEETS, INFLATED]})
    assert d.verdict == "ready" and d.reasons[0].finding == "meets_bar"


def test_leakage_the_evaluation_ignored_makes_it_inconclusive() -> None:
    d = decide({"audit": [LEAK], "eval": [MEETS]})
    assert d.verdict == "inconclusive"
    assert d.reasons[0].finding == "leakage" and "--train" in d.reasons[0].text


def test_without_an_evaluation_the_leak_blocks() -> None:
    assert decide({"audit": [LEAK]}).verdict == "not_ready"


def test_a_conclusive_evaluation_outweighs_the_curves_doubts() -> None:
    memorising = f("memorization", "warn", inconclusive=True)
    assert decide({"curves": [memorising], "eval": [MEETS]}).verdict == "ready"
    assert decide({"curves": [memorising]}).verdict == "inconclusive"
    thin = f("small_sample", "warn", inconclusive=True)
    d = decide({"curves": [memorising], "eval": [thin]})
    assert d.verdict == "inconclusive" and [r.finding for r in d.reasons] == [
        "small_sample", "memorization"]


def test_training_failures_block_even_a_good_score() -> None:
    d = decide({"curves": [f("loss_diverging")], "eval": [MEETS]})
    assert d.verdict == "not_ready" and d.reasons[0].section == "curves"


def test_blocking_reasons_come_before_doubts_in_section_order() -> None:
    d = decide({"audit": [f("format_error")], "curves": [f("overfitting")],
                "eval": [f("low_accuracy"), f("small_sample", "warn", inconclusive=True)]})
    assert [(r.verdict, r.section) for r in d.reasons] == [
        ("not_ready", "eval"), ("not_ready", "audit"), ("not_ready", "curves"),
        ("inconclusive", "eval")]


def test_warnings_alone_do_not_block_and_nothing_at_all_is_inconclusive() -> None:
    assert decide({"audit": [f("class_imbalance", "warn")]}).verdict == "ready"
    assert decide({}).verdict == "inconclusive"


def test_long_evidence_is_cut_at_a_clause() -> None:
    long = f("low_recall", evidence="; ".join(f"clause {i} with some words" for i in range(30)))
    text = decide({"eval": [long]}).reasons[0].text
    assert len(text) < 260 and text.endswith("…)")
