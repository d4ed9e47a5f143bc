"""The terminal page of ``ftlens eval``: what was asked, then the evaluation page."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ftlens.cli.metrics_view import show_evaluation
from ftlens.core.wording import plural
from ftlens.steps.ask import EvalRun


def show_run(console: Console, run: EvalRun) -> None:
    c, s = run.config, run.stats
    console.print(f"[bold]{escape(c.model)}[/] on {escape(str(c.data))} "
                  f"({plural(len(run.candidate.answers), 'example')}) "
                  f"via {escape(c.endpoint.public)}")
    retries = ", ".join(f"{cause} {n:,}" for cause, n in sorted(s.retries.items()))
    console.print(f"[dim]requests: {s.sent:,} sent, {s.cached:,} from the cache"
                  + (f"; retried: {escape(retries)}" if retries else "") + "[/]")
    console.print(f"[dim]predictions: {escape(str(run.candidate.path))}[/]")
    if run.baseline is not None and run.baseline_report is not None:
        b = run.baseline_report
        console.print(f"[dim]baseline predictions: {escape(str(run.baseline.path))}[/]")
        console.print(f"baseline [bold]{escape(run.baseline.model)}[/]: accuracy "
                      f"{b.accuracy:.3f}, macro-F1 {b.macro.f1:.3f}, "
                      f"{b.n_unparseable:,} unparseable")
    console.print()
    show_evaluation(console, run.evaluation, title="ftlens eval")
