"""What each HTML section shows, computed from the checked JSON. Pure; the template only lays
it out (and escapes every string)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftlens.report import charts
from ftlens.report.model import Section

MAX_ROWS = 100  # rows per detail table (format errors, duplicate groups, near pairs)
DUPLICATE_KINDS = {"duplicates": "duplicate", "leakage": "leaked across splits",
                   "conflicting_labels": "conflicting labels"}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _place(p: Mapping[str, Any]) -> str:
    return f"{p.get('split')}:{p.get('line')}"


def audit_view(s: Section) -> dict[str, Any]:
    d = s.data
    splits = [{"name": name, **split, "n_errors": sum(split["format_errors"].values()),
               "n_warnings": sum((split.get("warnings") or {}).values())}
              for name, split in d["splits"].items()]
    issues, dups = [], []
    for f in s.findings:
        if f.id in ("format_error", "non_utf8"):
            issues += [{"split": f.details.get("split"), **i}
                       for i in _dicts(f.details.get("issues"))]
        if f.id in DUPLICATE_KINDS:
            dups += [{"kind": DUPLICATE_KINDS[f.id],
                      "places": " = ".join(_place(p) for p in _dicts(g.get("places"))),
                      "labels": ", ".join(str(x) for x in g.get("labels") or [])}
                     for g in _dicts(f.details.get("groups"))]
    near = [{"a": _place(p.get("a") or {}), "b": _place(p.get("b") or {}),
             "similarity": p.get("similarity")}
            for p in _dicts((d.get("near_duplicates") or {}).get("pairs"))]
    return {
        "model": d["model"], "tokenizer": d.get("tokenizer") or {}, "splits": splits,
        "cost": d.get("cost"), "labels": _labels(d.get("labels")),
        "issues": issues[:MAX_ROWS], "more_issues": max(0, len(issues) - MAX_ROWS),
        "duplicates": dups[:MAX_ROWS], "more_duplicates": max(0, len(dups) - MAX_ROWS),
        "near": near[:MAX_ROWS], "more_near": max(0, len(near) - MAX_ROWS),
        "near_threshold": (d.get("near_duplicates") or {}).get("threshold"),
    }


def _labels(labels: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Counts and shares per label and split."""
    if not labels:
        return None
    counts: Mapping[str, Mapping[str, int]] = labels["counts"]
    names = [str(x) for x in labels["labels"]]
    totals = {split: sum(c.values()) or 1 for split, c in counts.items()}
    rows = [{"label": name, "cells": [{"count": counts[split].get(name, 0),
                                       "share": counts[split].get(name, 0) / totals[split]}
                                      for split in counts]} for name in names]
    return {**labels, "splits": list(counts), "rows": rows}


def curves_view(s: Section) -> dict[str, Any]:
    d = s.data
    stats = []
    for name in ("train", "valid"):
        series = d.get(name)
        if isinstance(series, dict) and series.get("steps"):
            smooth = [v for v in series["smooth"] if v is not None]
            stats.append({"name": "training" if name == "train" else "validation",
                          "points": series.get("points", len(series["steps"])),
                          "first": smooth[0] if smooth else None,
                          "last": smooth[-1] if smooth else None,
                          "noise": series["noise"]})
    task = charts.task_chart(d)
    return {"chart": charts.loss_chart(d), "stats": stats, "trend": d.get("trend") or {},
            "task_chart": task[0] if task else None, "task_names": task[1] if task else [],
            "overfitting": d.get("overfitting"), "best": d.get("best_checkpoint"),
            "source": d.get("source"), "total_steps": d.get("total_steps"), "note": s.note}


def confusion_view(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The confusion matrix as a heat map: counts, and rates of each true class's row."""
    conf = metrics["confusion"]
    rows = []
    for label, counts in zip(conf["rows"], conf["matrix"], strict=True):
        total = sum(counts)
        rows.append({"label": label, "total": total, "cells": [
            {"count": n, "rate": n / total if total else 0.0,
             "alpha": round(0.06 + 0.8 * (n / total if total else 0.0), 3),
             "diagonal": col == label} for col, n in zip(conf["columns"], counts, strict=True)]})
    return {"columns": conf["columns"], "rows": rows}


def eval_view(s: Section) -> dict[str, Any]:
    d = s.data
    m = d["metrics"]
    boot = d.get("bootstrap") or {}
    per_boot = boot.get("per_class") or {}
    per_class = [{**c, "ci": per_boot.get(c["label"]) or {
        "precision": c.get("precision_wilson"), "recall": c.get("recall_wilson")}}
        for c in m["per_class"]]
    return {
        "positive": d.get("positive"), "metrics": m, "boot": boot, "per_class": per_class,
        "confusion": confusion_view(m), "threshold": threshold_view(d.get("threshold"), m),
        "comparison": d.get("comparison"), "leakage": d.get("leakage"),
        "checkpoint": d.get("checkpoint"),
    }


def threshold_view(t: Mapping[str, Any] | None, metrics: Mapping[str, Any]
                   ) -> dict[str, Any] | None:
    if not t:
        return None
    chart = charts.pr_chart(t)
    labels = [str(x) for x in metrics["confusion"]["rows"]]
    positive = t["positive"]
    others = [x for x in labels if x != positive]
    negative = others[0] if len(others) == 1 else f"not {positive}"
    chosen = t.get("chosen")
    # the slider starts at the chosen threshold, rounded as the embedded scores are
    start = round(float(chosen["threshold"]), 6) if chosen else 0.5
    slider = {
        "positive": positive, "negative": negative, "scores": t["scores"],
        "is_positive": t["is_positive"], "start": start,
        # where recall and precision 0 and 1 fall on the PR chart, for the slider's marker
        "plot": None if chart is None else {
            "x0": chart.frame.x(0.0), "x1": chart.frame.x(1.0),
            "y0": chart.frame.y(0.0), "y1": chart.frame.y(1.0)},
    }
    return {**t, "chart": chart, "negative": negative, "slider": slider,
            "curves": t.get("curves") or {}}
