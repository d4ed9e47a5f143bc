"""The ``ftlens`` command line: thin commands over the library, one error path."""

from __future__ import annotations

import sys
import traceback

import click

from ftlens import __version__
from ftlens.cli.audit import audit
from ftlens.cli.curves import curves
from ftlens.cli.demo import demo
from ftlens.cli.eval import eval_command
from ftlens.cli.export import export
from ftlens.cli.metrics import metrics
from ftlens.cli.models import models
from ftlens.cli.report import report
from ftlens.cli.run import run
from ftlens.cli.train import serve, train
from ftlens.errors import FtlensError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ftlens")
@click.option("--debug", is_flag=True,
              help="Show full tracebacks on errors (before the command: ftlens --debug audit "
              "F); exit codes stay the same.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """ftlens: did my fine-tune work, and can it ship?

    \b
    Examples:
      ftlens demo            # the whole loop on the bundled spam data, offline
      ftlens run --train train.jsonl --valid valid.jsonl --test test.jsonl --positive spam
      ftlens audit examples/spam/train.jsonl --valid examples/spam/valid.jsonl \\
          --test examples/spam/test.jsonl
      ftlens audit train.jsonl --json --fail-on fail
      ftlens metrics predictions.jsonl --positive spam --require "recall(spam)>=0.9"
      ftlens curves step_metrics.csv --plot loss.svg
      ftlens report runs/spam --out runs/spam/report.html
      ftlens serve --port 8000
      ftlens train examples/spam/train.jsonl --model smollm2-135m-instruct --epochs 2
      ftlens eval --model ft:smollm2-135m-instruct:ftlens::abc12345 \\
          --baseline smollm2-135m-instruct --data examples/spam/test.jsonl
    """
    ctx.obj = {"debug": debug}


cli.add_command(demo)
cli.add_command(run)
cli.add_command(audit)
cli.add_command(metrics)
cli.add_command(curves)
cli.add_command(report)
cli.add_command(serve)
cli.add_command(models)
cli.add_command(export)
cli.add_command(train)
cli.add_command(eval_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and exit with its code; print FtlensError as one clear message
    (exit 2), not a traceback, unless --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="ftlens", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except FtlensError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
