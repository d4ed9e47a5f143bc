"""Two models on the same items (e.g. fine-tuned vs base): is the difference real?

Exact McNemar test on which items each gets right, paired bootstrap intervals for the
differences (candidate minus baseline) in accuracy, macro-F1 and per-class recall, and the
number of items a test would need to detect the observed accuracy difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm

from ftlens.core.bootstrap import interval, metrics_of, paired_confusions
from ftlens.core.classification import Interval


@dataclass(frozen=True)
class Difference:
    name: str  # "accuracy", "macro_f1", "recall(spam)"
    estimate: float  # candidate − baseline
    interval: Interval  # paired bootstrap

    @property
    def significant(self) -> bool:
        return self.interval.low > 0 or self.interval.high < 0


@dataclass(frozen=True)
class Comparison:
    n: int
    both_correct: int
    only_candidate: int  # candidate right, baseline wrong
    only_baseline: int
    both_wrong: int
    mcnemar_p: float
    differences: tuple[Difference, ...]
    needed_n: int | None  # items to detect the observed accuracy difference (α 0.05, power 0.8)

    def difference(self, name: str) -> Difference:
        return next(d for d in self.differences if d.name == name)


def needed_sample_size(p10: float, p01: float, alpha: float = 0.05, power: float = 0.8
                       ) -> int | None:
    """Paired items needed for McNemar's test to detect accuracy difference p10 − p01
    (Connor 1987). None when there is no difference to detect."""
    delta = p10 - p01
    psi = p10 + p01
    if delta == 0 or psi - delta * delta <= 0:
        return None
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    n = (za * math.sqrt(psi) + zb * math.sqrt(psi - delta * delta)) ** 2 / (delta * delta)
    return math.ceil(n)


def compare(true: np.ndarray, candidate: np.ndarray, baseline: np.ndarray,
            labels: tuple[str, ...], *, n_boot: int = 1000, seed: int = 0,
            confidence: float = 0.95) -> Comparison:
    """``true``/``candidate``/``baseline``: integer codes (``len(labels)`` = unparseable)."""
    k = len(labels)
    m = k + 1
    ok_c = candidate == true
    ok_b = baseline == true
    only_c = int((ok_c & ~ok_b).sum())
    only_b = int((~ok_c & ok_b).sum())
    n = len(true)
    p = binomtest(min(only_c, only_b), only_c + only_b, 0.5).pvalue if only_c + only_b else 1.0
    joint = np.bincount(true * m * m + candidate * m + baseline, minlength=k * m * m)
    joint = joint.reshape(k, m, m)
    boot_c, boot_b = paired_confusions(joint, n_boot, seed)
    mc, mb = metrics_of(boot_c), metrics_of(boot_b)
    point_c = metrics_of(joint.sum(axis=2)[None])
    point_b = metrics_of(joint.sum(axis=1)[None])
    diffs = [
        Difference("accuracy", float(point_c.accuracy[0] - point_b.accuracy[0]),
                   interval(mc.accuracy - mb.accuracy, confidence)),
        Difference("macro_f1", float(point_c.macro_f1[0] - point_b.macro_f1[0]),
                   interval(mc.macro_f1 - mb.macro_f1, confidence)),
    ]
    for i, label in enumerate(labels):
        diffs.append(Difference(
            f"recall({label})", float(point_c.recall[0, i] - point_b.recall[0, i]),
            interval(mc.recall[:, i] - mb.recall[:, i], confidence)))
    return Comparison(
        n=n, both_correct=int((ok_c & ok_b).sum()), only_candidate=only_c,
        only_baseline=only_b, both_wrong=int((~ok_c & ~ok_b).sum()), mcnemar_p=float(p),
        differences=tuple(diffs),
        needed_n=needed_sample_size(only_c / n, only_b / n) if n else None,
    )

