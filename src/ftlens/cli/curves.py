"""``ftlens curves``."""

from __future__ import annotations

from pathlib import Path

import click

from ftlens.cli import render
from ftlens.cli.curves_view import show_diagnosis


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.option("--follow", "follow_id", metavar="JOB_ID",
              help="Follow a fine-tuning job live (on ftlens or, with --openai, on OpenAI), "
              "then diagnose it.")
@click.option("--base-url", help="With --follow: the OpenAI-compatible API. Default: a "
              "running `ftlens serve` at http://127.0.0.1:8000/v1.")
@click.option("--openai", "use_openai", is_flag=True,
              help="With --follow: the job is on OpenAI ($OPENAI_API_KEY).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True,
              help="With --follow: where the result CSV and events go.")
@click.option("--format", "fmt", default="auto", show_default=True,
              help="auto, openai-csv, openai-events, openai-checkpoints, trainer-state, generic.")
@click.option("--step-col", help="Generic CSV/JSONL: the step column.")
@click.option("--train-col", help="Generic CSV/JSONL: the training-loss column.")
@click.option("--valid-col", help="Generic CSV/JSONL: the validation-loss column.")
@click.option("--steps-per-epoch", type=int, help="Mark epoch boundaries every N steps.")
@click.option("--examples", type=int, help="Training examples (with --batch-size: epochs).")
@click.option("--batch-size", type=int, help="Batch size (with --examples: epochs).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write a plot: out.svg or out.png.")
@render.SELECT
@render.json_flag("diagnosis")
@render.FAIL_ON
@click.pass_context
def curves(ctx: click.Context, file: str | None, follow_id: str | None, base_url: str | None,
           use_openai: bool, out_dir: Path, fmt: str, step_col: str | None,
           train_col: str | None, valid_col: str | None, steps_per_epoch: int | None,
           examples: int | None, batch_size: int | None, plot_path: str | None,
           select: str | None, as_json: bool, fail_on: str | None) -> None:
    """Read a fine-tuning run's loss like an expert: steady, stuck, noisy, diverging,
    memorising or overfitting, and the best checkpoint. Task metrics logged with the loss
    (classification/* columns: an ftlens job with task metrics, OpenAI's legacy result file)
    are drawn and judged beside it.

    FILE is an OpenAI result CSV (raw or base64), OpenAI job events (JSON/JSONL), an OpenAI
    checkpoints list, a Hugging Face/TRL trainer_state.json, or any CSV/JSONL with step and
    loss columns. With --follow JOB_ID, the job is followed live instead.

    \b
    Examples:
      ftlens curves step_metrics.csv --plot loss.svg
      ftlens curves events.jsonl --json
      ftlens curves log.csv --step-col iteration --train-col loss --valid-col val_loss
      ftlens curves --follow ftjob-0123456789abcdef01234567
      ftlens curves results.csv --select "recall(spam)"
    """
    import dataclasses

    from ftlens.core.curves import diagnose
    from ftlens.core.curves_json import diagnosis_to_dict
    from ftlens.io.training_logs import read_run

    if (file is None) == (follow_id is None):
        raise click.UsageError("give a log FILE or --follow JOB_ID (one of them)")
    if follow_id is not None:
        from ftlens.cli.follow import finish, follow_job
        from ftlens.steps import finetune

        with finetune.connect(base_url, use_openai=use_openai, embedded_ok=False) as endpoint:
            job = follow_job(endpoint, follow_id, render.stderr(), quiet=as_json)
            finish(ctx, endpoint, job, out_dir, as_json, fail_on, select)
        return
    assert file is not None

    if plot_path:
        from ftlens.io.curve_plot import check_plot_path

        check_plot_path(plot_path)
    run = read_run(file, fmt=fmt, step_col=step_col, train_col=train_col, valid_col=valid_col)
    if examples and batch_size and not steps_per_epoch:
        steps_per_epoch = -(-examples // batch_size)
    if steps_per_epoch:
        run = dataclasses.replace(run, steps_per_epoch=steps_per_epoch)
    d = diagnose(run, select)
    if plot_path:
        from ftlens.io.curve_plot import plot_diagnosis

        plot_diagnosis(d, plot_path, title=file)
    if as_json:
        data = diagnosis_to_dict(d)
        data["plot"] = plot_path
        render.print_json(data)
    else:
        show_diagnosis(render.stdout(), d, plot_path)
    render.exit_on(ctx, d.findings, fail_on)
