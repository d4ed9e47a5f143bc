"""Chart geometry for the report's inline SVG: pure arithmetic from the JSON to pixel paths.

The template draws what these functions compute; no text from the data reaches a path, and
labels go through the template's autoescaping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT = 720, 320
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 12, 36


@dataclass(frozen=True)
class Frame:
    """Data ranges mapped onto the plot area of a ``width`` x ``height`` SVG."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = PAD_LEFT
    right: int = PAD_RIGHT
    top: int = PAD_TOP
    bottom: int = PAD_BOTTOM

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom

    def x(self, v: float) -> float:
        span = (self.x_hi - self.x_lo) or 1.0
        return round(self.left + (v - self.x_lo) / span * self.plot_width, 1)

    def y(self, v: float) -> float:
        span = (self.y_hi - self.y_lo) or 1.0
        return round(self.top + (self.y_hi - v) / span * self.plot_height, 1)


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Path:
    d: str  # SVG path data
    kind: str  # CSS class: train-raw, train-smooth, train-band, valid-..., pr


@dataclass(frozen=True)
class VLine:
    x: float
    kind: str  # epoch, onset, best
    label: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    kind: str
    label: str


@dataclass(frozen=True)
class Chart:
    frame: Frame
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    x_label: str
    y_label: str
    paths: tuple[Path, ...] = ()
    vlines: tuple[VLine, ...] = ()
    dots: tuple[Dot, ...] = field(default_factory=tuple)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round numbers covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(count)]


def _label(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _line(frame: Frame, xs: Sequence[float], ys: Sequence[float | None]) -> str:
    """Path data through the points; a None value breaks the line."""
    parts: list[str] = []
    pen_down = False
    for x, y in zip(xs, ys, strict=True):
        if y is None or not math.isfinite(y):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{frame.x(x)},{frame.y(y)}")
        pen_down = True
    return " ".join(parts)


def _band(frame: Frame, xs: Sequence[float], mid: Sequence[float | None], half: float) -> str:
    """Closed polygons of mid ± half over each run of finite points."""
    polys, run = [], []
    for x, y in [*zip(xs, mid, strict=True), (0.0, None)]:
        if y is not None and math.isfinite(y):
            run.append((x, y))
            continue
        if len(run) >= 2:
            upper = [f"{frame.x(a)},{frame.y(b + half)}" for a, b in run]
            lower = [f"{frame.x(a)},{frame.y(b - half)}" for a, b in reversed(run)]
            polys.append("M" + " L".join(upper + lower) + " Z")
        run = []
    return " ".join(polys)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def loss_chart(curves: Mapping[str, Any]) -> Chart | None:
    """Raw and smoothed train/validation loss with noise bands, epoch ends, the overfitting
    onset and the best checkpoint. None when there are no points."""
    series = {name: s for name in ("train", "valid")
              if isinstance(s := curves.get(name), dict) and s.get("steps")}
    if not series:
        return None
    steps = [x for s in series.values() for x in s["steps"]]
    lows, highs = [], []
    for s in series.values():
        smooth = _finite(s["smooth"])
        lows += _finite(s["raw"]) + [v - s["noise"] for v in smooth]
        highs += _quantile(_finite(s["raw"]), 0.98) + [v + s["noise"] for v in smooth]
    if not lows:
        return None
    y_lo, y_hi = min(lows), max(highs)
    pad = (y_hi - y_lo) * 0.04 or 0.05
    y_lo = max(0.0, y_lo - pad) if y_lo >= 0 else y_lo - pad
    frame = Frame(min(steps), max(steps), y_lo, y_hi + pad)
    paths = []
    for name, s in series.items():
        paths += [Path(_band(frame, s["steps"], s["smooth"], float(s["noise"])), f"{name}-band"),
                  Path(_line(frame, s["steps"], s["raw"]), f"{name}-raw"),
                  Path(_line(frame, s["steps"], s["smooth"]), f"{name}-smooth")]
    vlines = [VLine(frame.x(e), "epoch", f"epoch end (step {e:g})")
              for e in curves.get("epoch_steps") or () if frame.x_lo <= e <= frame.x_hi]
    if isinstance(o := curves.get("overfitting"), dict):
        vlines.append(VLine(frame.x(o["onset_step"]), "onset",
                            f"overfitting onset (step {o['onset_step']:g})"))
    if isinstance(b := curves.get("best_checkpoint"), dict):
        vlines.append(VLine(frame.x(b["step"]), "best", f"best checkpoint (step {b['step']:g})"))
    return Chart(frame, _ticks(frame, "x"), _ticks(frame, "y"), "step", "loss",
                 tuple(paths), tuple(vlines))


TASK_LINES = 4  # task-metric curves drawn at most (the peaks the diagnosis names first)


def task_chart(curves: Mapping[str, Any]) -> tuple[Chart, list[str]] | None:
    """The task metrics over steps on a 0–1 scale, on the loss chart's step range, with the
    best checkpoint and each named peak; and the metrics' names in line order (``task-0``…).
    None when the run logged none."""
    task = curves.get("task_metrics") or {}
    lines = task.get("curves") or {}
    named = [p["metric"] for p in task.get("peaks") or () if p.get("metric") in lines]
    names = list(dict.fromkeys(named))[:TASK_LINES]
    if not names:
        return None
    steps = [x for name in names for x in lines[name]["steps"]]
    for key in ("train", "valid"):
        if isinstance(s := curves.get(key), dict):
            steps += s.get("steps") or []
    frame = Frame(min(steps), max(steps), 0.0, 1.0)
    paths = [Path(_line(frame, lines[n]["steps"], lines[n]["values"]), f"task-{i}")
             for i, n in enumerate(names)]
    dots = [Dot(frame.x(p["step"]), frame.y(p["value"]), f"task-{names.index(p['metric'])}",
                f"{p['name']} peaks at step {p['step']:g} ({p['value']:.3f})")
            for p in task.get("peaks") or () if p.get("metric") in names]
    vlines = [VLine(frame.x(e), "epoch", f"epoch end (step {e:g})")
              for e in curves.get("epoch_steps") or () if frame.x_lo <= e <= frame.x_hi]
    if isinstance(b := curves.get("best_checkpoint"), dict):
        vlines.append(VLine(frame.x(b["step"]), "best", f"best checkpoint (step {b['step']:g})"))
    shown = [next((p["name"] for p in task["peaks"] if p["metric"] == n), n) for n in names]
    return Chart(frame, _ticks(frame, "x"), _ticks(frame, "y"), "step", "validation",
                 tuple(paths), tuple(vlines), tuple(dots)), shown


def _quantile(values: list[float], q: float) -> list[float]:
    if not values:
        return []
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]]


