"""Task metrics over training steps, judged beside the loss: where validation recall or F1
peaks, whether they and the validation loss disagree (the loss still falling while recall
drops, or rising while F1 still improves: where the loss alone misleads), and the checkpoint a
task metric chooses.

A metric's curve is read at its full validation passes (the steps where the most rows were
scored, when there are at least two), else at every logged point. A change counts when it is
larger than twice the standard error of a proportion measured on that many rows, and at least
:data:`MIN_CHANGE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ftlens.core.findings import Finding
from ftlens.core.run import Series, TrainingRun
from ftlens.core.task_metrics import PREFIX, ROWS, describe

MIN_CHANGE = 0.03  # of a rate
LOSS_CHANGE = 0.02  # relative change of the validation loss that counts


@dataclass(frozen=True)
class Peak:
    column: str
    name: str  # as people say it: "recall(spam)", "macro-F1"
    step: int
    value: float
    end: float  # the last value
    rows: int  # validation rows behind each value (0: unknown)
    steps: np.ndarray = field(repr=False, compare=False)  # the curve it was read from
    values: np.ndarray = field(repr=False, compare=False)

    @property
    def drop(self) -> float:
        return self.value - self.end

    @property
    def margin(self) -> float:
        """How large a change must be to count at this many rows."""
        p = min(max(self.value, 0.0), 1.0)
        se = float(np.sqrt(p * (1 - p) / self.rows)) if self.rows else 0.0
        return max(MIN_CHANGE, 2 * se)


def curve(run: TrainingRun, column: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Steps, finite values and rows per value of a task metric (see the module docstring)."""
    s = run.task_metrics[column]
    keep = np.isfinite(s.values)
    steps, values = s.steps[keep], s.values[keep]
    rows = run.task_metrics.get(ROWS)
    if rows is None or not len(steps):
        return steps, values, 0
    n = np.interp(steps, rows.steps, rows.values) if len(rows) else np.zeros(len(steps))
    full = n >= n.max()
    if full.sum() >= 2:
        return steps[full], values[full], int(n.max())
    return steps, values, int(n.min())


def best_step(run: TrainingRun, column: str) -> int | None:
    """The earliest step with the highest value, among the saved checkpoints when those are
    known (each read at its latest logged value)."""
    steps, values, _ = curve(run, column)
    if not len(steps):
        return None
    if run.checkpoint_steps:
        ckpt = np.array(sorted(s for s in run.checkpoint_steps if s >= steps[0]), np.int64)
        if len(ckpt):
            at = np.searchsorted(steps, ckpt, side="right") - 1
            steps, values = ckpt, values[at]
    return int(steps[int(np.argmax(values))])


def peaks(run: TrainingRun, selected: str | None) -> list[Peak]:
    """The peaks people ask about: the selection metric, the positive class's recall and
    F1 (two classes), macro-F1."""
    wanted = [selected, PREFIX + "recall", PREFIX + "f1.0", PREFIX + "macro_f1",
              PREFIX + "weighted_f1_score"]
    out = []
    for column in dict.fromkeys(c for c in wanted if c and c in run.task_metrics):
        steps, values, rows = curve(run, column)
        if len(steps) >= 2:
            i = int(np.argmax(values))
            out.append(Peak(column, describe(column), int(steps[i]), float(values[i]),
                            float(values[-1]), rows, steps, values))
    return out


def task_findings(found: Sequence[Peak], loss: Series | None) -> list[Finding]:
    """``task_metric_peak`` (info) and ``task_metric_disagrees`` (warn) against the validation
    loss ``loss`` (full passes, or the smoothed sampled curve)."""
    if not found:
        return []
    out = []
    low = None
    if loss is not None and len(loss) >= 2 and np.isfinite(loss.values).all():
        low = int(loss.steps[int(np.argmin(loss.values))])
    first = found[0]
    where = ("; validation loss is lowest at step " + str(low)) if low is not None else ""
    out.append(Finding(
        "task_metric_peak", "info",
        f"validation {first.name} peaks at step {first.step} ({first.value:.3f})",
        "; ".join(f"validation {p.name} peaks at step {p.step} ({p.value:.3f}; "
                  f"{p.end:.3f} at the end)" for p in found) + where,
        details={"peaks": [{"metric": p.column, "step": p.step, "value": p.value,
                            "end": p.end, "rows": p.rows} for p in found],
                 "loss_lowest_step": low}))
    if low is None or loss is None:  # (no lowest step without a loss curve)
        return out
    for p in found:
        text = _disagreement(p, loss, low)
        if text is not None:
            title, evidence = text
            out.append(Finding(
                "task_metric_disagrees", "warn", title, evidence,
                f"the loss alone would pick step {low}; pick the checkpoint by what the task "
                f"needs (e.g. --select \"{p.name}\" picks step {p.step})",
                details={"metric": p.column, "peak_step": p.step, "loss_lowest_step": low}))
            break  # one disagreement is the point; the peaks finding lists the others
    return out


def _disagreement(p: Peak, loss: Series, low: int) -> tuple[str, str] | None:
    at = float(np.interp(p.step, loss.steps, loss.values))
    end = float(loss.values[-1])
    lowest = float(loss.values.min())
    scale = max(abs(at), 1e-9)
    if p.drop > p.margin and low > p.step and (at - end) / scale > LOSS_CHANGE:
        return (f"validation loss still falls while {p.name} drops",
                f"{p.name} peaked at step {p.step} ({p.value:.3f}) and ended at {p.end:.3f}, "
                f"while validation loss kept falling from {at:.4g} to {end:.4g} "
                f"(lowest at step {low})")
    then = float(np.interp(low, p.steps, p.values))
    if (low < p.step and (end - lowest) / max(abs(lowest), 1e-9) > LOSS_CHANGE
            and p.value - then > p.margin):
        return (f"validation loss rises while {p.name} still improves",
                f"validation loss was lowest at step {low} ({lowest:.4g}) and ended at "
                f"{end:.4g}, while {p.name} kept improving from {then:.3f} to {p.value:.3f} "
                f"at step {p.step}")
    return None
