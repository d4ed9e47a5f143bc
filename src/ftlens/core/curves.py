"""Diagnose a fine-tuning run's loss curves like an expert would.

Loss should fall steadily; if it stays high, nothing is learned; if it jumps around, judge the
smoothed curve; if training loss falls while validation loss rises, the model is memorising the
training set. :func:`diagnose` returns findings (``loss_decreasing``, ``loss_stuck``,
``loss_noisy``, ``loss_diverging``, ``memorization``, ``overfitting``, ``no_validation``, and
``steps_not_increasing`` for a table log whose steps go back), the overfitting onset, the best
checkpoint and epoch boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sklearn.isotonic import IsotonicRegression

from ftlens.core import curve_findings as cf
from ftlens.core import task_curves
from ftlens.core.curve_findings import Overfit
from ftlens.core.findings import Finding, Verdict, sort_findings, verdict
from ftlens.core.run import Series, TrainingRun
from ftlens.core.smoothing import Smoothed, Trend, smooth, trend
from ftlens.core.task_curves import Peak
from ftlens.core.task_metrics import default_select, describe, select_column

EXPLOSION = 1.5  # smoothed loss this many times its running minimum: diverging
# a loss past this has diverged as surely as an infinite one (and smoothing it would overflow)
DIVERGED = 1e100
MAX_ONSET_CANDIDATES = 120
MAX_ONSET_POINTS = 1000
RELATIVE_RISE = 0.05  # validation loss rising less than this above its minimum is no overfit


@dataclass(frozen=True)
class Diagnosis:
    train: Smoothed
    valid: Smoothed | None
    train_trend: Trend
    overfit: Overfit | None
    best_step: int | None
    best_from: str  # "full validation", "validation", "" when unknown
    epoch_steps: tuple[int, ...]
    findings: tuple[Finding, ...]
    run: TrainingRun
    selected: str | None = None  # the task metric the best checkpoint is chosen by (None: loss)
    rule: str = ""  # why that one, in words
    peaks: tuple[Peak, ...] = ()

    @property
    def best_what(self) -> str:
        """What the best checkpoint is best at, e.g. "validation loss", "validation F1"."""
        return "validation " + (describe(self.selected) if self.selected else "loss")

    @property
    def verdict(self) -> Verdict:
        return verdict(self.findings)


def _finite(series: Series) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Steps and values up to the first value that is not finite or is past ``DIVERGED`` in
    size, and that value's step (if any)."""
    bad = np.flatnonzero(~(np.abs(series.values) <= DIVERGED))  # NaN compares False
    if len(bad):
        cut = int(bad[0])
        return series.steps[:cut], series.values[:cut], int(series.steps[cut])
    return series.steps, series.values, None


def _explosion(s: Smoothed) -> int | None:
    """The step from which the smoothed loss stays past EXPLOSION x its running minimum (and
    has given back at least half of what was gained) until the end of the run, the raw end
    level is past it too, and the raw values climb significantly from the smoothed low. A rise
    that comes back down — e.g. the spikes of a rare class in small batches — or a noisy dip
    below the true level is noise, not divergence."""
    if len(s.smooth) < 5:
        return None
    running = np.minimum.accumulate(s.smooth)
    floor = np.maximum(EXPLOSION * running + s.band, running + 0.5 * (s.smooth[0] - running))
    over = (s.smooth > floor) & (running > 0)
    if not over[-1] or cf.levels(s.raw).end <= floor[-1]:
        return None  # (the raw end level too: a last spike alone pulls the smoothed end)
    low = int(np.argmin(s.smooth))
    if not trend(s.steps[low:], s.raw[low:]).increasing:
        return None  # no significant climb since the low: a noisy dip, not a divergence
    below = np.flatnonzero(~over)
    return int(s.steps[below[-1] + 1 if len(below) else 0])


