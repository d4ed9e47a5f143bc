"""Options and endings shared by the commands that judge predictions (``ftlens metrics``,
``ftlens eval``): labels, threshold rule, gates, bootstrap; exit 1 when a gate fails."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from ftlens.cli import render
from ftlens.core.findings import Finding

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = [
    click.option("--positive", help="The class that matters (spam, fraud); judged alone. "
                 "Default for two classes: the rarer one for the threshold analysis."),
    click.option("--labels", help="Comma-separated label set; other predictions count as "
                 "unparseable. Default: the true labels seen."),
    click.option("--threshold", "threshold_mode", default="auto", show_default=True,
                 help="'auto' (max F-beta) or 'none' to skip the threshold analysis."),
    click.option("--beta", type=float, default=1.0, show_default=True,
                 help="F-beta for --threshold auto (2 favours recall)."),
    click.option("--target-recall", type=float, help="Highest precision with recall >= R."),
    click.option("--target-precision", type=float,
                 help="Highest recall with precision >= P."),
    click.option("--cost-fp", type=float, help="Cost of a false positive (with --cost-fn)."),
    click.option("--cost-fn", type=float, help="Cost of a false negative (with --cost-fp)."),
    click.option("--tune-on-split", type=float, help="Choose the threshold on this fraction "
                 "of rows (stratified) and report on the rest, e.g. 0.5."),
    click.option("--tune-cv", type=int,
                 help="Choose the threshold by K-fold cross-validation."),
    click.option("--require", "requires", multiple=True, help='Gate, repeatable: '
                 '"recall(spam)>=0.9", "precision>=0.8". Exit 1 if failed.'),
    click.option("--min-score", type=float, default=0.85, show_default=True,
                 help="Bar for accuracy, precision and recall."),
    click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True,
                 help="Bootstrap resamples for the intervals."),
    click.option("--seed", type=int, default=0, show_default=True,
                 help="Seed of the bootstrap resamples and the --tune-on-split/--tune-cv "
                 "splits: the same seed gives the same intervals."),
    render.FAIL_ON,
]

#: ``--train``: test rows whose input occurs in the training data are left out of the judging
TRAIN_OPTION = click.option(
    "--train", "train_file", type=click.Path(dir_okay=False, path_type=Path),
    help="The model's training data: test rows whose input occurs there (exactly or as a "
    "near-duplicate) are left out of the judged metrics.")

#: ``--audit``: the same marks, read from an audit of the train/valid/test files
AUDIT_OPTION = click.option(
    "--audit", "audit_file", type=click.Path(dir_okay=False, path_type=Path),
    help="`ftlens audit TRAIN --valid VALID --test TEST --json` output: the test rows it "
    "found leaked (exactly or as near-duplicates) are left out of the judged metrics, as "
    "with --train.")

#: the keyword arguments those options produce, all passed on to ``options_from_cli``
JUDGING_KEYS = ("positive", "labels", "threshold_mode", "beta", "target_recall",
                "target_precision", "cost_fp", "cost_fn", "tune_on_split", "tune_cv",
                "requires", "min_score", "n_boot", "seed")


def judging_options(f: F) -> F:
    """Add the judging options (in the order of ``--help``)."""
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def exit_on_gates(ctx: click.Context, findings: Iterable[Finding], fail_on: str | None) -> None:
    """Exit 1 when a ``--require`` gate failed or ``--fail-on`` is met."""
    findings = list(findings)
    if any(f.id == "requirement_failed" for f in findings):
        ctx.exit(1)
    render.exit_on(ctx, findings, fail_on)
