"""The audit report as plain JSON-ready data (``ftlens audit --json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftlens.core.audit import AuditReport
    from ftlens.core.tokens import TokenStats


def _tokens(stats: TokenStats) -> dict[str, Any]:
    return {
        "examples": stats.n_examples, "counted": stats.n_counted, "exact": stats.exact,
        "min": stats.min, "mean": round(stats.mean, 2), "p50": stats.p50, "p90": stats.p90,
        "max": stats.max, "total": round(stats.total), "limit": stats.limit,
        "billed_per_epoch": round(stats.billed_per_epoch),
        "billed_per_epoch_margin": round(stats.billed_per_epoch_margin),
        "over_limit_lines": list(stats.over_limit_lines),
    }


def audit_to_dict(report: AuditReport) -> dict[str, Any]:
    opts = report.options
    splits = {
        name: {
            "path": scan.path, "lines": scan.n_lines, "examples": scan.n_examples,
            "format": scan.data_format,
            "format_errors": dict(scan.issue_counts), "warnings": dict(scan.warning_counts),
            "bom": scan.bom, "tokens": _tokens(report.tokens[name]),
            "removable_lines": sorted(report.removable.get(name, ())),
        }
        for name, scan in report.splits.items()
    }
    cost = report.cost
    labels = report.labels
    return {
        "verdict": report.verdict,
        "model": {"name": opts.model.name, "context_limit": opts.model.context_limit,
                  "encoding": opts.model.encoding},
        "tokenizer": {"description": opts.tokenizer, "exact": opts.tokenizer_exact},
        "splits": splits,
        "cost": None if cost is None else {
            "estimate": True, "epochs": cost.epochs, "billed_tokens": round(cost.billed_tokens),
            "billed_tokens_margin": round(cost.billed_margin),
            "price_per_1m_usd": cost.price_per_1m,
            "usd": None if cost.usd is None else round(cost.usd, 4),
        },
        "labels": None if labels is None else {
            "labels": list(labels.labels), "counts": labels.counts,
            "majority": labels.majority, "imbalance_ratio": round(labels.imbalance_ratio, 3),
            "baseline_accuracy": {k: round(v, 4) for k, v in labels.baseline_accuracy.items()},
            "rare": dict(labels.rare), "unseen": {k: list(v) for k, v in labels.unseen.items()},
        },
        "near_duplicates": {"threshold": opts.near_threshold, "pairs": [
            {"a": {"split": p.a[0], "line": p.a[1]}, "b": {"split": p.b[0], "line": p.b[1]},
             "similarity": round(p.similarity, 4)} for p in report.near]},
        "findings": [f.to_dict() for f in report.findings],
    }
