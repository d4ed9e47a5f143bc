"""Draw a loss-curve diagnosis to SVG or PNG with matplotlib (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlens.core.curves import Diagnosis
from ftlens.errors import ConfigError, DataError

COLORS = {"train": "#1f77b4", "valid": "#d62728"}
TASK_COLORS = ("#6941c6", "#dc6803", "#0e9384", "#c11574")


def check_plot_path(out: str | Path) -> Path:
    path = Path(out)
    if path.suffix.lower() not in (".svg", ".png"):
        raise ConfigError(f"cannot plot to {path.name!r}", hint="use a .svg or .png file name")
    return path


def plot_diagnosis(d: Diagnosis, out: str | Path, title: str = "") -> Path:
    """Raw and smoothed train/validation loss, the noise band, the overfitting onset, the best
    checkpoint and epoch boundaries. The format follows the suffix (.svg or .png)."""
    path = check_plot_path(out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    try:
        _draw(ax, d)
        ax.set_title(title or "loss curves")
        fig.tight_layout()
        try:
            fig.savefig(path, format=path.suffix[1:].lower())
        except OSError as exc:
            raise DataError(f"cannot write the plot ({exc.strerror})", path=path,
                            hint="choose a writable location for --plot") from exc
    finally:
        plt.close(fig)
    return path


def _draw(ax: Any, d: Diagnosis) -> None:
    for name, s in (("train", d.train), ("valid", d.valid)):
        if s is None or not len(s.steps):
            continue
        c = COLORS[name]
        ax.plot(s.steps, s.raw, color=c, alpha=0.25, linewidth=0.8, label=f"{name} (raw)")
        ax.plot(s.steps, s.smooth, color=c, linewidth=2, label=f"{name} (smoothed)")
        ax.fill_between(s.steps, s.smooth - s.noise, s.smooth + s.noise, color=c, alpha=0.1,
                        linewidth=0, label=f"{name} noise band")
    for step in d.epoch_steps:
        ax.axvline(step, color="#999999", linewidth=0.6, linestyle=":")
    if d.overfit is not None:
        ax.axvline(d.overfit.onset_step, color="#d62728", linestyle="--", linewidth=1.2,
                   label=f"overfitting onset (step {d.overfit.onset_step})")
    if d.best_step is not None:
        ax.axvline(d.best_step, color="#2ca02c", linestyle="-.", linewidth=1.2,
                   label=f"best checkpoint (step {d.best_step})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.2)
    handles, labels = ax.get_legend_handles_labels()
    if d.peaks:  # the task metrics the diagnosis names, on a 0–1 axis of their own
        task = ax.twinx()
        for peak, color in zip(d.peaks, TASK_COLORS, strict=False):
            line = d.run.task_metrics[peak.column]
            task.plot(line.steps, line.values, color=color, linewidth=1.6, linestyle="--",
                      marker=".", label=f"validation {peak.name}")
        task.set_ylim(0, 1.02)
        task.set_ylabel("task metric")
        more_handles, more_labels = task.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, fontsize=7, loc="upper right")
