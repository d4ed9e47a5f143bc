"""``ftlens metrics``."""

from __future__ import annotations

import click

from ftlens.cli import render


@click.command()
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=str))
@click.option("--positive", help="The class that matters (spam, fraud); judged alone. "
              "Default for two classes: the rarer one for the threshold analysis.")
@click.option("--labels", help="Comma-separated label set; other predictions count as "
              "unparseable. Default: the true labels seen.")
@click.option("--label-field", default="label", show_default=True)
@click.option("--prediction-field", default="prediction", show_default=True)
@click.option("--score-field", default="score", show_default=True,
              help="Score of the positive class.")
@click.option("--probs-field", default="probs", show_default=True,
              help="JSONL: object of per-class probabilities.")
@click.option("--prob-prefix", default="p_", show_default=True,
              help="CSV: per-class probability columns, e.g. p_spam.")
@click.option("--threshold", "threshold_mode", default="auto", show_default=True,
              help="'auto' (max F-beta) or 'none' to skip the threshold analysis.")
@click.option("--beta", type=float, default=1.0, show_default=True,
              help="F-beta for --threshold auto (2 favours recall).")
@click.option("--target-recall", type=float, help="Highest precision with recall >= R.")
@click.option("--target-precision", type=float, help="Highest recall with precision >= P.")
@click.option("--cost-fp", type=float, help="Cost of a false positive (with --cost-fn).")
@click.option("--cost-fn", type=float, help="Cost of a false negative (with --cost-fp).")
@click.option("--tune-on-split", type=float, help="Choose the threshold on this fraction of "
              "rows (stratified) and report on the rest, e.g. 0.5.")
@click.option("--tune-cv", type=int, help="Choose the threshold by K-fold cross-validation.")
@click.option("--compare", "compare_path", type=click.Path(dir_okay=False),
              help="Baseline predictions on the same items (e.g. the base model).")
@click.option("--require", "requires", multiple=True,
              help='Gate, repeatable: "recall(spam)>=0.9", "precision>=0.8". Exit 1 if failed.')
@click.option("--min-score", type=float, default=0.85, show_default=True,
              help="Bar for accuracy, precision and recall.")
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True,
              help="Bootstrap resamples for the intervals.")
@click.option("--seed", type=int, default=0, show_default=True)
@render.json_flag("evaluation")
@click.pass_context
def metrics(ctx: click.Context, predictions: str, compare_path: str | None, as_json: bool,
            requires: tuple[str, ...], **opts: object) -> None:
    """Judge a predictions file from any source: metrics, intervals, threshold, verdict.

    PREDICTIONS is JSONL ({"label": ..., "prediction": ..., "probs": {...}}) or CSV
    (label,prediction[,score][,p_<label>...]). Answers outside the label set are counted as
    unparseable, never dropped.

    \b
    Examples:
      ftlens metrics preds.jsonl --positive spam
      ftlens metrics preds.csv --target-recall 0.95 --tune-on-split 0.5
      ftlens metrics tuned.jsonl --compare base.jsonl --require "recall(spam)>=0.9"
    """
    from ftlens.evaluate import evaluate_files, options_from_cli

    options, fields = options_from_cli(requires=requires, **opts)  # type: ignore[arg-type]
    ev = evaluate_files(predictions, options, fields, compare_path)
    if as_json:
        render.print_json(ev.to_dict())
    else:
        from ftlens.cli.metrics_view import show_evaluation

        show_evaluation(render.stdout(), ev)
    if any(f.id == "requirement_failed" for f in ev.findings):
        ctx.exit(1)
