"""``ftlens demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ftlens.cli import render


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default="ftlens-demo", show_default=True,
              help="Where the run, its data and the report go.")
@click.option("--quick", is_flag=True,
              help="A smaller run (80 training examples, 40 test questions).")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="A folder with train.jsonl, valid.jsonl and test.jsonl. Default: the "
              "bundled examples/spam.")
@click.pass_context
def demo(ctx: click.Context, out_dir: Path, quick: bool, data: Path | None) -> None:
    """The whole story in one command, offline: audit the bundled spam data, fine-tune
    SmolLM2-135M through an embedded `ftlens serve` (the OpenAI fine-tuning API) with live
    loss, diagnose the loss curves, evaluate the base and the fine-tuned model with
    logprob-based threshold tuning, give a verdict and write an HTML report.

    \b
    Examples:
      ftlens demo
      ftlens demo --quick --out /tmp/demo
    """
    from ftlens import demo as run
    from ftlens.cli.follow import follow_job

    err = render.stderr()
    data = run.check_data(data or run.REPO_EXAMPLE)
    plan = run.plan(data, quick=quick)
    err.print(f"ftlens demo: {plan.describe()}.", highlight=False, soft_wrap=True)
    started = time.monotonic()

    def follow(endpoint: Any, job_id: str) -> Any:
        return follow_job(endpoint, job_id, err, quiet=True)

    hooks = run.Hooks(say=lambda text: err.print(text, highlight=False, soft_wrap=True),
                      follow=follow, progress=lambda: render.progress_bar(err, counts=True))
    result = run.run_demo(data, out_dir, hooks, quick=quick)
    console = render.stdout()
    render.findings(console, [f for _, f in result.findings if f.severity != "info"])
    render.decision(console, result.decision)
    console.print(f"fine-tuned model: {result.fine_tuned_model}", highlight=False)
    console.print(f"report: {result.report_html}\n        {result.report_md}\n"
                  f"        {result.report_json}", highlight=False, soft_wrap=True)
    err.print(f"done in {(time.monotonic() - started) / 60:.1f} minutes", highlight=False)
