"""Benchmark: the evaluation core's speed (issue 3).

1. Bootstrap: 1,000 stratified resamples of 100,000 predictions, as `evaluate` computes them
   (multinomial draws per class on the confusion matrix, vectorised metrics), against the plain
   approach measured in the same run: index resampling within each class with numpy and a
   confusion matrix per resample. Target: under 2 s.
2. All metrics of 10,000,000 predictions (`classification_metrics`: confusion matrix with the
   unparseable column, per-class P/R/F1 with Wilson intervals, averages, accuracy, balanced
   accuracy, MCC, kappa) against scikit-learn's `confusion_matrix` alone on the same arrays.
   Target: within 3x.

    python bench/metrics.py [--n-big 10000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from sklearn.metrics import confusion_matrix

from ftlens.core.bootstrap import intervals, metrics_of, stratified_confusions
from ftlens.core.classification import classification_metrics, confusion_from_codes, encode

LABELS = np.array(["ham", "spam", "phishing"])


def data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, size=n, p=[0.8, 0.15, 0.05])
    wrong = rng.random(n) < 0.1
    noise = rng.choice(np.array([*LABELS, "maybe"]), size=n)
    return y, np.where(wrong, noise, y)


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bootstrap_ours(confusion: np.ndarray) -> None:
    m = metrics_of(stratified_confusions(confusion, 1000, seed=0))
    intervals(m.precision), intervals(m.recall), intervals(m.f1)


def bootstrap_plain(t: np.ndarray, p: np.ndarray, k: int) -> None:
    rng = np.random.default_rng(0)
    rows = [np.flatnonzero(t == i) for i in range(k)]
    stack = np.empty((1000, k, k + 1), dtype=np.int64)
    for b in range(1000):
        idx = np.concatenate([r[rng.integers(0, len(r), len(r))] for r in rows])
        stack[b] = np.bincount(t[idx] * (k + 1) + p[idx], minlength=k * (k + 1)).reshape(
            k, k + 1)
    m = metrics_of(stack)
    intervals(m.precision), intervals(m.recall), intervals(m.f1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot-items", type=int, default=100_000)
    ap.add_argument("--n-big", type=int, default=10_000_000)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"numpy {np.__version__}")

    y, p = data(args.n_boot_items)
    labels, t, pc = encode(y, p)
    confusion = confusion_from_codes(t, pc, len(labels))
    ours = best_of(lambda: bootstrap_ours(confusion))
    plain = best_of(lambda: bootstrap_plain(t, pc, len(labels)), repeat=1)
    print(f"bootstrap 1,000 x {args.n_boot_items:,}: ftlens {ours * 1000:.1f} ms, plain index "
          f"resampling {plain:.2f} s ({plain / ours:.0f}x)  target < 2 s: "
          f"{'met' if ours < 2 else 'NOT met'}")

    y, p = data(args.n_big, seed=1)
    sk = best_of(lambda: confusion_matrix(y, p), repeat=2)
    full = best_of(lambda: classification_metrics(y, p), repeat=2)
    print(f"all metrics on {args.n_big:,}: ftlens {full:.2f} s, sklearn confusion_matrix alone "
          f"{sk:.2f} s, ratio {full / sk:.2f}x  target <= 3x: "
          f"{'met' if full <= 3 * sk else 'NOT met'}")


if __name__ == "__main__":
    main()
