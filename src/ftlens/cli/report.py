"""``ftlens report``."""

from __future__ import annotations

from pathlib import Path

import click

from ftlens.cli import render


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write (default RUN_DIR/report.html); the .md and .json "
              "summaries go next to it with the same name.")
@render.json_flag("report summary (report.json)")
@render.FAIL_ON
@click.pass_context
def report(ctx: click.Context, run_dir: Path, out: Path | None, as_json: bool,
           fail_on: str | None) -> None:
    """Render a run directory into one offline HTML report, a Markdown summary and JSON.

    RUN_DIR holds any of: audit.json (ftlens audit --json), curves.json (ftlens curves
    --json), eval.json (ftlens metrics --json, with --compare for the baseline comparison),
    provenance.json (data hashes, model, hyperparameters), results.csv (a run's result CSV,
    diagnosed when curves.json is missing or has no points). Missing files leave their
    section out.

    \b
    Examples:
      ftlens audit train.jsonl --valid valid.jsonl --json > run/audit.json
      ftlens curves run/results.csv --json > run/curves.json
      ftlens metrics tuned.jsonl --compare base.jsonl --json > run/eval.json
      ftlens report run/ --out run/report.html
    """
    from ftlens.report.render import write_report

    written = write_report(run_dir, out)
    if as_json:
        render.print_json(written.summary)
    else:
        for path in (written.html, written.markdown, written.json):
            click.echo(f"wrote {click.format_filename(path)}")
        render.decision(render.stdout(), written.report.decision)
    render.exit_on(ctx, [f for _, f in written.report.findings], fail_on)
