"""The terminal page of an evaluation (``ftlens metrics``, later ``ftlens eval``)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ftlens.cli import render
from ftlens.core.classification import UNPARSEABLE, ClassificationReport, Interval
from ftlens.core.evaluation import Evaluation
from ftlens.core.wording import plural


def _ci(i: Interval) -> str:
    return f"[dim]{i.low:.3f}–{i.high:.3f}[/]"


def show_evaluation(console: Console, ev: Evaluation, title: str = "ftlens metrics") -> None:
    r = ev.report
    judged = (f" (judged on the {r.n:,} unseen of {ev.leakage.seen.n_rows:,}: "
              f"{ev.leakage.seen.n_seen:,} were seen in training)" if ev.leakage else "")
    console.print(f"[bold]{escape(title)}[/]  {plural(r.n, 'prediction')}{judged}, "
                  f"{len(r.labels)} classes"
                  + (f", positive class {escape(ev.positive)}" if ev.positive else "") + "\n")
    if ev.leakage is not None:
        console.print(_leakage(ev))
    console.print(_summary(ev))
    console.print(_per_class(ev))
    console.print(confusion_table(r, "confusion matrix (rows: true, columns: predicted)"))
    if ev.threshold is not None:
        console.print(_threshold(ev))
    if ev.comparison is not None:
        console.print(_comparison(ev))
    render.findings(console, ev.findings)
    render.verdict(console, ev.verdict, ev.findings)


def _leakage(ev: Evaluation) -> Table:
    lk = ev.leakage
    assert lk is not None
    n_unseen = lk.seen.n_rows - lk.seen.n_seen
    t = Table(title="all rows vs the unseen rows (the judged ones)", title_justify="left",
              show_edge=False)
    for col in ("metric", f"all {lk.seen.n_rows:,}", f"unseen {n_unseen:,}", "difference",
                "95 % interval"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for s in lk.shifts:
        t.add_row(escape(s.name), f"{s.all_rows:.3f}", f"{s.unseen:.3f}", f"{s.diff:+.3f}",
                  f"[dim]{s.ci.low:+.3f} to {s.ci.high:+.3f}[/]")
    return t


def _summary(ev: Evaluation) -> Table:
    r, ci = ev.report, ev.intervals
    t = Table(title="overall", title_justify="left", show_edge=False)
    for col in ("metric", "value", "95 % interval"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    rows = [
        ("accuracy", r.accuracy, _ci(r.accuracy_ci) + " [dim]Wilson[/]"),
        ("majority-class baseline", r.majority_accuracy,
         f"[dim]always {escape(r.majority_label)}[/]"),
        ("balanced accuracy", r.balanced_accuracy, ""),
        ("macro-F1 (mean of per-class F1)", r.macro.f1, _ci(ci.macro_f1)),
        ("weighted F1", r.weighted.f1, ""),
        ("Matthews correlation", r.mcc, _ci(ci.mcc)),
        ("Cohen's kappa", r.kappa, ""),
        ("unparseable answers", r.n_unparseable / r.n if r.n else 0.0, f"{r.n_unparseable:,}"),
    ]
    for name, value, interval in rows:
        t.add_row(name, f"{value:.3f}", interval)
    t.caption = f"per-metric intervals: stratified bootstrap, {ev.options.n_boot:,} resamples"
    t.caption_justify = "left"
    return t


def _per_class(ev: Evaluation) -> Table:
    t = Table(title="per class", title_justify="left", show_edge=False)
    for col in ("class", "precision", "95 %", "recall", "95 %", "F1", "support"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for i, c in enumerate(ev.report.per_class):
        t.add_row(escape(c.label), f"{c.precision:.3f}", _ci(ev.intervals.precision[i]),
                  f"{c.recall:.3f}", _ci(ev.intervals.recall[i]), f"{c.f1:.3f}",
                  f"{c.support:,}")
    return t


def confusion_table(r: ClassificationReport, title: str) -> Table:
    t = Table(title=title, title_justify="left", show_edge=False)
    t.add_column("true \\ predicted")
    show_unparseable = r.n_unparseable > 0
    columns = [*r.labels, *([UNPARSEABLE] if show_unparseable else [])]
    for col in columns:
        t.add_column(escape(col), justify="right")
    for i, label in enumerate(r.labels):
        cells = r.confusion[i, : len(columns)]
        t.add_row(escape(label), *(f"[bold]{n:,}[/]" if j == i else f"{n:,}"
                                   for j, n in enumerate(cells)))
    return t


def _threshold(ev: Evaluation) -> Table:
    a = ev.threshold
    assert a is not None
    t = Table(title=f"threshold for '{escape(a.positive)}' — {a.rule.describe()}; chosen on "
              f"{a.tuned_on}", title_justify="left", show_edge=False)
    for col in ("threshold", "precision", "recall", "F1", "accuracy"):
        t.add_column(col, justify="right")
    pos = a.positive
    rows = [("0.5", a.report_half)]
    if a.chosen is not None and a.report_chosen is not None:
        rows.append((f"{a.chosen.threshold:.4g} (chosen)", a.report_chosen))
    for name, rep in rows:
        c = rep.of(pos)
        t.add_row(name, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}",
                  f"{rep.accuracy:.3f}")
    auc = a.curves.roc_auc
    ap = a.curves.average_precision
    t.caption = (f"ROC AUC {auc:.3f} · average precision {ap:.3f}" if auc is not None and
                 ap is not None else "one class only: no ROC/PR") + (
        f" · reported on {a.n_reported:,} held-out rows" if a.held_out else "")
    t.caption_justify = "left"
    return t


def _comparison(ev: Evaluation) -> Table:
    c = ev.comparison
    assert c is not None
    t = Table(title="against the baseline (candidate − baseline)", title_justify="left",
              show_edge=False)
    for col in ("metric", "difference", "95 % interval", "significant"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for d in c.differences:
        t.add_row(escape(d.name), f"{d.estimate:+.3f}",
                  f"{d.interval.low:+.3f} to {d.interval.high:+.3f}",
                  "yes" if d.significant else "no")
    t.caption = (f"exact McNemar p = {c.mcnemar_p:.3g} ({c.only_candidate} items only the "
                 f"candidate gets right, {c.only_baseline} only the baseline)")
    t.caption_justify = "left"
    return t
