"""``evaluate_files``: judge predictions files, as a library call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftlens.core.evaluation import EvalOptions, Evaluation, Predictions, evaluate
from ftlens.core.requirements import parse_requirement
from ftlens.core.threshold import Rule
from ftlens.errors import ConfigError, DataError
from ftlens.io.chat_dataset import Example, read_examples
from ftlens.io.chat_jsonl import open_checked
from ftlens.io.predictions import Fields, read_prediction_inputs, read_predictions
from ftlens.steps.seen import seen_in_audit, seen_in_training


def options_from_cli(
    *, positive: str | None = None, labels: str | None = None, label_field: str = "label",
    prediction_field: str = "prediction", score_field: str = "score", probs_field: str = "probs",
    prob_prefix: str = "p_", threshold_mode: str = "auto", beta: float = 1.0,
    target_recall: float | None = None, target_precision: float | None = None,
    cost_fp: float | None = None, cost_fn: float | None = None,
    tune_on_split: float | None = None, tune_cv: int | None = None,
    requires: tuple[str, ...] = (), min_score: float = 0.85, n_boot: int = 1000, seed: int = 0,
) -> tuple[EvalOptions, Fields]:
    """Options from command-line values, with clear errors for contradictions."""
    rule = _rule(threshold_mode, beta, target_recall, target_precision, cost_fp, cost_fn)
    if tune_on_split is not None and not 0 < tune_on_split < 1:
        raise ConfigError(f"--tune-on-split {tune_on_split} must be between 0 and 1",
                          hint="e.g. --tune-on-split 0.5")
    if tune_cv is not None and tune_cv < 2:
        raise ConfigError("--tune-cv needs at least 2 folds", hint="e.g. --tune-cv 5")
    if tune_cv and tune_on_split:
        raise ConfigError("--tune-on-split and --tune-cv are alternatives", hint="pick one")
    if not 0 < min_score <= 1:
        raise ConfigError(f"--min-score {min_score} must be in (0, 1]")
    if n_boot < 100:
        raise ConfigError("--bootstrap needs at least 100 resamples", hint="e.g. 1000")
    options = EvalOptions(
        labels=tuple(x.strip() for x in labels.split(",") if x.strip()) if labels else None,
        positive=positive, min_score=min_score, rule=rule, tune_split=tune_on_split,
        tune_cv=tune_cv, n_boot=n_boot, seed=seed,
        requirements=tuple(parse_requirement(r) for r in requires),
    )
    fields = Fields(label=label_field, prediction=prediction_field, score=score_field,
                    probs=probs_field, prob_prefix=prob_prefix)
    return options, fields


def _rule(mode: str, beta: float, target_recall: float | None, target_precision: float | None,
          cost_fp: float | None, cost_fn: float | None) -> Rule | None:
    chosen = [name for name, v in (("--target-recall", target_recall),
                                   ("--target-precision", target_precision),
                                   ("--cost-fp/--cost-fn", cost_fp or cost_fn)) if v is not None]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} are alternatives", hint="pick one rule")
    if mode not in ("auto", "none"):
        raise ConfigError(f"--threshold {mode!r} is not known", hint="use auto or none")
    if mode == "none" and chosen:
        raise ConfigError(f"--threshold none and {chosen[0]} contradict each other",
                          hint="drop --threshold none to choose a threshold")
    for name, v in (("--target-recall", target_recall), ("--target-precision", target_precision)):
        if v is not None and not 0 < v <= 1:
            raise ConfigError(f"{name} {v} must be in (0, 1]")
    if (cost_fp is None) != (cost_fn is None):
        raise ConfigError("--cost-fp and --cost-fn go together", hint="give both costs")
    if beta <= 0:
        raise ConfigError(f"--beta {beta} must be positive")
    if target_recall is not None:
        return Rule("target_recall", target=target_recall)
    if target_precision is not None:
        return Rule("target_precision", target=target_precision)
    if cost_fp is not None and cost_fn is not None:
        if cost_fp < 0 or cost_fn < 0:
            raise ConfigError("costs must not be negative")
        return Rule("cost", cost_fp=cost_fp, cost_fn=cost_fn)
    return None if mode == "none" else Rule("fbeta", beta=beta)


def align(candidate: Predictions, baseline: Predictions, path: str | Path) -> Predictions:
    """The baseline's rows in the candidate's order: by ``id`` when both have ids, else by
    position (then the true labels must agree row by row)."""
    if candidate.ids is not None and baseline.ids is not None:
        where = {i: n for n, i in enumerate(baseline.ids)}
        missing = [i for i in candidate.ids if i not in where]
        if missing:
            raise DataError(f"{len(missing)} ids are missing from the baseline, e.g. "
                            f"{missing[0]!r}", path=path, hint="compare predictions of the "
                            "same test items")
        order = [where[i] for i in candidate.ids]
        baseline = Predictions([baseline.y_true[n] for n in order],
                               [baseline.y_pred[n] for n in order])
    if len(baseline.y_true) != len(candidate.y_true):
        raise DataError(f"{len(baseline.y_true)} rows, but the candidate has "
                        f"{len(candidate.y_true)}", path=path,
                        expected="predictions for the same items", hint="add an 'id' field "
                        "to both files to match rows by id")
    for n, (a, b) in enumerate(zip(candidate.y_true, baseline.y_true, strict=True), 1):
        if a != b:
            raise DataError(f"row {n}: true label {b!r} but the candidate's is {a!r}",
                            path=path, expected="the same items in the same order",
                            hint="add an 'id' field to both files to match rows by id")
    return baseline


def check_tuning(options: EvalOptions, elsewhere: bool, flag: str) -> None:
    """Tuning on other predictions and on a share of the test rows are alternatives."""
    if elsewhere and (options.tune_split or options.tune_cv):
        raise ConfigError(f"{flag} chooses the threshold on other rows; --tune-on-split and "
                          "--tune-cv choose it on the test rows", hint="pick one")


def _test_examples(preds: Predictions, data: Path) -> list[Example]:
    """The test file's examples, checked to be the predictions' rows: same count, same
    answers in the same order."""
    examples = read_examples(data)
    if len(examples) != len(preds.y_true):
        raise DataError(f"{len(examples)} test examples but {len(preds.y_true)} predictions",
                        path=data, expected="the test file the predictions were made on, row "
                        "for row", hint="pass the matching test file, or predictions written "
                        "by `ftlens eval` (they carry their inputs)")
    for n, (e, truth) in enumerate(zip(examples, preds.y_true, strict=True), 1):
        if e.truth.strip().casefold() != str(truth).strip().casefold():
            raise DataError(f"row {n}: the test file's answer is {e.truth!r} but the "
                            f"prediction's label is {truth!r}", path=data, line=e.line,
                            expected="the same rows in the same order")
    return examples


def _test_prompts(path: Path, preds: Predictions, data: Path | None) -> list[list[Any]]:
    if data is not None:
        return [e.prompt for e in _test_examples(preds, data)]
    prompts = read_prediction_inputs(path)
    if prompts is None:
        raise DataError("the predictions do not carry their inputs ('messages' on each row)",
                        path=path, hint="pass --data TEST.jsonl, the test file they were "
                        "made on (same rows, same order)")
    return prompts


def _test_lines(path: Path, preds: Predictions, data: Path | None) -> list[int]:
    """Each row's line in the test file: from ``data`` (checked row for row), else the rows'
    ``id``, which predictions written by ``ftlens eval`` (they carry their inputs) set to the
    line. Any other predictions need ``data``: their ids may mean anything."""
    if data is not None:
        return [e.line for e in _test_examples(preds, data)]
    ids = [str(i) for i in preds.ids] if preds.ids is not None else []
    if (ids and all(i.isdigit() for i in ids)
            and read_prediction_inputs(path) is not None):
        return [int(i) for i in ids]
    raise DataError("the predictions do not say which test lines they are", path=path,
                    hint="pass --data TEST.jsonl, the test file they were made on (same rows, "
                    "same order), or judge predictions written by `ftlens eval`")


def evaluate_files(path: str | Path, options: EvalOptions, fields: Fields | None = None,
                   compare_path: str | Path | None = None, *, train: Path | None = None,
                   valid: Path | None = None, data: Path | None = None,
                   tune_path: Path | None = None, audit: Path | None = None) -> Evaluation:
    """``train``/``valid``: the model's training data; test rows whose input occurs there
    are left out of the judged metrics (see :func:`ftlens.core.evaluation.evaluate`). The rows'
    inputs come from the predictions (``messages``, as ``ftlens eval`` writes them) or from
    ``data``, the test file, matched by position. ``tune_path``: predictions on other rows
    to choose the threshold on. ``audit``: ``ftlens audit --json`` of the files instead of
    ``train``/``valid``; rows are matched to its test lines by their ``id`` (the line, as
    ``ftlens eval`` writes it), by ``data``, or else by position."""
    fields = fields or Fields()
    check_tuning(options, tune_path is not None, "--tune-on")
    preds = read_predictions(path, fields)
    tune_on = read_predictions(tune_path, fields) if tune_path is not None else None
    baseline = None
    if compare_path is not None:
        baseline = align(preds, read_predictions(compare_path, fields), compare_path)
    seen = None
    if audit is not None:
        if train is not None or valid is not None:
            raise ConfigError("--audit and --train/--valid both say which test rows were seen "
                              "in training", hint="pick one")
        seen = seen_in_audit(audit, _test_lines(Path(path), preds, data), where=data or path)
    elif train is not None or valid is not None:
        for known in (train, valid):
            if known is not None:
                open_checked(known)  # a missing training file is named before anything else
        prompts = _test_prompts(Path(path), preds, data)
        seen = seen_in_training(prompts, train=train, valid=valid, where=data or path)
    elif data is not None:
        raise ConfigError("--data only matters with --train, --valid or --audit",
                          hint="add --train TRAIN.jsonl to leave out the test rows seen in "
                               "training")
    try:
        return evaluate(preds, options, baseline, seen=seen, tune_on=tune_on)
    except ValueError as exc:
        hint = ("tune on all rows (no --tune-on-split/--tune-cv) or add examples"
                if "tune the threshold" in str(exc) else
                "check --labels and --positive against the labels in the file")
        raise DataError(str(exc), path=path, hint=hint) from exc
