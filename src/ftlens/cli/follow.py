"""Following a fine-tuning job live in the terminal, shared by ``ftlens train`` and
``ftlens curves --follow``: a progress bar with step, ETA and the latest losses; Ctrl-C asks
whether to cancel; at the end the results are saved and the loss curves diagnosed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ftlens.cli import render
from ftlens.client.endpoint import api_call
from ftlens.steps import finetune


def follow_job(endpoint: finetune.Connection, job_id: str, console: Console,
               *, quiet: bool = False) -> Any:
    """Follow until the job ends (or the user detaches with Ctrl-C); returns the job."""
    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed:>5.0f}/{task.total:<5.0f}"), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
                   console=console, transient=True, disable=quiet or not console.is_terminal)
    task = bar.add_task("queued", total=None, losses="")

    def on_event(event: Any) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "metrics" and "step" in data:
            losses = f"train {data['train_loss']:.4f}"
            if data.get("valid_loss") is not None:
                losses += f"  valid {data['valid_loss']:.4f}"
            bar.update(task, description="training", completed=data["step"],
                       total=data.get("total_steps"), losses=losses)
        elif not quiet:
            style = "red" if event.level == "error" else "dim"
            bar.console.print(f"[{style}]{event.message}[/]", highlight=False)

    with bar:
        while True:
            try:
                return finetune.follow(endpoint, job_id, on_event)
            except KeyboardInterrupt:
                bar.stop()
                if _ask_cancel(endpoint, job_id):
                    bar.start()
                    continue
                hint = ("the embedded service stops with this command, so the job will be "
                        "marked failed" if endpoint.embedded else
                        f"follow it again with `ftlens curves --follow {job_id}`")
                console.print(f"detached; the job keeps its state: {hint}")
                raise SystemExit(130) from None


def _ask_cancel(endpoint: finetune.Connection, job_id: str) -> bool:
    try:
        cancel = click.confirm(f"\nCancel fine-tuning job {job_id}?", default=False,
                               err=True)
    except (click.Abort, KeyboardInterrupt):
        cancel = False
    if cancel:
        api_call("cancelling the job",
                      lambda: endpoint.client.fine_tuning.jobs.cancel(job_id))
    return cancel


def finish(ctx: click.Context, endpoint: finetune.Connection, job: Any, out_dir: Path,
           as_json: bool, fail_on: str | None, select: str | None = None) -> None:
    """Save the results, diagnose the curves (the best checkpoint chosen by ``select``), say
    what happened; exit 1 if the job failed."""
    from ftlens.core.curves import diagnose
    from ftlens.core.curves_json import diagnosis_to_dict
    from ftlens.io.training_logs import read_run

    csv_path, events_path = finetune.save_results(endpoint, job, out_dir)
    diagnosis = diagnose(read_run(csv_path), select) if csv_path else None
    if as_json:
        render.print_json({"job": job.model_dump(), "results_csv": str(csv_path or ""),
                           "events": str(events_path),
                           "diagnosis": diagnosis_to_dict(diagnosis) if diagnosis else None})
    else:
        console = render.stdout()
        if diagnosis is not None:
            from ftlens.cli.curves_view import show_diagnosis

            show_diagnosis(console, diagnosis)
        colour = {"succeeded": "green", "cancelled": "yellow"}.get(job.status, "red")
        console.print(f"job {job.id}: [bold {colour}]{job.status}[/]")
        if job.error and job.error.message:
            console.print(f"error: {job.error.message}", highlight=False)
        if job.fine_tuned_model:
            console.print(f"fine-tuned model: [bold]{job.fine_tuned_model}[/]")
        console.print(f"results: {csv_path or '(none)'}; events: {events_path}")
    if job.status == "failed":
        ctx.exit(1)
    if diagnosis is not None:
        render.exit_on(ctx, diagnosis.findings, fail_on)
