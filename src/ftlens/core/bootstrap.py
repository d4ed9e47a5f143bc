"""Seeded, vectorised bootstrap intervals from confusion matrices.

A stratified bootstrap resamples, within each true class, as many examples as it has, with
replacement. For the metrics of a confusion matrix that is exactly a multinomial draw per row
(the row's counts are what resampling its examples yields), so B resamples cost B multinomial
draws per class instead of B × n index draws: 1,000 resamples of 100,000 predictions take
milliseconds. The paired bootstrap for comparing two models does the same over the joint
(true, prediction A, prediction B) cells, so both models see the same resampled items.

Metric formulas here are vectorised over resamples; tests check them against scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftlens.core.classification import Interval


def stratified_confusions(confusion: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, k, m)`` resampled confusion matrices (rows: true classes, kept at their
    counts)."""
    rng = np.random.default_rng(seed)
    c = np.asarray(confusion, dtype=np.int64)
    out = np.zeros((n_boot, *c.shape), dtype=np.int64)
    for i, row in enumerate(c):
        n = int(row.sum())
        if n:
            out[:, i, :] = rng.multinomial(n, row / n, size=n_boot)
    return out


def paired_confusions(joint: np.ndarray, n_boot: int, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """From ``joint[i, a, b]`` = items of true class i predicted a by model A and b by model B,
    ``n_boot`` paired resamples as two ``(n_boot, k, m)`` stacks of confusion matrices."""
    rng = np.random.default_rng(seed)
    k, m, _ = joint.shape
    a = np.zeros((n_boot, k, m), dtype=np.int64)
    b = np.zeros((n_boot, k, m), dtype=np.int64)
    for i in range(k):
        n = int(joint[i].sum())
        if n:
            draws = rng.multinomial(n, joint[i].ravel() / n, size=n_boot).reshape(n_boot, m, m)
            a[:, i, :] = draws.sum(axis=2)
            b[:, i, :] = draws.sum(axis=1)
    return a, b


@dataclass(frozen=True)
class BootMetrics:
    """Metrics of each resample: per-class arrays are ``(n_boot, k)``, the rest ``(n_boot,)``."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    accuracy: np.ndarray
    macro_f1: np.ndarray
    mcc: np.ndarray


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    num = num.astype(np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def metrics_of(confusions: np.ndarray) -> BootMetrics:
    """Vectorised metrics of ``(B, k, m)`` confusion matrices (m = k + 1: unparseable last)."""
    c = np.asarray(confusions, dtype=np.int64)
    k = c.shape[1]
    tp = np.diagonal(c[:, :, :k], axis1=1, axis2=2)
    support = c.sum(axis=2)
    predicted = c.sum(axis=1)  # (B, m)
    precision = _div(tp, predicted[:, :k])
    recall = _div(tp, support)
    f1 = _div(2 * tp, support + predicted[:, :k])
    total = c.sum(axis=(1, 2))
    correct = tp.sum(axis=1)
    # Matthews correlation (Gorodkin's multi-class form), on the square (m × m) matrix whose
    # unparseable row is empty.
    t_sum = np.concatenate([support, np.zeros((c.shape[0], c.shape[2] - k), np.int64)], axis=1)
    s = total.astype(np.float64)
    cov_tp = correct * s - (t_sum * predicted).sum(axis=1)
    cov_pp = s * s - (predicted.astype(np.float64) ** 2).sum(axis=1)
    cov_tt = s * s - (t_sum.astype(np.float64) ** 2).sum(axis=1)
    mcc = _div(cov_tp, np.sqrt(cov_tt * cov_pp))
    return BootMetrics(precision, recall, f1, _div(correct, total), f1.mean(axis=1), mcc)


def interval(samples: np.ndarray, confidence: float = 0.95) -> Interval:
    """Percentile interval of a 1-D array of resampled values."""
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return Interval(float(lo), float(hi))


def intervals(samples: np.ndarray, confidence: float = 0.95) -> list[Interval]:
    """Percentile interval of each column of ``(n_boot, k)`` resampled values."""
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha], axis=0)
    return [Interval(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]
