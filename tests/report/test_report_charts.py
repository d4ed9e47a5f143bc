"""Chart geometry for the inline SVG."""

from __future__ import annotations

import pytest

from ftlens.report.charts import Frame, loss_chart, nice_ticks, pr_chart, task_chart


@pytest.mark.parametrize(("lo", "hi", "ticks"), [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (1.0, 48.0, [10.0, 20.0, 30.0, 40.0]),
    (0.013, 2.06, [0.5, 1.0, 1.5, 2.0]),
    (3.0, 3.0, [3.0]),
])
def test_nice_ticks(lo: float, hi: float, ticks: list[float]) -> None:
    assert nice_ticks(lo, hi) == ticks


def test_frame_maps_data_to_the_plot_area() -> None:
    f = Frame(0.0, 10.0, 0.0, 1.0, width=200, height=100, left=10, right=10, top=5, bottom=15)
    assert (f.x(0), f.x(10), f.y(0), f.y(1)) == (10, 190, 85, 5)


def series(values: list[float | None]) -> dict[str, object]:
    return {"steps": list(range(1, len(values) + 1)), "raw": values, "smooth": values,
            "noise": 0.1}


def test_loss_chart_breaks_lines_at_missing_values() -> None:
    chart = loss_chart({"train": series([2.0, 1.5, None, 1.0, 0.8]), "valid": None,
                        "overfitting": {"onset_step": 4}, "best_checkpoint": {"step": 3},
                        "epoch_steps": [2, 4, 99]})
    assert chart is not None
    raw = next(p for p in chart.paths if p.kind == "train-raw")
    assert raw.d.count("M") == 2 and raw.d.count("L") == 2
    band = next(p for p in chart.paths if p.kind == "train-band")
    assert band.d.count("Z") == 2
    assert [v.kind for v in chart.vlines] == ["epoch", "epoch", "onset", "best"]
    assert chart.frame.y_lo >= 0  # losses never go below zero on the axis


def test_no_points_no_chart() -> None:
    assert loss_chart({"train": None, "valid": None}) is None
    assert loss_chart({"train": series([])}) is None
    assert pr_chart({"curves": {"pr": {"points": []}}}) is None


def test_pr_chart_marks_the_chosen_threshold() -> None:
    point = {"threshold": 0.7, "precision": 1.0, "recall": 0.5}
    chart = pr_chart({"curves": {"pr": {"points": [[1.0, 0.3], [0.5, 1.0], [0.0, 1.0]]}},
                      "chosen": point, "at_0_5": {**point, "threshold": 0.5}})
    assert chart is not None
    chosen = next(d for d in chart.dots if d.kind == "chosen")
    assert (chosen.x, chosen.y) == (chart.frame.x(0.5), chart.frame.y(1.0))
    assert [t.label for t in chart.x_ticks] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]


def test_task_chart_draws_the_named_peaks_on_the_loss_step_range() -> None:
    peaks = [{"metric": "classification/recall/spam", "name": "recall(spam)", "step": 30,
              "value": 0.9}, {"metric": "classification/macro_f1", "name": "macro-F1",
                              "step": 40, "value": 0.8}]
    curves = {"train": series([2.0, 1.0, 0.5] * 20), "best_checkpoint": {"step": 30},
              "task_metrics": {"peaks": peaks, "curves": {
                  "classification/recall/spam": {"steps": [10, 30, 50],
                                                 "values": [0.5, 0.9, 0.6]},
                  "classification/macro_f1": {"steps": [10, 40], "values": [0.4, 0.8]},
                  "classification/rows": {"steps": [10, 30], "values": [50, 50]}}}}
    got = task_chart(curves)
    assert got is not None
    chart, names = got
    assert names == ["recall(spam)", "macro-F1"]  # rows is no curve to draw
    assert [p.kind for p in chart.paths] == ["task-0", "task-1"]
    assert (chart.frame.x_lo, chart.frame.x_hi, chart.frame.y_lo, chart.frame.y_hi) == (
        1, 60, 0.0, 1.0)
    dot = chart.dots[0]
    assert (dot.x, dot.y) == (chart.frame.x(30), chart.frame.y(0.9))
    assert [v.kind for v in chart.vlines] == ["best"]
    assert task_chart({"train": series([1.0, 0.5])}) is None
