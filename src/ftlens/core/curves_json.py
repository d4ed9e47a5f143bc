"""A loss-curve diagnosis as JSON-ready data (``ftlens curves --json``, the HTML report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ftlens.core.curves import Diagnosis
    from ftlens.core.smoothing import Smoothed

MAX_POINTS = 500


def thin_indices(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, limit)).astype(int)) if n else (
        np.array([], dtype=int))


def _series(s: Smoothed | None) -> dict[str, Any] | None:
    if s is None:
        return None
    idx = thin_indices(len(s.steps))
    return {
        "points": len(s.steps), "noise": s.noise, "band": s.band, "span": s.span,
        "steps": s.steps[idx].tolist(), "raw": [_num(v) for v in s.raw[idx]],
        "smooth": [_num(v) for v in s.smooth[idx]],
    }


def _num(v: float) -> float | None:
    return round(float(v), 6) if np.isfinite(v) else None


def _tasks(d: Diagnosis) -> dict[str, Any]:
    """Every task metric's curve (thinned) and the peaks the diagnosis names."""
    curves = {}
    for name, s in d.run.task_metrics.items():
        idx = thin_indices(len(s.steps))
        curves[name] = {"steps": s.steps[idx].tolist(), "values": [_num(v) for v in s.values[idx]]}
    return {"curves": curves, "peaks": [{"metric": p.column, "name": p.name, "step": p.step,
                                         "value": p.value, "end": p.end, "rows": p.rows}
                                        for p in d.peaks]}


def diagnosis_to_dict(d: Diagnosis) -> dict[str, Any]:
    o = d.overfit
    return {
        "verdict": d.verdict, "source": d.run.source,
        "train": _series(d.train), "valid": _series(d.valid),
        "trend": {"slope": d.train_trend.slope, "tau": d.train_trend.tau,
                  "p_value": d.train_trend.p_value},
        "overfitting": None if o is None else {
            "onset_step": o.onset_step, "detected_step": o.detected_step, "rise": o.rise,
            "gap": o.gap},
        "best_checkpoint": {"step": d.best_step, "from": d.best_from, "by": d.best_what,
                            "metric": d.selected, "rule": d.rule} if d.best_step else None,
        "task_metrics": _tasks(d),
        "epoch_steps": list(d.epoch_steps),
        "checkpoint_steps": list(d.run.checkpoint_steps or ()),
        "total_steps": d.run.total_steps,
        "findings": [f.to_dict() for f in d.findings],
    }