def _ticks(frame: Frame, axis: str) -> tuple[Tick, ...]:
    lo, hi = (frame.x_lo, frame.x_hi) if axis == "x" else (frame.y_lo, frame.y_hi)
    place = frame.x if axis == "x" else frame.y
    if lo < 0 < 1 < hi <= 1.1:  # a probability axis padded for its markers
        lo, hi = 0.0, 1.0
    return tuple(Tick(place(v), _label(v)) for v in nice_ticks(lo, hi) if lo <= v <= hi)


def pr_chart(threshold: Mapping[str, Any]) -> Chart | None:
    """Precision against recall, with the chosen threshold and the threshold 0.5 marked."""
    points = threshold.get("curves", {}).get("pr", {}).get("points") or []
    if not points:
        return None
    frame = Frame(-0.02, 1.02, -0.02, 1.02, width=420, height=320)
    path = Path(_line(frame, [p[0] for p in points], [p[1] for p in points]), "pr")
    dots = []
    for key, kind, name in (("at_0_5", "half", "threshold 0.5"), ("chosen", "chosen", "chosen")):
        if isinstance(p := threshold.get(key), dict):
            dots.append(Dot(frame.x(p["recall"]), frame.y(p["precision"]), kind,
                            f"{name}: threshold {p['threshold']:.4g}, precision "
                            f"{p['precision']:.1%}, recall {p['recall']:.1%}"))
    return Chart(frame, _ticks(frame, "x"), _ticks(frame, "y"), "recall", "precision",
                 (path,), (), tuple(dots))
