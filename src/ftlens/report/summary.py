"""``report.json``: the verdict, every finding, the key numbers and the provenance, with stable
keys for machines (CI gates, dashboards). Pure; the caller adds ``generated``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftlens.report.model import SECTION_ORDER, Report, Section

SCHEMA = "ftlens.report/1"
DUPLICATE_KEYS = (("duplicate_groups", "duplicates"), ("leaked_inputs", "leakage"),
                  ("conflicting_inputs", "conflicting_labels"))


def report_json(report: Report, *, ftlens_version: str, generated: str | None) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for name in SECTION_ORDER:
        s = report.section(name)
        sections[name] = None if s is None else {
            "source": s.source, "verdict": s.verdict, "note": s.note or None,
            "counts": {sev: sum(f.severity == sev for f in s.findings)
                       for sev in ("fail", "warn", "info")}}
    return {
        "schema": SCHEMA,
        "title": report.title,
        "verdict": report.verdict,
        "reasons": [r.to_dict() for r in report.decision.reasons],
        "sections": sections,
        "findings": [{"section": s.name, "id": f.id, "severity": f.severity, "title": f.title,
                      "evidence": f.evidence, "advice": f.advice,
                      "inconclusive": f.inconclusive} for s, f in report.findings],
        "key_numbers": key_numbers(report),
        "provenance": None if report.provenance is None else report.provenance.to_dict(),
        "ftlens_version": ftlens_version,
        "generated": generated,
    }


def key_numbers(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, fn in (("audit", _audit), ("curves", _curves), ("eval", _eval)):
        s = report.section(name)
        out[name] = None if s is None else fn(s)
    return out


def _count(s: Section, finding_id: str) -> int:
    counts = [f.details.get("count") for f in s.findings if f.id == finding_id]
    return sum(c for c in counts if isinstance(c, int))


def _audit(s: Section) -> dict[str, Any]:
    d = s.data
    cost = d.get("cost") or {}
    labels = d.get("labels") or {}
    near = (d.get("near_duplicates") or {}).get("pairs") or []
    return {
        "examples": {k: v["examples"] for k, v in d["splits"].items()},
        "format_errors": {k: sum(v["format_errors"].values()) for k, v in d["splits"].items()},
        "model": d["model"].get("name"),
        "epochs": cost.get("epochs"),
        "billed_tokens": cost.get("billed_tokens"),
        "cost_usd": cost.get("usd"),
        "labels": labels.get("labels"),
        "imbalance_ratio": labels.get("imbalance_ratio"),
        **{key: _count(s, finding_id) for key, finding_id in DUPLICATE_KEYS},
        "near_duplicate_pairs": len(near),
    }


def _last(series: Any) -> float | None:
    if not isinstance(series, Mapping):
        return None
    finite = [v for v in series.get("smooth") or [] if v is not None]
    return finite[-1] if finite else None


def _curves(s: Section) -> dict[str, Any]:
    d = s.data
    train = d.get("train") or {}
    best = d.get("best_checkpoint") or {}
    overfit = d.get("overfitting") or {}
    return {
        "train_points": train.get("points", len(train.get("steps") or [])),
        "final_train_loss": _last(d.get("train")),
        "final_valid_loss": _last(d.get("valid")),
        "best_checkpoint_step": best.get("step"),
        "overfitting_onset_step": overfit.get("onset_step"),
        "trend_p_value": (d.get("trend") or {}).get("p_value"),
    }


def _eval(s: Section) -> dict[str, Any]:
    d = s.data
    m = d["metrics"]
    boot = d.get("bootstrap") or {}
    out: dict[str, Any] = {
        "n": m["n"], "n_unparseable": m.get("n_unparseable"),
        "accuracy": m["accuracy"], "accuracy_ci": boot.get("accuracy") or m.get("accuracy_ci"),
        "macro_f1": (m.get("macro") or {}).get("f1"), "macro_f1_ci": boot.get("macro_f1"),
        "mcc": m.get("mcc"), "positive": d.get("positive"),
        "per_class": {c["label"]: {"precision": c["precision"], "recall": c["recall"],
                                   "f1": c["f1"], "support": c["support"]}
                      for c in m["per_class"]},
        "threshold": None, "comparison": None,
    }
    t = d.get("threshold")
    if t:
        chosen = t.get("chosen") or {}
        curves = t.get("curves") or {}
        out["threshold"] = {
            "positive": t["positive"], "rule": t.get("rule"), "chosen": chosen.get("threshold"),
            "precision": chosen.get("precision"), "recall": chosen.get("recall"),
            "f1": chosen.get("f1"), "roc_auc": curves.get("roc_auc"),
            "average_precision": curves.get("average_precision")}
    c = d.get("comparison")
    if c:
        acc = next((x for x in c["differences"] if x["name"] == "accuracy"), None)
        out["comparison"] = {
            "n": c["n"], "mcnemar_p": c.get("mcnemar_p"),
            "accuracy_difference": None if acc is None else acc["estimate"],
            "accuracy_difference_ci": None if acc is None else acc.get("ci"),
            "significant": None if acc is None else acc.get("significant")}
    return out
