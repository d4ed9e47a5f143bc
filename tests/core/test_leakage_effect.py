"""Leakage-aware evaluation on data with known truth: a planted leak inflates every headline
metric by a known amount, the verdict is taken on the unseen rows, and which rows count as
seen follows the audit's own rules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from ftlens.core.evaluation import EvalOptions, Predictions, evaluate
from ftlens.core.seen import SeenRows, find_seen


@dataclass(frozen=True)
class View:
    input_text: str
    near_text: str


def _view(text: str) -> View:
    return View(f"user: {text}", text)


def planted() -> tuple[Predictions, SeenRows]:
    """40 seen rows, all right (memorised); 60 unseen rows, 80 % right in both classes.
    All rows: accuracy, spam recall and spam precision 0.88; unseen rows: 0.80."""
    truth = ["spam"] * 20 + ["ham"] * 20 + ["spam"] * 30 + ["ham"] * 30
    pred = (["spam"] * 20 + ["ham"] * 20 + ["spam"] * 24 + ["ham"] * 6 + ["ham"] * 24
            + ["spam"] * 6)
    seen = SeenRows(tuple(["train"] * 40 + [None] * 60), tuple([None] * 100))
    return Predictions(truth, pred), seen


OPTIONS = EvalOptions(positive="spam", min_score=0.85, rule=None, n_boot=500)


def test_a_planted_leak_inflates_by_the_known_amount_and_the_unseen_verdict_stands() -> None:
    preds, seen = planted()
    ev = evaluate(preds, OPTIONS, seen=seen)
    alone = evaluate(preds, OPTIONS)
    assert alone.verdict == "ready"  # what the leaked rows make it look like
    assert ev.report.n == 60 and ev.report.accuracy == pytest.approx(0.8)
    assert ev.leakage is not None and ev.leakage.all_verdict == "ready"
    assert ev.verdict == "not_ready"  # taken on the unseen rows
    shifts = {s.name: s for s in ev.leakage.shifts}
    for name in ("accuracy", "recall(spam)", "precision(spam)"):
        assert shifts[name].all_rows == pytest.approx(0.88)
        assert shifts[name].unseen == pytest.approx(0.80)
        assert shifts[name].diff == pytest.approx(0.08)
        assert shifts[name].ci.low <= 0.08 <= shifts[name].ci.high
    finding = next(f for f in ev.findings if f.id == "leakage_inflates_metrics")
    assert finding.severity == "fail"  # the verdict differs between all and unseen rows
    assert finding.details["seen_rows"] == 40 and finding.details["unseen_rows"] == 60
    assert "40 test rows seen in training inflate" in finding.title
    assert "on all rows the verdict would be ready, on the unseen rows it is not_ready" in (
        finding.evidence)


def test_a_leak_that_changes_no_verdict_is_a_warning() -> None:
    preds, _ = planted()
    seen = SeenRows(tuple(["train"] * 2 + [None] * 98), tuple([None] * 100))
    ev = evaluate(preds, OPTIONS, seen=seen)
    finding = next(f for f in ev.findings if f.id == "leakage_inflates_metrics")
    assert finding.severity == "warn" and ev.report.n == 98


def test_every_row_seen_leaves_nothing_to_judge() -> None:
    preds, _ = planted()
    ev = evaluate(preds, OPTIONS, seen=SeenRows(tuple(["train"] * 100), tuple([None] * 100)))
    finding = next(f for f in ev.findings if f.id == "leakage_inflates_metrics")
    assert finding.severity == "fail" and finding.inconclusive and ev.verdict == "not_ready"


def test_no_seen_row_changes_nothing() -> None:
    preds, _ = planted()
    ev = evaluate(preds, OPTIONS, seen=SeenRows((None,) * 100, (None,) * 100))
    assert ev.leakage is None and ev.report.n == 100


def test_seen_rows_by_the_audits_rules() -> None:
    base = ("Your parcel is waiting, pay the small release fee now at the link below "
            "before it is returned to the sender")
    train = [_view(base), _view("Lunch at noon?"), _view("Meeting moved to 3pm")]
    valid = [_view("Are you coming tonight?")]
    test = [_view("LUNCH at noon!!"),  # exact after normalisation
            _view(base.replace("small", "tiny")),  # near-duplicate
            _view("are you coming tonight"),  # exact, in valid
            _view("Totally new text about the weather in Lisbon this week")]
    seen = find_seen(test, {"train": train, "valid": valid})
    assert seen.exact == ("train", None, "valid", None)
    assert seen.near == (None, "train", None, None)
    assert seen.mask.tolist() == [True, True, True, False]
    exact_only = find_seen(test, {"train": train}, near_threshold=None)
    assert exact_only.mask.tolist() == [True, False, False, False]


def test_seen_rows_agree_with_the_audit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The rows the evaluation leaves out are exactly the test lines the audit reports as
    leaked or near-duplicated."""
    import json

    from ftlens.steps.audit import audit_files
    from ftlens.steps.seen import seen_in_training

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]

    def text() -> str:
        return " ".join(rng.choice(words, 12))

    train_texts = [text() for _ in range(120)]
    test_texts = [text() for _ in range(60)]
    for i in range(0, 60, 7):
        test_texts[i] = train_texts[i].upper()  # exact leaks
    for i in range(3, 60, 11):
        test_texts[i] = train_texts[i + 1] + " w1"  # near-duplicates

    def write(name: str, texts: list[str]) -> object:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"messages": [
            {"role": "user", "content": t}, {"role": "assistant", "content": "x"}]}) + "\n"
            for t in texts))
        return path

    train, test = write("train.jsonl", train_texts), write("test.jsonl", test_texts)
    report = audit_files(train, test=test)
    leaked = {p["line"] for f in report.findings if f.id == "leakage"
              for g in f.details["groups"] for p in g["places"] if p["split"] == "test"}
    near = {p["b"]["line"] for f in report.findings if f.id == "near_duplicate_leakage"
            for p in f.details["pairs"]}
    seen = seen_in_training([[{"role": "user", "content": t}] for t in test_texts],
                            train=train)  # type: ignore[arg-type]
    assert seen is not None
    assert {i + 1 for i in np.flatnonzero(seen.mask)} == leaked | near
    assert leaked and near


