"""``ftlens metrics``."""

from __future__ import annotations

from pathlib import Path

import click

from ftlens.cli import render
from ftlens.cli.judging import AUDIT_OPTION, TRAIN_OPTION, exit_on_gates, judging_options


@click.command()
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=str))
@click.option("--label-field", default="label", show_default=True,
              help="The field (JSONL key or CSV column) holding each row's true label.")
@click.option("--prediction-field", default="prediction", show_default=True,
              help="The field holding the model's answer for the row.")
@click.option("--score-field", default="score", show_default=True,
              help="Score of the positive class.")
@click.option("--probs-field", default="probs", show_default=True,
              help="JSONL: object of per-class probabilities.")
@click.option("--prob-prefix", default="p_", show_default=True,
              help="CSV: per-class probability columns, e.g. p_spam.")
@click.option("--compare", "compare_path", type=click.Path(dir_okay=False),
              help="Baseline predictions on the same items (e.g. the base model).")
@TRAIN_OPTION
@click.option("--valid", "valid_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Validation data, checked like --train.")
@AUDIT_OPTION
@click.option("--data", "data_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The test file the predictions were made on (rows matched by position), "
              "when the predictions do not carry their inputs.")
@click.option("--tune-on", "tune_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Predictions on other rows (the validation set's) to choose the threshold "
              "on; it is then judged on every row of PREDICTIONS.")
@judging_options
@render.json_flag("evaluation")
@click.pass_context
def metrics(ctx: click.Context, predictions: str, compare_path: str | None,
            train_file: Path | None, valid_file: Path | None, audit_file: Path | None,
            data_file: Path | None,
            tune_path: Path | None, as_json: bool, fail_on: str | None, **opts: object
            ) -> None:
    """Judge a predictions file from any source: metrics, intervals, threshold, verdict.

    PREDICTIONS is JSONL ({"label": ..., "prediction": ..., "probs": {...}}) or CSV
    (label,prediction[,score][,p_<label>...]). Answers outside the label set are counted as
    unparseable, never dropped.

    \b
    Examples:
      ftlens metrics preds.jsonl --positive spam
      ftlens metrics preds.csv --label-field truth --prediction-field answer --fail-on warn
      ftlens metrics preds.csv --target-recall 0.95 --tune-on-split 0.5
      ftlens metrics tuned.jsonl --compare base.jsonl --require "recall(spam)>=0.9"
      ftlens metrics preds.jsonl --train train.jsonl   # judged on the unseen test rows
      ftlens metrics preds.csv --data test.jsonl --train train.jsonl
      ftlens metrics preds.jsonl --audit audit.json   # the leaks the audit found
      ftlens metrics test-preds.jsonl --tune-on valid-preds.jsonl --positive spam
    """
    from ftlens.core.evaluation_json import evaluation_to_dict
    from ftlens.steps.judge import evaluate_files, options_from_cli

    options, fields = options_from_cli(**opts)  # type: ignore[arg-type]
    ev = evaluate_files(predictions, options, fields, compare_path, train=train_file,
                        valid=valid_file, data=data_file, tune_path=tune_path,
                        audit=audit_file)
    if as_json:
        render.print_json(evaluation_to_dict(ev))
    else:
        from ftlens.cli.metrics_view import show_evaluation

        show_evaluation(render.stdout(), ev)
    exit_on_gates(ctx, ev.findings, fail_on)
