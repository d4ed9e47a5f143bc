"""The report model: a run directory's JSON, checked and typed. Pure: no files, no clock.

:func:`build_report` takes the parsed contents of the run directory's files (see
:mod:`ftlens.report`) and returns a :class:`Report`. Anything that is not the shape the ftlens
commands write is a :class:`~ftlens.errors.DataError` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ftlens.core.decision import Decision, decide
from ftlens.core.findings import SEVERITY_ORDER, Finding, Verdict
from ftlens.errors import DataError
from ftlens.report import AUDIT_FILE, CURVES_FILE, EVAL_FILE, PROVENANCE_FILE, SECTION_FILES

SectionName = Literal["audit", "curves", "eval"]
SECTION_ORDER: tuple[SectionName, ...] = ("audit", "curves", "eval")
SECTION_TITLES: Mapping[str, str] = {
    "audit": "Data audit", "curves": "Loss curves", "eval": "Evaluation"}
VERDICTS: tuple[Verdict, ...] = ("ready", "inconclusive", "not_ready")  # best to worst
COMMANDS: Mapping[str, str] = {
    AUDIT_FILE: "ftlens audit --json", CURVES_FILE: "ftlens curves --json",
    EVAL_FILE: "ftlens metrics --json", PROVENANCE_FILE: "ftlens.report.provenance"}
NUM = (int, float)


@dataclass(frozen=True)
class Section:
    """One analysis: where it came from, its verdict and findings, and its checked data."""

    name: SectionName
    source: str  # the file it was read from, e.g. "audit.json"
    verdict: Verdict
    findings: tuple[Finding, ...]
    data: Mapping[str, Any]
    note: str = ""  # e.g. how the loss points were obtained

    @property
    def title(self) -> str:
        return SECTION_TITLES[self.name]


@dataclass(frozen=True)
class DataFile:
    name: str  # train, valid, test, predictions, ...
    path: str
    sha256: str
    bytes: int | None = None


@dataclass(frozen=True)
class Provenance:
    ftlens_version: str | None = None
    date: str | None = None
    model: str | None = None
    base_model: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    data: tuple[DataFile, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ftlens_version": self.ftlens_version, "date": self.date, "model": self.model,
            "base_model": self.base_model, "hyperparameters": dict(self.hyperparameters),
            "data": [{"name": d.name, "path": d.path, "sha256": d.sha256, "bytes": d.bytes}
                     for d in self.data],
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class Report:
    title: str
    sections: tuple[Section, ...]
    provenance: Provenance | None = None

    @property
    def decision(self) -> Decision:
        """The overall verdict, from one rule set over every section, with its reasons."""
        return decide({s.name: s.findings for s in self.sections})

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def findings(self) -> list[tuple[Section, Finding]]:
        """Every finding with its section: most severe first, then in section order."""
        pairs = [(s, f) for s in self.sections for f in s.findings]
        return sorted(pairs, key=lambda p: SEVERITY_ORDER[p[1].severity])


def bad(source: str, what: str) -> DataError:
    return DataError(
        f"not the JSON that `{COMMANDS.get(source, 'ftlens')}` writes: {what}", path=source,
        hint=f"regenerate it with `{COMMANDS.get(source, 'ftlens')}` (> {source}), "
        "or remove it from the run directory")


def need(obj: Any, key: str, kind: type | tuple[type, ...], source: str, where: str = "",
         optional: bool = False) -> Any:
    """``obj[key]`` when it has the expected type (None allowed when ``optional``)."""
    if not isinstance(obj, dict):
        raise bad(source, f"'{where.rstrip('.') or 'the top level'}' is not an object")
    if key not in obj:
        if optional:
            return None
        raise bad(source, f"missing key '{where}{key}'")
    value = obj[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) and kind in (NUM, int):
        raise bad(source, f"'{where}{key}' is a boolean, expected a number")
    if not isinstance(value, kind):
        raise bad(source, f"'{where}{key}' is {_type(value)}, expected {_names(kind)}")
    return value


TYPE_WORDS: Mapping[type, str] = {dict: "an object", list: "a list", str: "a string",
                                  int: "a number", float: "a number", bool: "a boolean"}


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return TYPE_WORDS.get(type(value), f"a {type(value).__name__}")


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    words: dict[type, str] = {dict: "an object", list: "a list", str: "a string",
                              int: "a number", float: "a number", bool: "true or false"}
    return " or ".join(dict.fromkeys(words.get(k, k.__name__) for k in kinds))


def numbers(values: Any, source: str, where: str, nullable: bool = False) -> list[Any]:
    if not isinstance(values, list):
        raise bad(source, f"'{where}' is {_type(values)}, expected a list")
    for i, v in enumerate(values):
        if (v is None and nullable) or (isinstance(v, NUM) and not isinstance(v, bool)):
            continue
        raise bad(source, f"'{where}[{i}]' is {_type(v)}, expected a number")
    return values


def findings_of(data: Mapping[str, Any], source: str) -> tuple[Finding, ...]:
    out = []
    for i, item in enumerate(need(data, "findings", list, source)):
        w = f"findings[{i}]."
        severity = need(item, "severity", str, source, w)
        if severity not in SEVERITY_ORDER:
            raise bad(source, f"'{w}severity' is {severity!r}, expected fail, warn or info")
        out.append(Finding(
            id=need(item, "id", str, source, w), severity=severity,
            title=need(item, "title", str, source, w),
            evidence=need(item, "evidence", str, source, w),
            advice=need(item, "advice", str, source, w, optional=True) or "",
            inconclusive=bool(need(item, "inconclusive", bool, source, w, optional=True)),
            details=need(item, "details", dict, source, w, optional=True) or {}))
    return tuple(out)


def verdict_of(data: Mapping[str, Any], source: str) -> Verdict:
    value = need(data, "verdict", str, source)
    if value not in VERDICTS:
        raise bad(source, f"'verdict' is {value!r}, expected ready, not_ready or inconclusive")
    return value


def _check_audit(d: Mapping[str, Any], src: str) -> None:
    for name, split in need(d, "splits", dict, src).items():
        w = f"splits.{name}."
        for key in ("path",):
            need(split, key, str, src, w)
        for key in ("lines", "examples"):
            need(split, key, int, src, w)
        need(split, "format_errors", dict, src, w)
        need(split, "tokens", dict, src, w)
    need(d, "model", dict, src)
    cost = need(d, "cost", dict, src, optional=True)
    if cost is not None:
        need(cost, "billed_tokens", NUM, src, "cost.")
    labels = need(d, "labels", dict, src, optional=True)
    if labels is not None:
        need(labels, "labels", list, src, "labels.")
        for split, counts in need(labels, "counts", dict, src, "labels.").items():
            if not isinstance(counts, dict):
                raise bad(src, f"'labels.counts.{split}' is {_type(counts)}, expected an object")


def _check_series(s: Any, src: str, where: str) -> None:
    n = len(numbers(need(s, "steps", list, src, where), src, where + "steps"))
    for key in ("raw", "smooth"):
        if len(numbers(need(s, key, list, src, where), src, where + key, nullable=True)) != n:
            raise bad(src, f"'{where}{key}' and '{where}steps' differ in length")
    need(s, "noise", NUM, src, where)


def _check_curves(d: Mapping[str, Any], src: str) -> None:
    for name in ("train", "valid"):
        series = need(d, name, dict, src, optional=True)
        if series is not None:
            _check_series(series, src, f"{name}.")
    overfit = need(d, "overfitting", dict, src, optional=True)
    if overfit is not None:
        need(overfit, "onset_step", NUM, src, "overfitting.")
    best = need(d, "best_checkpoint", dict, src, optional=True)
    if best is not None:
        need(best, "step", NUM, src, "best_checkpoint.")
    numbers(need(d, "epoch_steps", list, src, optional=True) or [], src, "epoch_steps")


def _check_metrics(m: Any, src: str, where: str) -> None:
    need(m, "n", int, src, where)
    need(m, "accuracy", NUM, src, where)
    conf = need(m, "confusion", dict, src, where)
    rows = need(conf, "rows", list, src, where + "confusion.")
    cols = need(conf, "columns", list, src, where + "confusion.")
    matrix = need(conf, "matrix", list, src, where + "confusion.")
    if len(matrix) != len(rows) or any(
            len(numbers(r, src, where + "confusion.matrix")) != len(cols) for r in matrix):
        raise bad(src, f"'{where}confusion.matrix' does not match its rows and columns")
    for i, c in enumerate(need(m, "per_class", list, src, where)):
        w = f"{where}per_class[{i}]."
        need(c, "label", str, src, w)
        for key in ("precision", "recall", "f1", "support"):
            need(c, key, NUM, src, w)


def _check_eval(d: Mapping[str, Any], src: str) -> None:
    _check_metrics(need(d, "metrics", dict, src), src, "metrics.")
    need(d, "positive", str, src, optional=True)
    t = need(d, "threshold", dict, src, optional=True)
    if t is not None:
        need(t, "positive", str, src, "threshold.")
        scores = numbers(need(t, "scores", list, src, "threshold."), src, "threshold.scores")
        flags = numbers(need(t, "is_positive", list, src, "threshold."), src,
                        "threshold.is_positive")
        if len(scores) != len(flags) or any(f not in (0, 1) for f in flags):
            raise bad(src, "'threshold.is_positive' must be 0/1 flags, one per score")
        chosen = need(t, "chosen", dict, src, "threshold.", optional=True)
        if chosen is not None:
            for key in ("threshold", "precision", "recall"):
                need(chosen, key, NUM, src, "threshold.chosen.")
        curves = need(t, "curves", dict, src, "threshold.")
        pr = need(curves, "pr", dict, src, "threshold.curves.")
        for i, p in enumerate(need(pr, "points", list, src, "threshold.curves.pr.")):
            if len(numbers(p, src, f"threshold.curves.pr.points[{i}]")) != 2:
                raise bad(src, f"'threshold.curves.pr.points[{i}]' is not a [recall, "
                          "precision] pair")
    c = need(d, "comparison", dict, src, optional=True)
    if c is not None:
        need(c, "n", int, src, "comparison.")
        need(c, "mcnemar_p", NUM, src, "comparison.", optional=True)
        for i, diff in enumerate(need(c, "differences", list, src, "comparison.")):
            w = f"comparison.differences[{i}]."
            need(diff, "name", str, src, w)
            need(diff, "estimate", NUM, src, w)
    k = need(d, "checkpoint", dict, src, optional=True)
    if k is not None:
        for key, kind in (("step", int), ("model", str), ("final_model", str), ("why", str),
                          ("ship", str), ("rows", int), ("mcnemar_p", NUM),
                          ("only_checkpoint", int), ("only_final", int)):
            need(k, key, kind, src, "checkpoint.")
        for i, diff in enumerate(need(k, "differences", list, src, "checkpoint.")):
            w = f"checkpoint.differences[{i}]."
            need(diff, "name", str, src, w)
            for key in ("estimate", "low", "high"):
                need(diff, key, NUM, src, w)


CHECKS = {"audit": _check_audit, "curves": _check_curves, "eval": _check_eval}


def section(name: SectionName, data: Any, source: str | None = None, note: str = "") -> Section:
    src = source or SECTION_FILES[name]
    if not isinstance(data, dict):
        raise bad(src, f"the top level is {_type(data)}, expected an object")
    CHECKS[name](data, src)
    return Section(name, src, verdict_of(data, src), findings_of(data, src), data, note)


def provenance(data: Any, source: str = PROVENANCE_FILE) -> Provenance:
    if not isinstance(data, dict):
        raise bad(source, f"the top level is {_type(data)}, expected an object")
    files = []
    for i, item in enumerate(need(data, "data", list, source, optional=True) or []):
        w = f"data[{i}]."
        size = need(item, "bytes", int, source, w, optional=True)
        files.append(DataFile(need(item, "name", str, source, w),
                              need(item, "path", str, source, w),
                              need(item, "sha256", str, source, w), size))
    text = {key: need(data, key, str, source, optional=True)
            for key in ("ftlens_version", "date", "model", "base_model")}
    return Provenance(
        hyperparameters=need(data, "hyperparameters", dict, source, optional=True) or {},
        data=tuple(files), extra=need(data, "extra", dict, source, optional=True) or {},
        **text)


def build_report(title: str, sections: Sequence[Section],
                 provenance: Provenance | None = None) -> Report:
    order = {name: i for i, name in enumerate(SECTION_ORDER)}
    return Report(title, tuple(sorted(sections, key=lambda s: order[s.name])), provenance)
