"""Task metrics while a classifier trains: what OpenAI's first fine-tuning API computed with
``compute_classification_metrics``, named as its result file named them, from label
probabilities of the validation rows. Pure: no I/O, no model.

Two classes: a row is predicted positive when its positive-class probability is above 0.5 (the
legacy API's rule); ``classification/precision``, ``/recall`` and ``/f{beta}`` are the positive
class's, ``/auroc`` and ``/auprc`` rank by that probability. Any number of classes: the most
probable label; ``classification/accuracy`` and ``/weighted_f1_score`` (the legacy multiclass
columns), and ftlens's ``/macro_f1`` and per-class ``/precision/<label>``, ``/recall/<label>``,
``/f1/<label>``; ``/rows`` is how many validation rows were scored. scikit-learn does the
arithmetic, as for ``ftlens metrics`` (the same numbers; only what is reported here is
computed, since it runs at every validation step).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from ftlens.core.classification import encode
from ftlens.core.labels import label_report, match_label
from ftlens.errors import ConfigError

PREFIX = "classification/"
ROWS = PREFIX + "rows"
SELECT_GRAMMAR = ("loss, accuracy, macro_f1, weighted_f1, f1, precision, recall, auroc, auprc, "
                  "or precision(LABEL), recall(LABEL), f1(LABEL); e.g. \"f1(spam)\"")
_PER_CLASS = ("precision", "recall", "f1")


class TaskMetricsError(ConfigError):
    """Task metrics that cannot be computed for a job; ``option`` names what is wrong:
    ``valid`` (the validation file), ``positive``, ``n_classes`` or ``betas``."""

    def __init__(self, message: str, option: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.option = option


@dataclass(frozen=True)
class TaskSpec:
    """What a job's validation rows are scored as: the labels (sorted), the positive class
    (two classes only) and the F-beta values reported for it."""

    labels: tuple[str, ...]
    positive: str | None = None
    betas: tuple[float, ...] = (1.0,)

    @property
    def binary(self) -> bool:
        return len(self.labels) == 2

    def columns(self) -> tuple[str, ...]:
        """Every metric name, in result-file order."""
        binary = (["precision", "recall", *(fbeta(b) for b in self.betas), "auroc", "auprc"]
                  if self.binary else [])
        names = ["rows", "accuracy", *binary, "weighted_f1_score", "macro_f1",
                 *(f"{m}/{label}" for label in self.labels for m in _PER_CLASS)]
        return tuple(PREFIX + n for n in names)

    def predict(self, probs: np.ndarray) -> list[str]:
        """The label of each row: positive above 0.5 for two classes, else the most probable."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.binary and self.positive is not None:
            pos = self.labels.index(self.positive)
            other = self.labels[1 - pos]
            return [self.positive if p > 0.5 else other for p in probs[:, pos]]
        return [self.labels[int(i)] for i in np.argmax(probs, axis=1)]


def no_validation() -> TaskMetricsError:
    return TaskMetricsError("task metrics score the validation file, and the job has none",
                            "valid", hint="give a validation file, or leave task metrics off")


def fbeta(beta: float) -> str:
    """The legacy column's name: ``f1.0``, ``f0.5``, ``f2.0``."""
    return f"f{float(beta)}"


def task_spec(answers: Mapping[str, Sequence[str | None]], *, positive: str | None = None,
              n_classes: int | None = None, betas: Sequence[float] | None = None) -> TaskSpec:
    """The spec for a job whose splits (``train``, ``valid``) have these final answers, as the
    audit's label detection reads them; :class:`ConfigError` when the validation answers are not
    a small label set, or the options do not fit them."""
    valid = list(answers.get("valid", ()))
    if not valid:
        raise no_validation()
    counts = {split: Counter(v for v in values if v is not None)
              for split, values in answers.items()}
    report = label_report(counts)
    free = sum(a is None for a in valid)
    if report is None or free:
        distinct = len(counts["valid"])
        why = (f"{free} validation answers are not plain text" if free and report is not None
               else f"the {len(valid)} validation answers take {distinct} distinct values")
        raise TaskMetricsError(f"task metrics need answers from a small label set; {why}, "
                               "which looks like free text, not classification", "valid",
                               hint="leave task metrics off for this job (its loss and "
                               "token accuracy are still reported)")
    labels = tuple(sorted(report.labels))
    if n_classes is not None and n_classes != len(labels):
        raise TaskMetricsError(f"{n_classes} classes were asked for, but the answers hold "
                               f"{len(labels)} labels: {', '.join(labels)}", "n_classes",
                               hint=f"ask for {len(labels)} or leave the count out")
    chosen = None
    if positive is not None:
        chosen = match_label(positive, labels)
        if chosen is None:
            raise TaskMetricsError(f"the positive class {positive!r} is not one of the "
                                   f"labels {', '.join(labels)}", "positive",
                                   hint="name one of them")
    if len(labels) == 2 and chosen is None:  # the rarer validation class, as `ftlens metrics`
        chosen = min(labels, key=lambda lab: counts["valid"].get(lab, 0))
    wanted = tuple(float(b) for b in (betas if betas is not None else (1.0,)))
    if any(not b > 0 for b in wanted):
        raise TaskMetricsError("the F-beta values must be positive numbers, e.g. 0.5, 1, 2",
                               "betas")
    return TaskSpec(labels, chosen if len(labels) == 2 else None,
                    tuple(dict.fromkeys(wanted)) or (1.0,))


