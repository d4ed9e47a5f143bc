"""``ftlens demo``: ``ftlens run`` on the bundled data."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ftlens.cli import render


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default="ftlens-demo", show_default=True,
              help="Where the run, its data and the report go.")
@click.option("--quick", is_flag=True,
              help="A smaller run, about 3 minutes here: 48 training examples (no class over "
              "60 %), 24 validation and 40 test questions, 2 epochs at batch size 2.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="A folder with train.jsonl, valid.jsonl and test.jsonl. Default: the "
              "bundled examples/spam.")
def demo(out_dir: Path, quick: bool, data: Path | None) -> None:
    """The whole story in one command, offline: `ftlens run` on the bundled spam data. Audit,
    fine-tune SmolLM2-135M through an embedded `ftlens serve` (the OpenAI fine-tuning API)
    with live loss, diagnose the loss curves, evaluate the base and the fine-tuned model with
    the threshold chosen on the validation answers, give an argued verdict and write an HTML
    report.

    \b
    Examples:
      ftlens demo
      ftlens demo --quick --out /tmp/demo
    """
    from ftlens.cli.run import hooks, show_result
    from ftlens.steps import demo as bundled

    data = bundled.check_data(data or bundled.REPO_EXAMPLE)
    plan = bundled.plan(data, quick=quick)
    err = render.stderr()
    err.print(f"ftlens demo: {plan.describe()}.", highlight=False, soft_wrap=True)
    started = time.monotonic()
    show_result(bundled.run_demo(data, out_dir, hooks(), quick=quick))
    err.print(f"done in {(time.monotonic() - started) / 60:.1f} minutes", highlight=False)
