"""Terminal rendering shared by the commands: findings, verdicts, JSON, progress."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ftlens.core.decision import Decision
from ftlens.core.findings import Finding, gate_failed

STYLE = {"fail": "bold red", "warn": "yellow", "info": "cyan"}
MARK = {"fail": "✗", "warn": "!", "info": "i"}
INDENT = 9  # evidence and advice hang under the finding's title
VERDICT_STYLE = {"ready": "bold green", "not_ready": "bold red", "inconclusive": "bold yellow"}


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Data to stdout as indented JSON (numpy scalars and arrays included)."""
    sys.stdout.write(orjson.dumps(
        data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        default=str).decode())
    sys.stdout.write("\n")


def findings(console: Console, items: Iterable[Finding]) -> None:
    for f in items:
        style = STYLE[f.severity]
        console.print(f"[{style}]{MARK[f.severity]} {f.severity:<4}[/] "
                      f"[bold]{escape(f.title)}[/] [dim]({f.id})[/]")
        hanging(console, f.evidence)
        if f.advice:
            hanging(console, f"→ {f.advice}", style="dim")


def hanging(console: Console, text: str, style: str = "default", first: str | None = None,
            indent: int = INDENT) -> None:
    """``text`` wrapped to the terminal with a hanging indent: every line under a finding's
    title (or, after ``first``, under the text's first word)."""
    pad = " " * indent
    wrapped = textwrap.fill(text, width=max(40, console.width),
                            initial_indent=pad if first is None else first,
                            subsequent_indent=pad, break_long_words=False,
                            break_on_hyphens=False)
    console.out(wrapped, style=style, highlight=False)


def verdict(console: Console, value: str, items: Iterable[Finding]) -> None:
    """The verdict line, naming the failing findings."""
    fails = [f.id for f in items if f.severity == "fail"]
    label = value.replace("_", " ").upper()
    why = f"  ({', '.join(fails)})" if fails else ""
    console.print(f"\nverdict: [{VERDICT_STYLE[value]}]{label}[/]{escape(why)}")


def decision(console: Console, d: Decision) -> None:
    """The overall verdict and the reasons behind it, most important first."""
    label = d.verdict.replace("_", " ").upper()
    console.print(f"\nverdict: [{VERDICT_STYLE[d.verdict]}]{label}[/]")
    for i, r in enumerate(d.reasons, 1):
        hanging(console, r.text, first=f"  {i}. ", indent=5)


def exit_on(ctx: click.Context, items: Iterable[Finding], fail_on: str | None) -> None:
    """Exit 1 when ``--fail-on`` is met (the choice is validated by click)."""
    if gate_failed(items, fail_on):
        ctx.exit(1)


def _select(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from ftlens.core.task_metrics import check_select
    from ftlens.errors import FtlensError

    try:
        return None if value is None else check_select(value)
    except FtlensError as exc:
        raise click.BadParameter(exc.render()) from None


SELECT = click.option(
    "--select", metavar="RULE", callback=_select,
    help="What the best checkpoint is chosen by: loss, macro_f1, f1(LABEL), recall(LABEL), "
    "precision(LABEL), accuracy, auroc… Default: macro-F1 when task metrics were logged, "
    "else validation loss.")
FAIL_ON = click.option("--fail-on", type=click.Choice(["fail", "error", "warn"]),
                       help="Exit 1 when a finding of this severity (or worse) is present: "
                       "fail (alias error) or warn.")


def HYPERPARAMETERS(f: Callable[..., Any]) -> Callable[..., Any]:
    """The job's hyperparameters as OpenAI names them; "auto" lets the service choose."""
    for option in reversed([
        click.option("--epochs", default="auto", show_default=True,
                     help="n_epochs: passes over the training file."),
        click.option("--batch-size", default="auto", show_default=True,
                     help="batch_size: examples per optimiser step."),
        click.option("--learning-rate-multiplier", "lr_multiplier", default="auto",
                     show_default=True, help="learning_rate_multiplier: times the model's "
                     "base learning rate."),
    ]):
        f = option(f)
    return f


def json_flag(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True,
                        help=f"Print the {what} as JSON on stdout.")


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.1f}/s", style="progress.data.speed")


@contextmanager
def progress_bar(console: Console, enabled: bool = True, counts: bool = False
                 ) -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, advance, total)`` callback backed by a rich bar on stderr; silent
    when stderr is not a terminal. ``counts`` adds done/total and the rate per second."""
    extra = (MofNCompleteColumn(), RateColumn()) if counts else ()
    bar = Progress(
        TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        *extra, TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        disable=not (enabled and console.is_terminal),
    )
    tasks: dict[str, TaskID] = {}
    names = {"read": "reading and checking", "cached": "from the cache",
             "requests": "asking the model", "batch": "waiting for the batches"}

    def update(stage: str, advance: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(names.get(stage, stage), total=max(1, total))
        bar.update(tasks[stage], advance=advance, total=max(1, total))  # it may be refined

    with bar:
        yield update