def _scored(n: int, cut: float, seed: int) -> Predictions:
    """Spam iff score >= cut, exactly: the best threshold on these rows is at ``cut``."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    truth = ["spam" if s >= cut else "ham" for s in scores]
    probs = np.column_stack([1 - scores, scores])
    return Predictions(truth, ["spam" if s >= 0.5 else "ham" for s in scores], probs=probs,
                       prob_labels=("ham", "spam"))


def test_the_threshold_is_chosen_on_validation_and_judged_on_test() -> None:
    valid, test = _scored(200, 0.7, 1), _scored(300, 0.7, 2)
    options = EvalOptions(positive="spam", n_boot=200)
    ev = evaluate(test, options, tune_on=valid)
    t = ev.threshold
    assert t is not None and t.held_out and t.tuned_on == "200 validation rows"
    assert t.n_reported == 300 and t.chosen is not None
    valid_scores = valid.probs[:, 1]  # type: ignore[index]
    lowest_spam = valid_scores[valid_scores >= 0.7].min()
    assert t.chosen.threshold == pytest.approx(lowest_spam)  # chosen on validation alone
    assert t.report_chosen is not None and t.report_chosen.accuracy > 0.97
    ids = {f.id for f in ev.findings}
    assert "threshold_tuned_on_test" not in ids
    assert "threshold_tuned_on_test" in {f.id for f in evaluate(test, options).findings}


def test_tuning_predictions_must_hold_both_classes() -> None:
    valid = _scored(50, 1.1, 3)  # no spam at all
    with pytest.raises(ValueError, match="need both 'spam' and other rows"):
        evaluate(_scored(100, 0.7, 4), EvalOptions(positive="spam", n_boot=200), tune_on=valid)
