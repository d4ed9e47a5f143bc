"""Findings of the loss-curve diagnosis, in the practitioners' terms."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ftlens.core.findings import Finding
from ftlens.core.run import Series, TrainingRun
from ftlens.core.smoothing import Smoothed, Trend, trend

MIN_DROP = 0.10
LARGE_DROP = 0.30  # a fall this large with Mann–Kendall p < 0.05 is learning, however noisy
MK_STRONG, MK_WEAK = 0.01, 0.05  # Mann–Kendall p-values: a clear trend, a likely one
END_SHARE = 0.10  # start and end levels: medians of the first and last tenth of the steps
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


@dataclass(frozen=True)
class Levels:
    """Where the training loss starts and ends: the medians of the first and last tenth of
    the logged steps (at least 3 each), so a few spikes or the last point cannot move them."""

    start: float
    end: float
    window: int  # how many steps each median covers

    @property
    def drop(self) -> float:
        return (self.start - self.end) / abs(self.start) if self.start else 0.0

    @property
    def text(self) -> str:
        change = f"{self.drop:.0%} lower" if self.drop >= 0 else f"{-self.drop:.0%} higher"
        return (f"training loss {_f(self.start)} → {_f(self.end)} (medians of the first and "
                f"last {self.window} steps; {change})")


def log_findings(run: TrainingRun) -> list[Finding]:
    """What the log itself tells before any curve is read: steps that go back."""
    back = run.steps_back
    if back is None:
        return []
    where = f" at line {back.line}" if back.line is not None else ""
    how = "repeat" if back.step == back.after else "go back"
    return [Finding(
        "steps_not_increasing", "warn", f"the log's steps {how}{where}",
        f"the steps of {back.column!r} {how}: step {back.step}{where} comes after step "
        f"{back.after}. Each step keeps its last value, so from there the curve is the later "
        "rows': the replay of a resumed run, or a second run appended to the same file",
        "give each run a log of its own (split the file where the step restarts); a resumed "
        "run's log can stay as it is, its replayed steps replacing the first tries",
        details={"line": back.line, "step": back.step, "after": back.after,
                 "column": back.column})]


def levels(raw: np.ndarray) -> Levels:
    k = min(len(raw), max(3, round(END_SHARE * len(raw))))
    return Levels(float(np.median(raw[:k])), float(np.median(raw[-k:])), k)


def curve_findings(*, train: Smoothed, valid: Smoothed | None, train_trend: Trend,
                   overfit: Overfit | None, exploded: int | None, nonfinite: bool,
                   train_accuracy: Series | None, best_step: int | None, best_from: str,
                   best_why: str | None = None) -> list[Finding]:
    """``best_why``: why ``best_step`` is best when a task metric chose it (else it is the
    ``best_from`` validation loss's)."""
    n = len(train.raw)
    if n < 3:
        return [Finding("too_few_steps", "warn", f"only {n} logged steps",
                        "a loss curve needs at least 3 points to judge", "log every step",
                        inconclusive=True)]
    lv = levels(train.raw)
    out: list[Finding] = []
    if exploded is not None:
        out.append(_diverging(exploded, nonfinite, train))
    falling = train_trend.tau < 0 and exploded is None
    learning = falling and lv.drop >= MIN_DROP and (
        train_trend.p_value < MK_STRONG or (train_trend.p_value < MK_WEAK
                                            and lv.drop >= LARGE_DROP))
    trend_text = (f"Theil–Sen slope {train_trend.slope:.3g}/step, Mann–Kendall "
                  f"p = {train_trend.p_value:.2g}")
    if learning:
        out.append(Finding("loss_decreasing", "info", "training loss falls steadily",
                           f"{lv.text}; {trend_text}"))
    elif lv.end >= NEAR_ZERO_LOSS and exploded is None and not _unclear(lv, train_trend):
        out.append(_stuck(lv, trend_text, falling and train_trend.p_value < MK_WEAK))
    noisy = _noisy(train, lv, learning, _unclear(lv, train_trend) and exploded is None,
                   trend_text)
    if noisy is not None:
        out.append(noisy)
    out += _memorization(lv, valid, train_accuracy)
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
            best_why or f"the earliest step whose {best_from} loss is within the noise band of "
                        "its minimum",
            f"pick the checkpoint at step {best_step}"))
    return out


def _diverging(step: int, nonfinite: bool, train: Smoothed) -> Finding:
    lowest = _f(float(np.min(train.smooth))) if len(train.smooth) else "n/a"
    what = ("the loss became NaN or infinite (or past 1e100)" if nonfinite else
            f"the smoothed loss climbed past 1.5x its lowest value ({lowest})")
    return Finding(
        "loss_diverging", "fail", f"training diverged at step {step}", what,
        "lower the learning-rate multiplier (e.g. halve it), and check for broken or extreme "
        "examples near that step", details={"step": step, "nonfinite": nonfinite})


