"""The terminal page of ``ftlens audit``."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ftlens.cli import render
from ftlens.core.audit import AuditReport
from ftlens.core.wording import first, plural, runs

MAX_ISSUE_ROWS = 20


def show_report(console: Console, report: AuditReport,
                cleaned: dict[str, dict[str, int | str]] | None = None) -> None:
    opts = report.options
    console.print(f"[bold]ftlens audit[/]  model {escape(opts.model.name)} · tokens: "
                  f"{escape(opts.tokenizer)}\n")
    console.print(_splits_table(report))
    issues = _issues_table(report)
    if issues is not None:
        console.print(issues)
    if report.labels is not None:
        console.print(_labels_table(report))
    if report.cost is not None:
        c = report.cost
        money = "unknown price" if c.usd is None else f"≈ ${c.usd:,.2f}"
        margin = f" ± {c.billed_margin:,.0f}" if c.billed_margin else ""
        console.print(f"estimated training bill: {c.billed_tokens:,.0f}{margin} tokens "
                      f"({c.epochs} epochs) {money} [dim](estimate)[/]\n")
    render.findings(console, report.findings)
    if cleaned:
        console.print("\n[bold]clean copies written:[/]")
        for split, info in cleaned.items():
            console.print(f"  {split}: {escape(str(info['path']))}  kept {info['kept']}, "
                          f"removed {info['removed']}")
    render.verdict(console, report.verdict, report.findings)


def _splits_table(report: AuditReport) -> Table:
    t = Table(title="splits", title_justify="left", show_edge=False)
    for col in ("split", "lines", "examples", "errors", "tokens mean", "p90", "max",
                "over limit"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for split, scan in report.splits.items():
        tok = report.tokens[split]
        approx = "" if tok.exact else "≈"
        t.add_row(
            split, f"{scan.n_lines:,}",
            f"{scan.n_examples:,}" + (" pairs" if scan.data_format == "preference" else ""),
            f"{sum(scan.issue_counts.values()):,}", f"{approx}{tok.mean:,.1f}",
            f"{approx}{tok.p90:,.0f}", f"{tok.max:,}", f"{len(tok.over_limit_lines):,}",
        )
    t.caption = "  ".join(f"{s}: {escape(scan.path)}" for s, scan in report.splits.items())
    t.caption_justify = "left"
    return t


def _issues_table(report: AuditReport) -> Table | None:
    """One row per distinct problem of a split: identical messages on many lines are one row
    ("15 lines: …") naming the first lines, not fifteen."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for split, scan in report.splits.items():
        for i in sorted(scan.issues, key=lambda i: i.line):
            groups.setdefault((split, i.message, i.hint), []).append(i.line)
    if not groups:
        return None
    t = Table(title="format problems", title_justify="left", show_edge=False)
    for col in ("where", "problem", "how to fix"):
        t.add_column(col)
    rows = list(groups.items())
    for (split, message, hint), lines in rows[:MAX_ISSUE_ROWS]:
        count = f"{plural(len(lines), 'line')}: " if len(lines) > 1 else ""
        t.add_row(f"{split}:{first(runs(lines), 3)}", escape(count + message), escape(hint))
    if len(rows) > MAX_ISSUE_ROWS:
        left = rows[MAX_ISSUE_ROWS:]
        t.caption = (f"… and {plural(len(left), 'more problem')} on "
                     f"{plural(sum(len(lines) for _, lines in left), 'line')} (see --json)")
        t.caption_justify = "left"
    return t


def _labels_table(report: AuditReport) -> Table:
    labels = report.labels
    assert labels is not None
    t = Table(title="labels (final assistant answer)", title_justify="left", show_edge=False)
    t.add_column("label")
    splits = list(labels.counts)
    for split in splits:
        t.add_column(split, justify="right")
    for label in labels.labels:
        cells = []
        for split in splits:
            counts = labels.counts[split]
            n, total = counts.get(label, 0), sum(counts.values())
            cells.append(f"{n:,} ({n / total:.0%})" if total else "0")
        t.add_row(escape(label), *cells)
    t.caption_justify = "left"
    t.caption = (f"imbalance {labels.imbalance_ratio:.1f}:1 · always '{escape(labels.majority)}'"
                 " scores " + ", ".join(f"{s} {a:.1%}" for s, a in
                                        labels.baseline_accuracy.items()))
    return t
