"""Benchmark: diagnosing a 100,000-step run (issue 4). Target: under 1 s.

Writes a synthetic 100,000-step OpenAI result CSV (validation every 10 steps) and times, in
the same run: the baseline — parsing the CSV with the standard csv module into floats — and
ftlens reading it and diagnosing it (smoothing, noise, Theil–Sen trend, overfitting onset by
unimodal regression, best checkpoint), for a clean and an overfitting run, and for validation
logged on every step.

    python bench/curves.py [--steps 100000]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.curve_generator import generate

from ftlens.core.curves import diagnose
from ftlens.io.training_logs import read_run


def write_csv(path: Path, kind: str, steps: int, valid_every: int) -> None:
    run, _ = generate(kind, 1, n_steps=steps)
    vs = run.valid_loss.steps
    valid = dict(zip(vs.tolist(), np.interp(vs, vs, run.valid_loss.values).tolist(),
                     strict=True))
    if valid_every == 1:
        valid = dict(zip(run.train_loss.steps.tolist(),
                         np.interp(run.train_loss.steps, vs, run.valid_loss.values).tolist(),
                         strict=True))
    with path.open("w") as f:
        f.write("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n")
        for s, v in zip(run.train_loss.steps.tolist(), run.train_loss.values.tolist(),
                        strict=True):
            vl = valid.get(s)
            f.write(f"{s},{v:.6g},0.5,{'' if vl is None else f'{vl:.6g}'},"
                    f"{'' if vl is None else 0.5}\n")


def parse_only(path: Path) -> float:
    start = time.perf_counter()
    with path.open() as f:
        rows = csv.reader(f)
        next(rows)
        for row in rows:
            [float(x) for x in row if x]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, every in (("clean", 10), ("overfit", 10), ("overfit", 1)):
            path = Path(tmp) / f"{kind}-{every}.csv"
            write_csv(path, kind, args.steps, every)
            base = min(parse_only(path) for _ in range(3))
            t0 = time.perf_counter()
            run = read_run(path)
            t1 = time.perf_counter()
            d = diagnose(run)
            t2 = time.perf_counter()
            print(f"{kind:8} {args.steps:,} steps, validation every {every:>2}: csv parse-only "
                  f"{base:.2f} s | ftlens read {t1 - t0:.2f} s, diagnose {t2 - t1:.2f} s "
                  f"({'under' if t2 - t1 < 1 else 'OVER'} 1 s) -> "
                  f"{sorted(f.id for f in d.findings)}")


if __name__ == "__main__":
    main()