def _overfit(train: Smoothed, valid: Smoothed) -> Overfit | None:
    """Smoothed validation loss rises beyond its noise band above its running minimum while
    training loss keeps falling."""
    if len(valid.smooth) < 4:
        return None
    running = np.minimum.accumulate(valid.smooth)
    # the noise band above the running minimum: two standard errors, plus how far below its
    # true level the minimum of that many noisy points tends to fall; and at least 5 %
    m = len(valid.smooth)
    margin = max(valid.band * (2 + np.sqrt(2 * np.log(max(m, 2)))),
                 RELATIVE_RISE * float(np.abs(running[-1])))
    above = np.flatnonzero(valid.smooth > running + margin)
    if not len(above) or valid.smooth[-1] <= running[-1] + margin:
        return None  # no rise, or only a passing bump
    detected = int(above[0])
    onset = _onset(valid)
    onset_step = int(valid.steps[onset])
    at_onset = float(np.interp(onset_step, train.steps, train.smooth))
    if train.smooth[-1] >= at_onset:
        return None  # training loss stopped falling too: not the overfitting pattern
    train_end = float(train.smooth[-1])
    return Overfit(onset_step, int(valid.steps[detected]),
                   float(valid.smooth[-1] - valid.smooth[onset]),
                   float(valid.smooth[-1] - train_end))


