"""Findings of the loss-curve diagnosis, in the practitioners' terms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftlens.core.findings import Finding
from ftlens.core.run import Series
from ftlens.core.smoothing import Smoothed, Trend, trend

MIN_DROP = 0.10
NOISE_TO_DROP = 0.1  # raw spread / total smoothed drop: large relative to the trend
NOISE_TO_LEVEL = 0.05  # ...and at least this much of the final loss
NEAR_ZERO_LOSS = 0.05
NEAR_ONE_ACCURACY = 0.98


@dataclass(frozen=True)
class Overfit:
    onset_step: int  # where smoothed validation loss was at its minimum before rising
    detected_step: int  # first step beyond the noise band above the running minimum
    rise: float  # final smoothed validation loss minus its minimum
    gap: float  # final smoothed validation minus training loss (generalisation gap)


def _f(x: float) -> str:
    return f"{x:.4g}"


def curve_findings(*, train: Smoothed, valid: Smoothed | None, train_trend: Trend,
                   overfit: Overfit | None, exploded: int | None, nonfinite: bool,
                   train_accuracy: Series | None, best_step: int | None, best_from: str,
                   ) -> list[Finding]:
    n = len(train.raw)
    if n < 3:
        return [Finding("too_few_steps", "warn", f"only {n} logged steps",
                        "a loss curve needs at least 3 points to judge", "log every step",
                        inconclusive=True)]
    s0, s1 = float(train.smooth[0]), float(train.smooth[-1])
    drop = (s0 - s1) / abs(s0) if s0 else 0.0
    out: list[Finding] = []
    if exploded is not None:
        out.append(_diverging(exploded, nonfinite, train))
    learning = train_trend.decreasing and drop >= MIN_DROP and exploded is None
    near_zero = s1 < NEAR_ZERO_LOSS
    if learning:
        out.append(Finding(
            "loss_decreasing", "info", "training loss falls steadily",
            f"smoothed training loss {_f(s0)} → {_f(s1)} ({drop:.0%} lower; Theil–Sen slope "
            f"{train_trend.slope:.3g}/step, Mann–Kendall p = {train_trend.p_value:.2g})"))
    elif not near_zero and exploded is None:
        out.append(Finding(
            "loss_stuck", "fail", "training loss is not going down",
            f"smoothed training loss {_f(s0)} → {_f(s1)} ({drop:.0%} lower; Mann–Kendall "
            f"p = {train_trend.p_value:.2g}): nothing is being learned",
            "raise the learning-rate multiplier, check that the assistant answers carry the "
            "signal (labels, format), or add more and cleaner data"))
    noisy = _noisy(train, s0, s1, learning)
    if noisy is not None:
        out.append(noisy)
    out += _memorization(train, valid, train_accuracy, s1)
    if overfit is not None:
        out.append(_overfitting(overfit, best_step))
    if valid is None:
        out.append(Finding(
            "no_validation", "warn", "no validation loss",
            "without validation data overfitting cannot be judged",
            "add a validation file (10–20 % of the examples) to the job"))
    if best_step is not None:
        out.append(Finding(
            "best_checkpoint", "info", f"best checkpoint: step {best_step}",
            f"the earliest step whose {best_from} loss is within the noise band of its minimum",
            f"pick the checkpoint at step {best_step}"))
    return out


def _diverging(step: int, nonfinite: bool, train: Smoothed) -> Finding:
    lowest = _f(float(np.min(train.smooth))) if len(train.smooth) else "n/a"
    what = ("the loss became NaN or infinite" if nonfinite else
            f"the smoothed loss climbed past 1.5x its lowest value ({lowest})")
    return Finding(
        "loss_diverging", "fail", f"training diverged at step {step}", what,
        "lower the learning-rate multiplier (e.g. halve it), and check for broken or extreme "
        "examples near that step", details={"step": step, "nonfinite": nonfinite})


def _noisy(train: Smoothed, s0: float, s1: float, learning: bool) -> Finding | None:
    to_level = train.noise / max(abs(s1), 1e-9)
    to_drop = train.noise / max(s0 - s1, 1e-9)
    if to_level < NOISE_TO_LEVEL or (learning and to_drop < NOISE_TO_DROP):
        return None
    judged = ("the smoothed curve still falls clearly, so learning is happening" if learning
              else "the smoothed curve does not fall either")
    return Finding(
        "loss_noisy", "warn", "the loss jumps around a lot",
        f"raw values spread ±{_f(train.noise)} around the smoothed curve ({to_level:.0%} of the "
        f"final loss); {judged}",
        "common with batch size 1: judge the smoothed curve, or raise the batch size / lower "
        "the learning-rate multiplier for a steadier run")


def _memorization(train: Smoothed, valid: Smoothed | None, accuracy: Series | None,
                  s1: float) -> list[Finding]:
    if s1 >= NEAR_ZERO_LOSS:
        return []
    acc = None
    if accuracy is not None and len(accuracy):
        finite = accuracy.values[np.isfinite(accuracy.values)]
        acc = float(finite[-max(1, len(finite) // 10):].mean()) if len(finite) else None
        if acc is not None and acc < NEAR_ONE_ACCURACY:
            return []
    if valid is not None and len(valid.raw) >= 6:
        k = max(3, len(valid.raw) // 3)
        if trend(valid.steps[-k:], valid.raw[-k:]).decreasing:
            return []  # validation still improving: the model generalises
    acc_text = f", token accuracy {acc:.1%}" if acc is not None else ""
    valid_text = ("no validation to tell" if valid is None else
                  f"validation loss flat or rising at {_f(float(valid.smooth[-1]))}")
    return [Finding(
        "memorization", "warn", "the model is memorising the training set",
        f"training loss {_f(s1)}{acc_text}; {valid_text}",
        "train fewer epochs, lower the learning-rate multiplier, or add more varied data")]


def _overfitting(o: Overfit, best_step: int | None) -> Finding:
    pick = f"pick the checkpoint at step {best_step}, " if best_step is not None else ""
    return Finding(
        "overfitting", "fail", f"overfitting from about step {o.onset_step}",
        f"smoothed validation loss bottomed at step {o.onset_step} and rose {_f(o.rise)} by the "
        f"end (beyond its noise band from step {o.detected_step}) while training loss kept "
        f"falling; generalisation gap {_f(o.gap)}",
        f"{pick}train fewer epochs (stop near step {o.onset_step}) or lower the learning-rate "
        "multiplier", details={"onset_step": o.onset_step, "detected_step": o.detected_step,
                               "gap": o.gap})
