"""The terminal page of a loss-curve diagnosis (``ftlens curves``, and the end of
``ftlens train`` and ``ftlens curves --follow``)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.markup import escape

from ftlens.cli import render

if TYPE_CHECKING:
    from ftlens.core.curves import Diagnosis

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int = 60, lo: float | None = None,
              hi: float | None = None) -> str:
    """Values (NaN shown as a space) as unicode blocks, averaged into ``width`` columns."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return ""
    edges = np.linspace(0, len(v), min(width, len(v)) + 1).astype(int)
    cols = [v[a:b] for a, b in itertools.pairwise(edges)]
    means = np.array([c[np.isfinite(c)].mean() if np.isfinite(c).any() else np.nan
                      for c in cols])
    finite = means[np.isfinite(means)]
    if not len(finite):
        return " " * len(means)
    lo = float(finite.min()) if lo is None else lo
    hi = float(finite.max()) if hi is None else hi
    scale = (hi - lo) or 1.0
    return "".join(" " if not np.isfinite(m) else
                   BLOCKS[int(np.clip((m - lo) / scale * (len(BLOCKS) - 1), 0, len(BLOCKS) - 1))]
                   for m in means)


def show_diagnosis(console: Console, d: Diagnosis, plot_path: str | None = None) -> None:
    n = len(d.run.train_loss)
    console.print(f"[bold]ftlens curves[/]  {escape(d.run.source)} · {n:,} training steps"
                  + (f", {len(d.valid.steps):,} validation points" if d.valid else "") + "\n")
    rows = [("train raw", d.train.raw), ("train smoothed", d.train.smooth)]
    if d.valid is not None:
        rows += [("valid raw", d.valid.raw), ("valid smoothed", d.valid.smooth)]
    every = np.concatenate([r for _, r in rows])
    every = every[np.isfinite(every)]
    lo, hi = (float(every.min()), float(every.max())) if len(every) else (0.0, 1.0)
    for name, values in rows:
        console.print(f"  {name:<15} {sparkline(values, lo=lo, hi=hi)}")
    console.print(f"  [dim]scale {lo:.3g} … {hi:.3g}; steps {int(d.train.steps[0]) if n else 0}"
                  f" … {int(d.train.steps[-1]) if n else 0}[/]\n")
    for peak in d.peaks:  # task metrics on their own 0–1 scale
        values = d.run.task_metrics[peak.column].values
        console.print(f"  {escape(peak.name)[:15]:<15} {sparkline(values, lo=0.0, hi=1.0)}  "
                      f"[dim]peak {peak.value:.3f} at step {peak.step}, {peak.end:.3f} at the "
                      "end[/]")
    if d.peaks:
        console.print(f"  [dim]task metrics on 0 … 1; the best checkpoint is chosen by "
                      f"{escape(d.rule)}[/]\n")
    render.findings(console, d.findings)
    if plot_path:
        console.print(f"\nplot: {escape(plot_path)}")
    render.verdict(console, d.verdict, d.findings)
