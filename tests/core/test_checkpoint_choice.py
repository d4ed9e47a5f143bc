"""Final model vs an earlier checkpoint, on generated answers with a known truth: the
checkpoint is recommended only when it is measurably better on the unseen rows."""

from __future__ import annotations

import numpy as np
import pytest

from ftlens.core.checkpoint_choice import checkpoint_finding, choose, to_compare
from ftlens.core.decision import decide
from ftlens.core.eval_types import Predictions
from ftlens.core.findings import Finding

LABELS = ("ham", "spam")
N = 300


def answers(truth: list[str], wrong: set[int]) -> Predictions:
    flip = {"ham": "spam", "spam": "ham"}
    return Predictions(truth, [flip[t] if i in wrong else t for i, t in enumerate(truth)])


def truth(n: int = N) -> list[str]:
    return ["spam" if i % 3 == 0 else "ham" for i in range(n)]


def judged(final_wrong: set[int], ckpt_wrong: set[int], keep: np.ndarray | None = None
           ) -> Finding:
    t = truth()
    choice = choose(answers(t, final_wrong), answers(t, ckpt_wrong), step=40,
                    model="ft:m:ckpt-step-40", final_model="ft:m", why="the curves show "
                    "overfitting", labels=LABELS, positive="spam", keep=keep, n_boot=500)
    return checkpoint_finding(choice)


def test_an_overfit_final_model_loses_to_its_best_checkpoint() -> None:
    """The final model misses 40 spams the checkpoint gets right: 13 points of accuracy
    on 300 rows, far outside chance."""
    spams = [i for i in range(N) if i % 3 == 0]
    f = judged(set(spams[:40]), set())
    assert f.id == "checkpoint_better" and f.severity == "warn"
    assert "ship ft:m:ckpt-step-40, not ft:m" in f.advice
    d = f.details
    assert d["ship"] == "checkpoint" and d["only_checkpoint"] == 40 and d["only_final"] == 0
    assert d["mcnemar_p"] < 1e-6
    acc = next(x for x in d["differences"] if x["name"] == "accuracy")
    assert acc["estimate"] == pytest.approx(40 / N) and acc["low"] > 0
    assert "overfitting" in f.evidence and "300 unseen test rows" in f.evidence


def test_a_difference_the_rows_cannot_resolve_keeps_the_final_model() -> None:
    f = judged({1, 2, 4}, {5, 7})
    assert f.id == "checkpoint_no_better" and f.severity == "info"
    assert f.details["ship"] == "final" and "ship the final model, ft:m" in f.advice


def test_a_better_final_model_is_said_so() -> None:
    f = judged(set(), set(range(0, 90)))
    assert f.id == "final_model_better" and f.details["ship"] == "final"


def test_only_the_unseen_rows_decide() -> None:
    """The checkpoint's whole advantage lies on rows seen in training: on the unseen rows
    the two are alike."""
    seen = np.zeros(N, dtype=bool)
    seen[:60] = True
    f = judged(set(range(60)), set(), keep=~seen)
    assert f.id == "checkpoint_no_better" and f.details["rows"] == N - 60


def test_a_better_checkpoint_is_a_reason_in_the_verdict() -> None:
    spams = [i for i in range(N) if i % 3 == 0]
    better = judged(set(spams[:40]), set())
    meets = Finding("meets_bar", "info", "accuracy above the bar", "accuracy 0.9")
    d = decide({"eval": [meets, better]})
    assert d.verdict == "ready" and d.reasons[0].finding == "checkpoint_better"
    low = Finding("low_recall", "fail", "recall below 0.85", "spam 0.6")
    d = decide({"eval": [low, better]})
    assert [r.finding for r in d.reasons] == ["low_recall", "checkpoint_better"]


F_OVERFIT = Finding("overfitting", "fail", "overfitting", "valid loss rises")
F_MEMO = Finding("memorization", "warn", "memorising", "train loss 0", inconclusive=True)


@pytest.mark.parametrize(("findings", "best", "saved", "expected"), [
    ([F_OVERFIT], 30, [20, 40, 60], (20, "the curves show overfitting and the best "
                                          "validation loss at step 30")),
    ([], 40, [20, 40, 60], (40, "the curves show the best validation loss at step 40")),
    ([], 60, [20, 40, 60], None),  # the best step is the final model
    ([], None, [20, 40, 60], None),  # nothing calls for it
    ([F_MEMO], None, [20, 40, 60], (20, "the curves show memorisation")),
    ([F_OVERFIT], 30, [60], None),  # no earlier checkpoint kept
    ([], 50, [20, 60], None),  # the final model is nearer the best step
    ([F_MEMO], 60, [20, 40, 60], None),  # validation loss is lowest at the end
])
def test_which_checkpoint_the_curves_call_for(findings: list[Finding], best: int | None,
                                              saved: list[int],
                                              expected: tuple[int, str] | None) -> None:
    assert to_compare(findings, best_step=best, final_step=60,
                      checkpoint_steps=saved) == expected


@pytest.mark.parametrize("seed", range(8))
def test_an_overfit_run_leads_to_its_best_checkpoint_and_that_one_is_shipped(seed: int) -> None:
    """Generated overfit runs (known onset), saved every epoch: the curves call for the
    checkpoint nearest the best step, before the onset's rise; when that checkpoint answers
    better on unseen rows, it is the one recommended."""
    import dataclasses

    from tests.support.curve_generator import generate

    from ftlens.core.curves import diagnose

    run, known = generate("overfit", seed)
    n = int(run.train_loss.steps[-1])
    saved = tuple(range(n // 8, n + 1, n // 8))[:8]
    d = diagnose(dataclasses.replace(run, checkpoint_steps=saved))
    chosen = to_compare(d.findings, best_step=d.best_step, final_step=n, checkpoint_steps=saved)
    assert chosen is not None, [f.id for f in d.findings]
    step, why = chosen
    if "overfitting" in {f.id for f in d.findings}:
        assert "overfitting" in why
    assert f"the best validation loss at step {d.best_step}" in why
    assert known.overfit_onset is not None and step < n
    assert abs(step - known.overfit_onset) <= n // 4  # near the real turning point
    t, spams = truth(), [i for i in range(N) if i % 3 == 0]
    choice = choose(answers(t, set(spams[:40])), answers(t, set(spams[40:45])), step=step,
                    model=f"ft:m:ckpt-step-{step}", final_model="ft:m", why=why,
                    labels=LABELS, positive="spam", n_boot=300)
    f = checkpoint_finding(choice)
    assert why in f.evidence
    assert f.id == "checkpoint_better" and f"ckpt-step-{step}" in f.advice


def test_a_checkpoint_chosen_by_a_task_metric_is_compared_and_named_so() -> None:
    """A run whose validation recall peaks at step 40 while its loss is lowest at step 80,
    checkpoints every 20 steps: the one chosen by recall(spam) is compared, in those words."""
    import dataclasses

    from tests.support.curve_generator import task_run

    from ftlens.core.curves import diagnose

    run = dataclasses.replace(task_run(loss_low=80, recall_peak=40),
                              checkpoint_steps=(20, 40, 60, 80, 100))
    d = diagnose(run, "recall(spam)")
    assert d.best_what == "validation recall(spam)"
    assert to_compare(d.findings, best_step=d.best_step, final_step=100,
                      checkpoint_steps=[20, 40, 60, 80], best_what=d.best_what) == (
        40, "the curves show the best validation recall(spam) at step 40")
