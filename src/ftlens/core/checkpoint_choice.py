"""Which model to ship: the final one or an earlier checkpoint the loss curves preferred.

When the curves find overfitting, memorisation or a best checkpoint before the end, both models
answer the same test questions. Compared on the rows not seen in training (exact McNemar test
and paired bootstrap, as for base vs tuned), the checkpoint is recommended only when the
McNemar test finds it right on significantly more rows and no measured metric (accuracy,
macro-F1, the positive class's recall) is significantly worse — one primary test, so trying
several metrics does not inflate the false alarms. A difference the test rows cannot resolve
keeps the final model, whose numbers the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ftlens.core.classification import encode
from ftlens.core.compare import Comparison, Difference, compare
from ftlens.core.eval_types import Predictions
from ftlens.core.findings import Finding

Ship = Literal["checkpoint", "final"]
ALPHA = 0.05


@dataclass(frozen=True)
class CheckpointChoice:
    step: int
    model: str  # the checkpoint's model name
    final_model: str
    why: str  # why it was compared, e.g. "the curves show overfitting"
    comparison: Comparison  # checkpoint (candidate) minus final (baseline)
    positive: str | None
    ship: Ship
    unseen_only: bool = True  # compared on the unseen rows (False: every row was seen)

    @property
    def measured(self) -> list[Difference]:
        return _measured(self.comparison, self.positive)

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "step": self.step, "model": self.model, "final_model": self.final_model,
            "why": self.why, "ship": self.ship, "rows": c.n, "unseen_only": self.unseen_only,
            "mcnemar_p": c.mcnemar_p,
            "only_checkpoint": c.only_candidate, "only_final": c.only_baseline,
            "differences": [{"name": d.name, "estimate": d.estimate, "low": d.interval.low,
                             "high": d.interval.high} for d in c.differences],
        }


def choose(final: Predictions, checkpoint: Predictions, *, step: int, model: str,
           final_model: str, why: str, labels: tuple[str, ...], positive: str | None,
           keep: np.ndarray | None = None, unseen_only: bool = True, n_boot: int = 1000,
           seed: int = 0) -> CheckpointChoice:
    """``final``/``checkpoint``: both models' answers to the same rows; ``keep``: the rows
    to compare on (the unseen ones), all when None; ``unseen_only``: whether those rows are
    unseen in training."""
    _, t, fp = encode(final.y_true, final.y_pred, labels)
    _, ct, cp = encode(checkpoint.y_true, checkpoint.y_pred, labels)
    if not np.array_equal(t, ct):
        raise ValueError("the checkpoint and the final model answered different rows")
    if keep is not None:
        t, fp, cp = t[keep], fp[keep], cp[keep]
    comparison = compare(t, cp, fp, labels, n_boot=n_boot, seed=seed)
    return CheckpointChoice(step, model, final_model, why, comparison, positive,
                            "checkpoint" if _better(comparison, positive) else "final",
                            unseen_only)


def _measured(c: Comparison, positive: str | None) -> list[Difference]:
    """The differences a recommendation rests on: accuracy, macro-F1, and the positive
    class's recall when there is one."""
    names = ["accuracy", "macro_f1"] + ([f"recall({positive})"] if positive else [])
    return [c.difference(n) for n in names]


def _better(c: Comparison, positive: str | None) -> bool:
    """Measurably better: right on significantly more rows (McNemar), and no measured
    difference significantly below zero."""
    mcnemar = c.mcnemar_p < ALPHA and c.only_candidate > c.only_baseline
    return mcnemar and not any(d.interval.high < 0 for d in _measured(c, positive))


def _worse(c: Comparison, positive: str | None) -> bool:
    return (c.mcnemar_p < ALPHA and c.only_baseline > c.only_candidate) or any(
        d.interval.high < 0 for d in _measured(c, positive))


def _evidence(choice: CheckpointChoice) -> str:
    c = choice.comparison
    parts = [f"{_name(d.name)} {d.estimate:+.3f} (95 % CI {d.interval.low:+.3f} to "
             f"{d.interval.high:+.3f})" for d in choice.measured]
    rows = (f"{c.n} unseen test rows" if choice.unseen_only else
            f"all {c.n} test rows (every one was seen in training)")
    return (f"compared because {choice.why}; checkpoint minus final on {rows}: "
            f"{', '.join(parts)}; right only with the checkpoint: "
            f"{c.only_candidate}, only with the final model: {c.only_baseline} "
            f"(McNemar p = {c.mcnemar_p:.2g})")


def _name(metric: str) -> str:
    return metric.replace("macro_f1", "macro-F1")


def checkpoint_finding(choice: CheckpointChoice) -> Finding:
    """``checkpoint_better`` (warn: the model about to ship is not the best one),
    ``final_model_better`` or ``checkpoint_no_better`` (info)."""
    evidence = _evidence(choice)
    data = choice.to_dict()
    if choice.ship == "checkpoint":
        return Finding(
            "checkpoint_better", "warn",
            f"the checkpoint at step {choice.step} scores better on unseen data than the "
            "final model", evidence,
            f"ship {choice.model}, not {choice.final_model}; the metrics above are the final "
            "model's", details=data)
    if _worse(choice.comparison, choice.positive):
        return Finding(
            "final_model_better", "info",
            f"the final model scores better than the checkpoint at step {choice.step}",
            evidence, f"ship the final model, {choice.final_model}", details=data)
    needed = choice.comparison.needed_n
    more = (f"; about {needed} test rows would tell them apart" if needed
            and needed > choice.comparison.n else "")
    return Finding(
        "checkpoint_no_better", "info",
        f"the checkpoint at step {choice.step} and the final model score alike", evidence,
        f"ship the final model, {choice.final_model}: the checkpoint is not measurably "
        f"better{more}", details=data)


CALLING_IDS = {"overfitting": "overfitting", "memorization": "memorisation"}


def to_compare(findings: Sequence[Finding], *, best_step: int | None, final_step: int,
               checkpoint_steps: Sequence[int], best_what: str = "validation loss"
               ) -> tuple[int, str] | None:
    """The saved checkpoint to compare with the final model, and why, when the curves call
    for one: overfitting, memorisation, or a best checkpoint before the end. The saved step
    nearest the best step is taken — none when that is the final model itself — or, with no
    best step, the earliest one. ``best_what``: what the best step is best at (a task metric
    when the run logged them)."""
    steps = sorted({*checkpoint_steps, final_step})
    if len(steps) < 2:
        return None
    calls = [CALLING_IDS[f.id] for f in findings if f.id in CALLING_IDS]
    if best_step is not None and best_step < final_step:
        calls.append(f"the best {best_what} at step {best_step}")
    if not calls:
        return None
    step = (steps[0] if best_step is None else
            min(steps, key=lambda s: (abs(s - best_step), s)))
    if step >= final_step:
        return None
    return step, "the curves show " + " and ".join(calls)
