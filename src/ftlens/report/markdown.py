"""``report.md``: a short Markdown summary to paste into a pull request. Pure.

Every piece of text from the data is escaped: HTML-significant characters become entities
(GitHub renders them as text) and Markdown syntax characters are backslash-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ftlens.report.model import SECTION_ORDER, Report

MARK = {"fail": "❌", "warn": "⚠️", "info": "ℹ️"}
BANNER = {"ready": "✅ READY", "not_ready": "❌ NOT READY", "inconclusive": "⚠️ INCONCLUSIVE"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: Any) -> str:
    """User text safe inside Markdown (also inside a table cell), on one line."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def ci(pair: Any) -> str:
    return "" if not pair else f" (95 % CI {pct(pair[0])}–{pct(pair[1])})"


def markdown_summary(report: Report) -> str:
    lines = [f"## ftlens report: {BANNER[report.verdict]}", "",
             f"Run {md(report.title)}", "", "**Why**", "",
             *[f"{i}. {md(r.text)}" for i, r in enumerate(report.decision.reasons, 1)], "",
             "| section | verdict | fail | warn | source |", "|---|---|---:|---:|---|"]
    for name in SECTION_ORDER:
        s = report.section(name)
        if s is None:
            continue
        fails = sum(f.severity == "fail" for f in s.findings)
        warns = sum(f.severity == "warn" for f in s.findings)
        lines.append(f"| {s.title} | {s.verdict.replace('_', ' ')} | {fails} | {warns} | "
                     f"{md(s.source)} |")
    numbers = _key_numbers(report)
    if numbers:
        lines += ["", "**Key numbers**", "", *[f"- {n}" for n in numbers]]
    main = [(s, f) for s, f in report.findings if f.severity != "info"]
    info = [(s, f) for s, f in report.findings if f.severity == "info"]
    lines += ["", "**Findings**", ""]
    lines += [_finding(s.title, f) for s, f in main] or ["- no failures or warnings"]
    if info:
        lines += ["", f"<details><summary>{len(info)} informational</summary>", "",
                  *[_finding(s.title, f) for s, f in info], "", "</details>"]
    lines += _provenance(report)
    return "\n".join(lines) + "\n"


def _finding(section: str, f: Any) -> str:
    text = f"- {MARK[f.severity]} **{md(f.title)}** ({section}, {md(f.id)}): {md(f.evidence)}"
    return text + (f" → {md(f.advice)}" if f.advice else "")


def _key_numbers(report: Report) -> list[str]:
    out = []
    if (a := report.section("audit")) is not None:
        splits = a.data["splits"]
        sizes = ", ".join(f"{md(k)} {v['examples']:,}" for k, v in splits.items())
        cost = a.data.get("cost") or {}
        usd = f", ≈ ${cost['usd']:.2f}" if cost.get("usd") is not None else ""
        billed = (f"; {cost['billed_tokens']:,} billed tokens ({cost.get('epochs')} epochs"
                  f"{usd})") if cost else ""
        out.append(f"data: {sizes} examples{billed}")
    if (c := report.section("curves")) is not None:
        best = (c.data.get("best_checkpoint") or {}).get("step")
        onset = (c.data.get("overfitting") or {}).get("onset_step")
        text = "loss: " + (f"best checkpoint at step {best}" if best else "no best checkpoint")
        out.append(text + (f"; overfitting from step {onset}" if onset is not None else ""))
    if (e := report.section("eval")) is not None:
        out += _eval_numbers(e.data)
    return out


def _eval_numbers(d: Mapping[str, Any]) -> list[str]:
    m = d["metrics"]
    boot = d.get("bootstrap") or {}
    out = [f"accuracy {pct(m['accuracy'])}{ci(boot.get('accuracy') or m.get('accuracy_ci'))}"
           f", macro-F1 {pct((m.get('macro') or {}).get('f1'))}{ci(boot.get('macro_f1'))}"
           f" on {m['n']:,} examples"]
    for c in m["per_class"]:
        if d.get("positive") in (None, c["label"]):
            out.append(f"{md(c['label'])}: precision {pct(c['precision'])}, recall "
                       f"{pct(c['recall'])}, F1 {pct(c['f1'])} (support {c['support']:,})")
    t = d.get("threshold") or {}
    if chosen := t.get("chosen"):
        out.append(f"threshold {chosen['threshold']:.4g} for {md(t['positive'])} "
                   f"({md(t.get('rule', ''))}): precision {pct(chosen['precision'])}, recall "
                   f"{pct(chosen['recall'])}")
    if c := d.get("comparison"):
        acc = next((x for x in c["differences"] if x["name"] == "accuracy"), None)
        if acc is not None:
            sig = "significant" if acc.get("significant") else "not significant"
            p = c.get("mcnemar_p")
            out.append(f"vs baseline: accuracy {acc['estimate']:+.1%}{ci(acc.get('ci'))}, "
                       f"{sig} (McNemar p = {'n/a' if p is None else f'{p:.2g}'})")
    return out


def _provenance(report: Report) -> list[str]:
    p = report.provenance
    if p is None:
        return []
    parts = []
    if p.model:
        parts.append(f"model {md(p.model)}")
    if p.base_model:
        parts.append(f"base {md(p.base_model)}")
    parts += [f"{md(f.name)} {md(f.path)} (sha256 {md(f.sha256[:12])})" for f in p.data]
    if p.ftlens_version:
        parts.append(f"ftlens {md(p.ftlens_version)}")
    if p.date:
        parts.append(md(p.date))
    return ["", "**Provenance**: " + "; ".join(parts)] if parts else []
