"""``ftlens audit``."""

from __future__ import annotations

import click

from ftlens.cli import render
from ftlens.cli.audit_view import show_report
from ftlens.core.models import DEFAULT_MODEL


@click.command()
@click.argument("train", type=click.Path(dir_okay=False, path_type=str))
@click.option("--valid", type=click.Path(dir_okay=False), help="Validation JSONL.")
@click.option("--test", type=click.Path(dir_okay=False), help="Test JSONL (held out).")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="OpenAI model to size tokens, context and cost for.")
@click.option("--epochs", type=int, help="Epochs to bill (default: OpenAI's rule for the size).")
@click.option("--price-per-1m", type=float, help="USD per 1M training tokens (overrides the "
              "built-in price table).")
@click.option("--context-limit", type=int, help="Training context in tokens (overrides the "
              "model's).")
@click.option("--near-threshold", type=float, default=0.8, show_default=True,
              help="Jaccard similarity (5-byte shingles) for near-duplicates.")
@click.option("--near-dup-limit", type=int, default=20_000, show_default=True,
              help="Examples searched for near-duplicates; 0 searches all.")
@click.option("--write-clean", "clean_dir", type=click.Path(file_okay=False),
              help="Write the splits without duplicates and leaked examples to this directory.")
@render.json_flag("report")
@render.FAIL_ON
@click.pass_context
def audit(ctx: click.Context, train: str, valid: str | None, test: str | None, model: str,
          epochs: int | None, price_per_1m: float | None, context_limit: int | None,
          near_threshold: float, near_dup_limit: int, clean_dir: str | None, as_json: bool,
          fail_on: str | None) -> None:
    """Check fine-tuning data before paying for training.

    Checks every line against OpenAI's chat fine-tuning format, counts tokens and estimates
    cost, reports label balance, duplicates, conflicting labels and leakage between splits
    (exact and near-duplicate).

    \b
    Examples:
      ftlens audit train.jsonl --valid valid.jsonl --test test.jsonl
      ftlens audit train.jsonl --model gpt-4.1-mini-2025-04-14 --epochs 2
      ftlens audit train.jsonl --test test.jsonl --write-clean clean/ --fail-on fail
    """
    from ftlens.core.audit_json import audit_to_dict
    from ftlens.io.clean import write_clean
    from ftlens.steps.audit import audit_files

    err = render.stderr()
    with render.progress_bar(err, enabled=not as_json) as progress:
        report = audit_files(
            train, valid, test, model=model, epochs=epochs, price_per_1m=price_per_1m,
            context_limit=context_limit, near_threshold=near_threshold,
            near_limit=near_dup_limit or None, progress=progress)
    cleaned = None
    if clean_dir:
        paths = {s: scan.path for s, scan in report.splits.items()}
        cleaned = write_clean(paths, report.removable, clean_dir)
    if as_json:
        data = audit_to_dict(report)
        if cleaned is not None:
            data["clean"] = cleaned
        render.print_json(data)
    else:
        show_report(render.stdout(), report, cleaned)
    render.exit_on(ctx, report.findings, fail_on)