def task_metrics(spec: TaskSpec, truth: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    """Every metric of :meth:`TaskSpec.columns` (AUROC and AUPRC left out when only one class
    is present) for rows with these true labels and label probabilities (columns in
    ``spec.labels`` order)."""
    labels, t, p = encode(list(truth), spec.predict(probs), spec.labels)
    k = len(labels)
    # the per-class rates only (run at every validation step: no intervals, no kappa)
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        t, p, labels=np.arange(k), zero_division=0)
    out = {ROWS: float(len(t)), PREFIX + "accuracy": float(np.mean(t == p)) if len(t) else 0.0}
    if spec.binary and spec.positive is not None:
        i = labels.index(spec.positive)
        out[PREFIX + "precision"], out[PREFIX + "recall"] = float(prec[i]), float(rec[i])
        for b in spec.betas:
            out[PREFIX + fbeta(b)] = float(skm.fbeta_score(
                t, p, beta=b, labels=[i], average=None, zero_division=0)[0])
        y = (t == i).astype(np.int64)
        if 0 < y.sum() < len(y):  # both classes present
            score = np.asarray(probs, dtype=np.float64)[:, i]
            out[PREFIX + "auroc"] = float(skm.roc_auc_score(y, score))
            out[PREFIX + "auprc"] = float(skm.average_precision_score(y, score))
    out[PREFIX + "weighted_f1_score"] = (float(np.average(f1, weights=support))
                                         if support.sum() else 0.0)
    out[PREFIX + "macro_f1"] = float(np.mean(f1))
    for j, label in enumerate(labels):
        for name, values in zip(_PER_CLASS, (prec, rec, f1), strict=True):
            out[f"{PREFIX}{name}/{label}"] = float(values[j])
    return out


_CALL = re.compile(r"\s*(precision|recall|f1)\s*\(\s*(.+?)\s*\)\s*", re.IGNORECASE)
_ALIASES = {"f1": ("macro_f1", "f1.0"), "macro_f1": ("macro_f1",),
            "weighted_f1": ("weighted_f1_score",), "weighted_f1_score": ("weighted_f1_score",),
            "accuracy": ("accuracy",), "precision": ("precision",), "recall": ("recall",),
            "auroc": ("auroc",), "auc": ("auroc",), "auprc": ("auprc",)}


def _key(name: str) -> str:
    """A metric name as the aliases spell it: "Macro-F1" and "weighted F1" read as
    "macro_f1" and "weighted_f1" (how :func:`describe` words them)."""
    return re.sub(r"[\s-]+", "_", name.strip().casefold())


def check_select(rule: str) -> str:
    """``rule`` if it reads as a selection rule (whatever the run logs), else
    :class:`ConfigError` with the grammar."""
    text = rule.strip()
    if (_key(text) not in ("loss", "valid_loss", "validation_loss")
            and not _CALL.fullmatch(text) and _key(text) not in _ALIASES):
        raise ConfigError(f"cannot read the selection rule {rule!r}",
                          hint=f"use one of: {SELECT_GRAMMAR}")
    return rule


def select_column(rule: str, available: Collection[str]) -> str | None:
    """The metric a checkpoint is chosen by: None for ``loss`` (validation loss), else the
    ``classification/…`` name in ``available`` that ``rule`` names. Labels match as
    elsewhere (case and surrounding spaces aside)."""
    text = rule.strip()
    if _key(text) in ("loss", "valid_loss", "validation_loss"):
        return None
    call = _CALL.fullmatch(text)
    if call:
        metric, label = call.group(1).casefold(), call.group(2).strip("'\"")
        labels = {c[len(PREFIX) + len(metric) + 1:] for c in available
                  if c.startswith(f"{PREFIX}{metric}/")}
        found = match_label(label, labels)
        if found is not None:
            return f"{PREFIX}{metric}/{found}"
        if not available:
            raise ConfigError(f"cannot select by {rule!r}: this run logged no task metrics",
                              hint="select by loss, or train with task metrics on")
        raise ConfigError(f"cannot select by {rule!r}: no {metric} is logged for {label!r}"
                          + (f" (labels: {', '.join(sorted(labels))})" if labels else ""),
                          hint=f"use one of: {SELECT_GRAMMAR}")
    names = _ALIASES[_key(check_select(text))]
    for name in names:
        if PREFIX + name in available:
            return PREFIX + name
    raise ConfigError(f"cannot select by {rule!r}: the run logged no "
                      f"{' or '.join(PREFIX + n for n in names)}",
                      hint="select by loss" + (", or by one of: " + ", ".join(
                          sorted(c[len(PREFIX):] for c in available if c != ROWS))
                          if available else ", or train with task metrics on"))


def default_select(available: Collection[str]) -> str | None:
    """Macro-F1 when the run logged task metrics (the legacy files' weighted F1 or F1 of the
    positive class when that is all they have), else None: validation loss."""
    for name in ("macro_f1", "weighted_f1_score", "f1.0", "accuracy"):
        if PREFIX + name in available:
            return PREFIX + name
    return None


def describe(column: str) -> str:
    """``classification/recall/spam`` -> ``recall(spam)``; ``classification/macro_f1`` ->
    ``macro-F1``."""
    name = column.removeprefix(PREFIX)
    for m in _PER_CLASS:
        if name.startswith(m + "/"):
            return f"{m}({name[len(m) + 1:]})"
    return {"macro_f1": "macro-F1", "weighted_f1_score": "weighted F1", "f1.0": "F1",
            "auroc": "AUROC", "auprc": "AUPRC"}.get(name, name.replace("_", " "))
