"""Smoothing, noise and trend of a loss curve (pure numpy/scipy).

* Zero-phase exponential smoothing: a bias-corrected EMA run forwards and backwards and
  averaged, so the smoothed curve does not lag (minima stay where they are).
* Noise: the robust spread (MAD × 1.4826) of raw values around the smoothed curve; the band of
  the smoothed curve itself is that spread scaled by the EMA's variance factor.
* Trend: Theil–Sen slope and Kendall's tau test (Mann–Kendall), on at most ``MAX_TREND``
  evenly spaced points so that 100,000-step runs stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MAX_TREND = 600


def span_for(n: int) -> int:
    """EMA span for ``n`` points: about a twentieth of the run, at least 1, at most 500."""
    return int(min(500, max(1, n // 20)))


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """Bias-corrected exponential moving average (the first values are not pulled to 0)."""
    x = np.asarray(values, dtype=np.float64)
    if span <= 1 or len(x) == 0:
        return x.copy()
    beta = 1.0 - 2.0 / (span + 1)
    # s_t = beta s_{t-1} + (1 - beta) x_t, computed as a discounted cumulative sum, in blocks
    # so that beta ** -t never overflows.
    out = np.empty_like(x)
    state, weight = 0.0, 0.0
    block = max(1, int(300 / max(1e-12, -np.log(beta))))
    for lo in range(0, len(x), block):
        chunk = x[lo : lo + block]
        k = np.arange(1, len(chunk) + 1)
        decay = beta ** k
        inc = np.cumsum(chunk * (1 - beta) / decay) * decay
        s = state * decay + inc
        w = weight * decay + (1 - decay)
        out[lo : lo + block] = s / w
        state, weight = s[-1], w[-1]
    return out


def zero_phase(values: np.ndarray, span: int) -> np.ndarray:
    """Forward and backward EMA averaged, each weighted by how many points it has seen there:
    smooth without lag, and not jumpy at either end (where one direction has seen 1 point)."""
    x = np.asarray(values, dtype=np.float64)
    if span <= 1 or len(x) < 2:
        return x.copy()
    beta = 1.0 - 2.0 / (span + 1)
    seen = 1.0 - beta ** np.arange(1, len(x) + 1)
    w_fwd, w_bwd = seen, seen[::-1]
    return (w_fwd * ema(x, span) + w_bwd * ema(x[::-1], span)[::-1]) / (w_fwd + w_bwd)


@dataclass(frozen=True)
class Smoothed:
    steps: np.ndarray
    raw: np.ndarray
    smooth: np.ndarray
    noise: float  # robust spread of the raw values around the smoothed curve
    band: float  # standard error of the smoothed curve
    span: int


def smooth(steps: np.ndarray, values: np.ndarray, span: int | None = None) -> Smoothed:
    x = np.asarray(values, dtype=np.float64)
    span = span or span_for(len(x))
    s = zero_phase(x, span)
    resid = x - s
    noise = float(1.4826 * np.median(np.abs(resid - np.median(resid)))) if len(x) else 0.0
    # variance factor of an EMA: (1 - beta) / (1 + beta); averaging the two directions
    # removes a little more (they are correlated, so not half)
    beta = 1.0 - 2.0 / (span + 1)
    band = noise * np.sqrt((1 - beta) / (1 + beta)) * 0.8 if span > 1 else noise
    return Smoothed(np.asarray(steps), x, s, noise, float(band), span)


@dataclass(frozen=True)
class Trend:
    slope: float  # Theil–Sen, per step
    tau: float  # Kendall's tau of value against step
    p_value: float  # two-sided Mann–Kendall test

    @property
    def decreasing(self) -> bool:
        return self.p_value < 0.01 and self.tau < 0

    @property
    def increasing(self) -> bool:
        return self.p_value < 0.01 and self.tau > 0


def trend(steps: np.ndarray, values: np.ndarray) -> Trend:
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if len(x) < 3:
        return Trend(0.0, 0.0, 1.0)
    if len(x) > MAX_TREND:
        # average into MAX_TREND bins: keeps the trend, shrinks the noise, bounds the cost
        edges = np.linspace(0, len(x), MAX_TREND + 1).astype(int)
        x = np.add.reduceat(x, edges[:-1]) / np.diff(edges)
        y = np.add.reduceat(y, edges[:-1]) / np.diff(edges)
    slope = float(stats.theilslopes(y, x)[0])
    tau, p = stats.kendalltau(x, y)
    return Trend(slope, float(np.nan_to_num(tau)), float(1.0 if np.isnan(p) else p))
