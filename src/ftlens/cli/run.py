"""``ftlens run``: the whole loop on the user's data (and the ending ``ftlens demo`` shares)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import orjson

from ftlens.cli import render
from ftlens.cli.judging import exit_on_gates

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("run")
@click.option("--train", "train_file", type=_FILE, help="Training data (chat JSONL). Optional "
              "with --job on ftlens: the job's own training file is fetched.")
@click.option("--valid", "valid_file", type=_FILE, help="Validation data: validation loss "
              "while training, and the threshold is chosen on the tuned model's answers to it.")
@click.option("--test", "test_file", required=True, type=_FILE,
              help="Labelled test data: the final assistant message of each line is the truth.")
@click.option("--model", help="Base model to fine-tune. Default: smollm2-135m-instruct on an "
              "embedded ftlens serve.")
@click.option("--base-url", help="An OpenAI-compatible fine-tuning API (e.g. a running "
              "`ftlens serve`). Default: an embedded service in the run directory.")
@click.option("--openai", "use_openai", is_flag=True,
              help="Fine-tune and evaluate on OpenAI itself, with $OPENAI_API_KEY.")
@click.option("--job", "job_id", help="Judge this fine-tuning job, which already ran, instead "
              "of training: its result file, events and checkpoints are fetched.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default="ftlens-run", show_default=True,
              help="The run directory: data, results, predictions and the report.")
@render.HYPERPARAMETERS
@click.option("--suffix", help="Part of the fine-tuned model's name.")
@click.option("--seed", type=int, help="The fine-tuning job's seed (same seed, same run).")
@click.option("--positive", help="The class that matters (spam, fraud). Default for two "
              "classes: the rarer one.")
@click.option("--require", "requires", multiple=True, help='Gate, repeatable: '
              '"recall(spam)>=0.9". Exit 1 if failed.')
@click.option("--min-score", type=float, default=0.85, show_default=True,
              help="Bar for accuracy, precision and recall.")
@click.option("--checkpoint", default="auto", show_default=True, help="Also evaluate an "
              "earlier checkpoint: 'auto' when the loss curves call for one (overfitting, "
              "memorisation, an earlier best step), 'none', or a step number.")
@click.option("--task-metrics/--no-task-metrics", default=None,
              help="Score the validation rows as a classifier while training (ftlens only). "
              "Default: on for the embedded service when the validation answers are labels.")
@render.SELECT
@click.option("--max-tokens", type=click.IntRange(1), help="Longest answer asked for. "
              "Default: from the labels' length.")
@click.option("--concurrency", type=click.IntRange(1), default=16, show_default=True,
              help="Test questions in flight at once.")
@render.json_flag("report (report.json)")
@render.FAIL_ON
@click.pass_context
def run(ctx: click.Context, train_file: Path | None, valid_file: Path | None, test_file: Path,
        model: str | None, base_url: str | None, use_openai: bool, job_id: str | None,
        out_dir: Path, epochs: str, batch_size: str, lr_multiplier: str, suffix: str | None,
        seed: int | None, positive: str | None, requires: tuple[str, ...], min_score: float,
        checkpoint: str, task_metrics: bool | None, select: str | None,
        max_tokens: int | None, concurrency: int, as_json: bool,
        fail_on: str | None) -> None:
    """Audit, fine-tune, follow the loss, diagnose the curves, evaluate base and tuned model
    (and an earlier checkpoint when the curves call for one), and give one argued verdict
    with a report, in one run directory. With task metrics while training, the checkpoint
    is chosen by macro-F1 (or --select) rather than by the loss.

    Test rows whose input occurs in the training or validation data are left out of the
    judged metrics; the threshold is chosen on the validation answers, never on the test
    rows. Every answer is cached in the run directory: a --job rerun there, or one killed
    while asking, sends no request twice.

    \b
    Examples:
      ftlens run --train train.jsonl --valid valid.jsonl --test test.jsonl --positive spam
      ftlens run --train train.jsonl --test test.jsonl --model tiny-random-llama --epochs 3
      ftlens run --job ftjob-abc123 --test test.jsonl --base-url http://127.0.0.1:8000/v1
      ftlens run --job ftjob-abc123 --test test.jsonl --openai --require "recall(spam)>=0.9"
    """
    from ftlens.cli.train import auto_or
    from ftlens.steps.judge import options_from_cli
    from ftlens.steps.run import RunConfig, run_loop

    given = {"n_epochs": auto_or(epochs, int, "--epochs"),
             "batch_size": auto_or(batch_size, int, "--batch-size"),
             "learning_rate_multiplier": auto_or(lr_multiplier, float,
                                                 "--learning-rate-multiplier")}
    options, _ = options_from_cli(positive=positive, min_score=min_score, requires=requires)
    config = RunConfig(
        test=test_file, out_dir=out_dir, train=train_file, valid=valid_file, model=model,
        base_url=base_url, use_openai=use_openai, job_id=job_id,
        hyperparameters={k: v for k, v in given.items() if v != "auto"}, suffix=suffix,
        seed=seed, options=options, checkpoint=checkpoint, max_tokens=max_tokens,
        concurrency=concurrency, task_metrics=task_metrics, select=select)
    started = time.monotonic()
    result = run_loop(config, hooks(quiet=as_json))
    if as_json:
        render.print_json(orjson.loads(result.report_json.read_bytes()))
    else:
        show_result(result)
        render.stderr().print(f"done in {(time.monotonic() - started) / 60:.1f} minutes",
                              highlight=False)
    findings = [f for _, f in result.findings]
    exit_on_gates(ctx, findings, fail_on)


def hooks(*, quiet: bool = False) -> Any:
    """Messages and progress on stderr; the job followed with a live progress bar."""
    from ftlens.cli.follow import follow_job
    from ftlens.steps.run import Hooks

    err = render.stderr()

    def say(text: str) -> None:
        if not quiet:
            err.print(text, highlight=False, soft_wrap=True)

    return Hooks(say=say, follow=lambda endpoint, job_id: follow_job(endpoint, job_id, err,
                                                                     quiet=quiet),
                 progress=lambda: render.progress_bar(err, counts=True))


def show_result(result: Any) -> None:
    """The findings that matter, the argued verdict, the model and where the report is."""
    console = render.stdout()
    render.findings(console, [f for _, f in result.findings if f.severity != "info"])
    render.decision(console, result.decision)
    console.print(f"fine-tuned model: {result.fine_tuned_model}", highlight=False)
    choice = result.checkpoint
    if choice is not None:
        c = choice.comparison
        console.print(f"checkpoint at step {choice.step} vs the final model: right only with "
                      f"the checkpoint {c.only_candidate}, only with the final model "
                      f"{c.only_baseline} (McNemar p = {c.mcnemar_p:.2g}): ship "
                      f"{choice.model if choice.ship == 'checkpoint' else choice.final_model}",
                      highlight=False, soft_wrap=True)
    console.print(f"report: {result.report_html}\n        {result.report_md}\n"
                  f"        {result.report_json}", highlight=False, soft_wrap=True)
