"""Synthetic fine-tuning loss curves with known truth, for the diagnosis bars.

Each kind draws its shape parameters from a seeded generator: run length, validation interval,
noise, learning speed, and for overfitting the onset step and how fast validation loss rises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftlens.core.run import Series, TrainingRun

KINDS = ("clean", "overfit", "noise", "noisy_decreasing", "stuck", "diverging", "memorising",
         "memorising_spiky", "noisy_short")


@dataclass(frozen=True)
class Truth:
    kind: str
    decreasing: bool
    stuck: bool
    noisy: bool
    diverging: bool
    memorising: bool
    overfit_onset: int | None  # step where validation loss starts to rise


def _decay(t: np.ndarray, start: float, end: float, tau: float) -> np.ndarray:
    return end + (start - end) * np.exp(-t / tau)


def generate(kind: str, seed: int, n_steps: int | None = None) -> tuple[TrainingRun, Truth]:
    rng = np.random.default_rng(seed)
    n = n_steps or int(rng.integers(150, 1500))
    t = np.arange(1, n + 1)
    every = int(rng.integers(max(1, n // 60), max(2, n // 25) + 1))
    vsteps = t[every - 1 :: every]
    start = float(rng.uniform(1.5, 3.5))
    end = float(rng.uniform(0.2, 0.8)) * start * 0.5
    tau = float(rng.uniform(0.08, 0.25)) * n
    sigma = float(rng.uniform(0.01, 0.03)) * start
    train = _decay(t, start, end, tau)
    valid = _decay(vsteps, start * 1.05, end * 1.15, tau)
    vsigma = float(rng.uniform(0.02, 0.05)) * end  # noise of a small validation batch
    onset = None
    truth = dict(decreasing=True, stuck=False, noisy=False, diverging=False, memorising=False)
    acc = None
    if kind == "overfit":
        onset = int(n * rng.uniform(0.3, 0.7))
        # validation falls to its minimum exactly at the onset, then rises linearly by
        # 15–50 % of that minimum by the end of the run; training loss keeps falling
        v_on = end * 1.15
        fall = (np.exp(-vsteps / tau) - np.exp(-onset / tau)) / (1 - np.exp(-onset / tau))
        rise = v_on * float(rng.uniform(0.15, 0.5))
        valid = np.where(vsteps <= onset, v_on + (start * 1.05 - v_on) * fall,
                         v_on + rise * (vsteps - onset) / (n - onset))
    elif kind == "noise":
        train = np.full(n, start)
        valid = np.full(len(vsteps), start * 1.02)
        sigma = float(rng.uniform(0.1, 0.3)) * start
        truth.update(decreasing=False, stuck=True, noisy=True)
    elif kind == "noisy_decreasing":
        sigma = float(rng.uniform(0.12, 0.3)) * start
        truth.update(noisy=True)
    elif kind == "stuck":
        train = np.full(n, start) - np.linspace(0, 0.02 * start, n)
        valid = np.full(len(vsteps), start * 1.02)
        sigma = float(rng.uniform(0.005, 0.02)) * start
        truth.update(decreasing=False, stuck=True)
    elif kind == "diverging":
        d = int(n * rng.uniform(0.4, 0.8))
        blow = np.exp((t - d).clip(0) / (0.05 * n))
        train = train * blow
        valid = valid * np.exp((vsteps - d).clip(0) / (0.05 * n))
        if rng.random() < 0.5:
            train[int(d + 0.1 * n):] = np.nan
        truth.update(decreasing=False, diverging=True)
    elif kind == "memorising":
        train = _decay(t, start, 0.005, tau * 0.5)
        valid = _decay(vsteps, start * 1.05, end * 1.3, 0.08 * n)  # plateaus early
        sigma = 0.002
        acc = np.clip(1 - train / start * 0.5, 0, 1)
        acc = np.where(t > n * 0.6, np.maximum(acc, 0.995), acc)
        truth.update(memorising=True)
    elif kind == "memorising_spiky":  # batch size 1 at loss 0.0, a rare example spiking
        train = np.where(t > n * rng.uniform(0.3, 0.5), 0.0, _decay(t, start, 0.0, tau * 0.3))
        spikes = rng.random(n) < rng.uniform(0.03, 0.08)
        train = np.where(spikes & (train == 0.0), rng.uniform(0.3, 1.5, n), train)
        valid = _decay(vsteps, start * 1.05, end * 1.3, 0.08 * n)
        sigma = 0.0
        acc = np.where(train == 0.0, 1.0, np.clip(1 - train / start, 0, 1))
        truth.update(memorising=True)
    elif kind == "noisy_short":  # batch size 1, a few dozen steps, per-example losses
        n = int(rng.integers(40, 121))
        t = np.arange(1, n + 1)
        vsteps = t[9::10]
        fall = rng.uniform(0.5, 0.75)
        train = _decay(t, start, start * (1 - fall), n / 4)
        valid = _decay(vsteps, start * 1.05, start * (1 - fall) * 1.1, n / 4)
        train = train * rng.lognormal(0, rng.uniform(0.5, 0.8), n)
        sigma = 0.0
        truth.update(noisy=True)
    noisy_train = train + rng.normal(0, sigma, n)
    noisy_valid = valid + rng.normal(0, vsigma, len(vsteps))
    if not kind.startswith("memorising"):
        noisy_train = np.where(np.isnan(train), np.nan, np.abs(noisy_train))
    run = TrainingRun(
        train_loss=Series(t, noisy_train), valid_loss=Series(vsteps, noisy_valid),
        train_accuracy=None if acc is None else Series(t, acc), total_steps=n,
        source="synthetic")
    return run, Truth(kind=kind, overfit_onset=onset, **truth)


def task_run(loss_low: int, recall_peak: int, *, rising_loss: bool = False) -> TrainingRun:
    """100 steps, validation every 10 (all 200 rows each time): validation loss lowest at
    ``loss_low``, recall(spam) highest at ``recall_peak``."""
    steps = np.arange(1, 101)
    vsteps = np.arange(10, 101, 10)
    loss = 0.3 + 0.002 * (vsteps - loss_low) ** 2 / (10 if rising_loss else 100)
    recall = 0.9 - 0.00008 * (vsteps - recall_peak) ** 2
    f1 = 0.85 - 0.00005 * (vsteps - recall_peak) ** 2
    return TrainingRun(
        train_loss=Series(steps, 2.0 * np.exp(-steps / 30) + 0.1),
        valid_loss=Series(vsteps, loss),
        task_metrics={"classification/recall/spam": Series(vsteps, recall),
                      "classification/macro_f1": Series(vsteps, f1),
                      "classification/rows": Series(vsteps, np.full(len(vsteps), 200.0))},
        source="openai-events")