def _onset(valid: Smoothed) -> int:
    """Index where validation loss turns upwards, by unimodal regression: the best
    (least-squares) fit that falls, then rises (scikit-learn's isotonic regression on each
    side of every candidate turning point); the middle of the fit's lowest plateau."""
    y, t = valid.raw, valid.steps.astype(np.float64)
    m = len(y)
    if m < 5:
        return int(np.argmin(valid.smooth))
    if m > MAX_ONSET_POINTS:  # fit on bin means; map the answer back to a real point
        edges = np.linspace(0, m, MAX_ONSET_POINTS + 1).astype(int)
        counts = np.diff(edges)
        binned = Smoothed(np.add.reduceat(t, edges[:-1]) / counts,
                          np.add.reduceat(y, edges[:-1]) / counts, valid.smooth[edges[:-1]],
                          valid.noise, valid.band, valid.span)
        i = _onset(binned)
        return int(edges[i] + counts[i] // 2)
    down = IsotonicRegression(increasing=False)
    up = IsotonicRegression(increasing=True)
    best_sse, best_fit = np.inf, valid.smooth
    for k in np.unique(np.linspace(1, m - 2, min(m - 2, MAX_ONSET_CANDIDATES)).astype(int)):
        left = down.fit_transform(t[: k + 1], y[: k + 1])
        right = up.fit_transform(t[k:], y[k:])
        fit = np.concatenate([left, right[1:]])
        sse = float(np.sum((fit - y) ** 2))
        if sse < best_sse:
            best_sse, best_fit = sse, fit
    plateau = np.flatnonzero(best_fit <= best_fit.min() + 1e-12)
    return int(plateau[len(plateau) // 2])


def _best(run: TrainingRun, valid: Smoothed | None) -> tuple[int | None, str]:
    """Earliest step whose validation loss is within the noise band of the minimum, among
    steps with a checkpoint when those are known; full-validation metrics first."""
    full = run.full_valid_loss
    if full is not None and len(full) >= 2 and np.isfinite(full.values).all():
        steps, values, band, source = full.steps, full.values, 0.0, "full validation"
    elif valid is not None and len(valid.steps):
        steps, values, band, source = valid.steps, valid.smooth, valid.band, "validation"
    else:
        return None, ""
    if run.checkpoint_steps:
        # the validation loss at each saved checkpoint (interpolated between logged points)
        ckpt = np.array(sorted(run.checkpoint_steps), dtype=np.int64)
        ckpt = ckpt[ckpt >= steps[0]]  # after the last point: its value carries on
        if len(ckpt):
            steps, values = ckpt, np.interp(ckpt, steps, values)
    best = float(values.min())
    return int(steps[np.flatnonzero(values <= best + band)[0]]), source


def _epochs(run: TrainingRun, last_step: int) -> tuple[int, ...]:
    if not run.steps_per_epoch or run.steps_per_epoch <= 0:
        return ()
    return tuple(range(run.steps_per_epoch, last_step + 1, run.steps_per_epoch))


OPENAI_KEEPS = 3  # OpenAI keeps the checkpoints of the last 3 epochs


def _known_checkpoints(run: TrainingRun) -> TrainingRun:
    """For an OpenAI run with known epochs and no checkpoint list, the last 3 epoch ends."""
    if run.checkpoint_steps is not None or not run.steps_per_epoch or not len(run.train_loss):
        return run
    if not run.source.startswith("openai"):
        return run
    last = int(run.train_loss.steps[-1])
    ends = [*range(run.steps_per_epoch, last, run.steps_per_epoch), last]
    return replace(run, checkpoint_steps=tuple(ends[-OPENAI_KEEPS:]))


def diagnose(run: TrainingRun, select: str | None = None) -> Diagnosis:
    """``select``: what the best checkpoint is chosen by (``loss``, ``f1(spam)``…; see
    :func:`~ftlens.core.task_metrics.select_column`); default: macro-F1 when the run logged
    task metrics, else validation loss."""
    run = _known_checkpoints(run)
    if select is not None:
        selected = select_column(select, run.task_metrics)
        rule = f"{select.strip()} (as asked)"
    else:
        selected = default_select(run.task_metrics)
        rule = (f"{describe(selected)}, the default when task metrics are logged" +
                ("" if selected.endswith("macro_f1") else " and macro-F1 is not")
                if selected else "validation loss, the default without task metrics")
    steps, values, nonfinite_at = _finite(run.train_loss)
    train = smooth(steps, values)
    tr = trend(steps, values)
    valid = None
    valid_nonfinite = None
    if run.valid_loss is not None and len(run.valid_loss):
        vs, vv, valid_nonfinite = _finite(run.valid_loss)
        valid = smooth(vs, vv, span=max(1, min(len(vv) // 8, 50))) if len(vv) else None
    exploded = _explosion(train) if nonfinite_at is None else nonfinite_at
    overfit = None
    if valid is not None and len(train.steps) >= 3 and exploded is None:
        overfit = _overfit(train, valid)
    best_step, best_from = _best(run, valid)
    why = None
    if selected is not None and (chosen := task_curves.best_step(run, selected)) is not None:
        best_step, best_from = chosen, "task metric"
        why = (f"the step with the highest validation {describe(selected)} "
               f"(chosen by {rule})")
    findings = cf.curve_findings(
        train=train, valid=valid, train_trend=tr, overfit=overfit, exploded=exploded,
        nonfinite=nonfinite_at is not None or valid_nonfinite is not None,
        train_accuracy=run.train_accuracy, best_step=best_step, best_from=best_from,
        best_why=why)
    findings += cf.log_findings(run)
    found = task_curves.peaks(run, selected)
    findings += task_curves.task_findings(found, _loss_curve(run, valid))
    if run.preference:  # a DPO loss falls slowly from ln 2: the margin says if it learns
        extra = cf.preference_findings(run)
        if any(f.id == "reward_margin_rising" for f in extra):
            findings = [f for f in findings if f.id != "loss_stuck"]
        findings += extra
    last = int(run.train_loss.steps[-1]) if len(run.train_loss) else 0
    return Diagnosis(train, valid, tr, overfit, best_step, best_from, _epochs(run, last),
                     tuple(sort_findings(findings)), run, selected, rule, tuple(found))


def _loss_curve(run: TrainingRun, valid: Smoothed | None) -> Series | None:
    """The validation loss the task metrics are held against: the full passes, else the
    smoothed sampled curve."""
    full = run.full_valid_loss
    if full is not None and len(full) >= 2 and np.isfinite(full.values).all():
        return full
    return None if valid is None else Series(valid.steps, valid.smooth)