def _stuck(lv: Levels, trend_text: str, significant: bool) -> Finding:
    if significant:  # it does fall, just not by enough to matter
        title, judged = (f"training loss falls only {max(lv.drop, 0):.0%}",
                         "a real but small fall: too little is being learned")
    else:
        title, judged = "training loss is not going down", "nothing is being learned"
    return Finding(
        "loss_stuck", "fail", title, f"{lv.text}; {trend_text}: {judged}",
        "raise the learning-rate multiplier, check that the assistant answers carry the "
        "signal (labels, format), or add more and cleaner data",
        details={"start": lv.start, "end": lv.end, "drop": lv.drop})


def _unclear(lv: Levels, tr: Trend) -> bool:
    """The medians fell a lot, but the steps are too few or too noisy for the trend test to
    be sure (p >= 0.05): neither learning nor stuck can be claimed."""
    return lv.drop >= LARGE_DROP and tr.tau < 0 and tr.p_value >= MK_WEAK


def _noisy(train: Smoothed, lv: Levels, learning: bool, unclear: bool, trend_text: str
           ) -> Finding | None:
    to_level = train.noise / max(abs(lv.end), 1e-9)
    to_drop = train.noise / max(lv.start - lv.end, 1e-9)
    if not unclear and (to_level < NOISE_TO_LEVEL or (learning and to_drop < NOISE_TO_DROP)):
        return None
    judged = ("the smoothed curve still falls clearly, so learning is happening" if learning
              else f"{lv.text}, but the trend is not significant ({trend_text}): too few or "
                   "too noisy steps to tell whether it learns" if unclear
              else "the smoothed curve does not fall either")
    return Finding(
        "loss_noisy", "warn", "the loss jumps around a lot",
        f"raw values spread ±{_f(train.noise)} around the smoothed curve ({to_level:.0%} of the "
        f"final loss); {judged}",
        "common with batch size 1: judge the smoothed curve, or raise the batch size / lower "
        "the learning-rate multiplier for a steadier run", inconclusive=unclear)


def _memorization(lv: Levels, valid: Smoothed | None, accuracy: Series | None
                  ) -> list[Finding]:
    if lv.end >= NEAR_ZERO_LOSS:
        return []
    acc = None
    if accuracy is not None and len(accuracy):
        finite = accuracy.values[np.isfinite(accuracy.values)]
        acc = float(np.median(finite[-lv.window:])) if len(finite) else None
        if acc is not None and acc < NEAR_ONE_ACCURACY:
            return []
    if valid is not None and len(valid.raw) >= 6:
        k = max(3, len(valid.raw) // 3)
        if trend(valid.steps[-k:], valid.raw[-k:]).decreasing:
            return []  # validation still improving: the model generalises
    acc_text = f", token accuracy {acc:.1%}" if acc is not None else ""
    valid_text = ("no validation loss tells whether it still generalises" if valid is None
                  else f"validation loss flat or rising at {_f(float(valid.smooth[-1]))}")
    return [Finding(
        "memorization", "warn", "the model is memorising the training set",
        f"training loss {_f(lv.end)} (median of the last {lv.window} steps){acc_text}; "
        f"{valid_text}",
        "train fewer epochs, lower the learning-rate multiplier, or add more varied data; "
        "judge it on held-out data before shipping",
        inconclusive=True,  # the curves cannot vouch for it: held-out data must
        details={"end_loss": lv.end})]


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


LN2 = math.log(2)  # a DPO loss where the tuned model still equals the reference
MARGIN_RISE = 0.05  # a reward margin that rose less than this has not moved


def preference_findings(run: TrainingRun) -> list[Finding]:
    """A DPO run: its loss starts near ln 2 (the tuned model equals the reference) and falls
    as the reward margin of the preferred over the non-preferred answers rises. The loss of
    a run that learns falls slowly (a margin of 0.25 is still a loss of 0.58), so a rising
    margin overrules ``loss_stuck`` (see :func:`ftlens.core.curves.diagnose`)."""
    held_out = run.valid_reward_margin is not None and len(run.valid_reward_margin) >= 3
    margin = run.valid_reward_margin if held_out else run.reward_margin
    if margin is None or len(margin) < 3:
        return []
    lv = levels(margin.values)
    where = "validation" if held_out else "training"
    start = float(run.train_loss.values[0])
    evidence = (f"{where} reward margin {lv.start:.3g} at the start, {lv.end:.3g} at the end "
                f"(median of {lv.window} steps each); first DPO loss {start:.3f}"
                + (" (ln 2: the tuned model still equals the reference)"
                   if abs(start - LN2) < 0.02 else ""))
    accuracy = run.valid_reward_accuracy if held_out else run.reward_accuracy
    if accuracy is not None and len(accuracy):
        evidence += (f"; the preferred answer wins in {levels(accuracy.values).end:.0%} of "
                     f"{where} pairs")
    details = {"margin_start": lv.start, "margin_end": lv.end, "split": where,
               "first_loss": start}
    if lv.end - lv.start >= MARGIN_RISE:
        return [Finding("reward_margin_rising", "info",
                        f"the reward margin rises ({lv.start:.2g} → {lv.end:.2g})", evidence,
                        details=details)]
    return [Finding("reward_margin_flat", "warn", "the reward margin does not rise", evidence,
                    "the tuned model has not learnt the preference: check that the preferred "
                    "and non-preferred answers differ in what should be taught, then raise "
                    "learning_rate_multiplier or lower beta", details=details)]
