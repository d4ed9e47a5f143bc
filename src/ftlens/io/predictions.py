"""Read a predictions file (JSONL or CSV) for ``ftlens metrics``.

JSONL: one object per line, e.g. ``{"label": "spam", "prediction": "ham", "probs": {"spam":
0.31, "ham": 0.69}}`` or with ``"score": 0.31`` (the positive class's score). CSV: a header with
the label and prediction columns, optionally ``score`` and one ``p_<label>`` column per class.
Field names are configurable. The two are told apart by content where it is plain (JSON lines
named .csv are read as JSON lines, a CSV table with the label and prediction columns named .jsonl
as CSV), else by the name; a JSON array of rows is refused once, with the command that turns it
into JSON lines. Every problem names the file and line: a true label that is
null or empty, a probability or score outside [0, 1]. True labels that differ only in case
("OK" and "ok") are one class, spelled as most rows spell it, in the predictions and
probabilities too (surrounding spaces never count).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ftlens.core.chat_format import a_type
from ftlens.core.evaluation import Predictions
from ftlens.errors import DataError
from ftlens.io.chat_jsonl import json_error_reason, open_checked
from ftlens.io.text import decode_utf8


@dataclass(frozen=True)
class Fields:
    label: str = "label"
    prediction: str = "prediction"
    score: str = "score"
    probs: str = "probs"  # JSONL: an object label -> probability
    prob_prefix: str = "p_"  # CSV: columns p_<label>
    id: str = "id"


def read_predictions(path: str | Path, fields: Fields | None = None) -> Predictions:
    fields = fields or Fields()
    p = open_checked(path)
    raw = p.read_bytes()
    if not raw.strip():
        raise DataError("the file is empty", path=p,
                        expected="one prediction per line (JSONL) or a CSV with a header")
    text = decode_utf8(raw, p)
    _refuse_json_array(text, p)
    rows = _csv_rows(text, p, fields) if _is_csv(p, text, fields) else _jsonl_rows(text, p)
    return _collect(rows, p, fields)


def _refuse_json_array(text: str, path: Path) -> None:
    """A JSON array of rows (pretty-printed or on one line) is said to be one, once."""
    if not text.lstrip().startswith("["):
        return
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return  # a broken line 1, reported as such
    if isinstance(doc, list):
        raise DataError("the file is a JSON array, not JSON lines", path=path,
                        expected='one prediction object per line, e.g. {"label": "spam", '
                        '"prediction": "ham"}', hint="write one row per line: jq -c '.[]' "
                        f"{path} > {str(path).rsplit('.', 1)[0]}.lines.jsonl")


def _is_csv(path: Path, text: str, fields: Fields) -> bool:
    """By the content where it is plain, else by the name: JSON lines named .csv are read as
    JSON lines, a CSV table with the label and prediction columns named .jsonl as CSV."""
    if text.lstrip().startswith("{"):
        return False
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        header = text.lstrip("\r\n").split("\n", 1)[0].strip()
        cells = {c.strip().strip('"') for c in header.split("\t" if "," not in header else ",")}
        return {fields.label, fields.prediction} <= cells
    return True


def _jsonl_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # lines end at "\n" only (a "\r" before it is JSON whitespace): str.splitlines would also
    # end them at U+2028, U+0085, form feeds... that a JSON string may hold
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({json_error_reason(exc)})", path=path, line=number,
                            expected='one object per line, e.g. {"label": "spam", '
                            '"prediction": "ham"}') from exc
        if not isinstance(obj, dict):
            raise DataError(f"the line is {a_type(obj)}, not an object", path=path,
                            line=number, expected='{"label": ..., "prediction": ...}')
        yield number, obj


def _csv_rows(text: str, path: Path, fields: Fields) -> Iterator[tuple[int, dict[str, Any]]]:
    first = text.lstrip("\r\n").split("\n", 1)[0]
    tabs = path.suffix.lower() == ".tsv" or ("\t" in first and "," not in first)
    dialect = "excel-tab" if tabs else "excel"
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        yield from _csv_records(reader, path, fields)
    except csv.Error as exc:  # e.g. a cell over the csv module's field limit (128 KiB)
        raise DataError(f"not a readable CSV ({exc})", path=path,
                        line=reader.reader.line_num or 1,
                        expected="comma-separated values with a header row",
                        hint="check the quoting on this line; shorten cells over 128 KiB"
                        ) from exc


def _csv_records(reader: csv.DictReader[str], path: Path, fields: Fields
                 ) -> Iterator[tuple[int, dict[str, Any]]]:
    header = reader.fieldnames or []
    for need in (fields.label, fields.prediction):
        if need not in header:
            raise DataError(f"the CSV header has no {need!r} column", path=path,
                            line=reader.reader.line_num or 1,
                            expected=f"columns {fields.label!r} and {fields.prediction!r} "
                            f"(found: {', '.join(header[:8])})",
                            hint="rename the columns or pass --label-field/--prediction-field")
    prob_cols = {c[len(fields.prob_prefix):]: c for c in header
                 if fields.prob_prefix and c.startswith(fields.prob_prefix)}
    for row in reader:
        number = reader.line_num
        if None in row:
            raise DataError(f"{len(header) + len(row[None])} cells but the header has "
                            f"{len(header)} columns", path=path, line=number,
                            hint="quote cells that contain commas")
        obj: dict[str, Any] = {k: v for k, v in row.items() if k not in prob_cols.values()}
        if prob_cols:
            obj[fields.probs] = {label: row[col] for label, col in prob_cols.items()}
        if obj.get(fields.score) == "":
            obj.pop(fields.score)
        yield number, obj


def _as_label(value: Any, what: str, path: Path, line: int) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if value is None:
        return ""
    raise DataError(f"{what} is {a_type(value)}, not a label", path=path, line=line,
                    expected="a string (or number) label")


def _as_truth(value: Any, what: str, path: Path, line: int) -> str:
    """A true label: never empty (an empty prediction is an unparseable answer, an empty truth
    is a row nobody labelled)."""
    label = _as_label(value, what, path, line)
    if not label:
        raise DataError(f"the true label {what!r} is {'null' if value is None else 'empty'}",
                        path=path, line=line, expected="the row's true label, e.g. \"spam\"",
                        hint="label the row, or remove it from the file")
    return label


def _as_number(value: Any, what: str, path: Path, line: int) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DataError(f"{what} is {value!r}, not a finite number", path=path, line=line,
                        expected="a probability such as 0.73")
    if not 0.0 <= number <= 1.0:
        raise DataError(f"{what} is {value!r}, not a probability", path=path, line=line,
                        expected="a probability between 0 and 1, such as 0.73",
                        hint="give probabilities (e.g. the softmax of the model's logits), "
                        "not raw scores or logits")
    return number


def _fold_case(values: list[str]) -> dict[str, str]:
    """Labels that differ only in case are one class, spelled as most rows spell it (the
    first seen on a tie): the same rule the metrics use to match answers to labels."""
    counts: dict[str, dict[str, int]] = {}
    for v in values:
        spellings = counts.setdefault(v.casefold(), {})
        spellings[v] = spellings.get(v, 0) + 1
    return {v: max(sp, key=sp.__getitem__) for sp in counts.values() if len(sp) > 1
            for v in sp}


def _collect(rows: Iterator[tuple[int, dict[str, Any]]], path: Path, f: Fields) -> Predictions:
    y_true: list[str] = []
    y_pred: list[str] = []
    ids: list[str] = []
    scores: list[float] = []
    probs: list[dict[str, float]] = []
    lacking: dict[str, int] = {}  # field -> first line without it
    for number, obj in rows:
        if f.label not in obj:
            raise DataError(f"no {f.label!r} field", path=path, line=number,
                            expected=f"the true label in {f.label!r}",
                            hint="pass --label-field NAME if it is called differently")
        y_true.append(_as_truth(obj[f.label], f.label, path, number))
        y_pred.append(_as_label(obj.get(f.prediction), f.prediction, path, number))
        if f.id in obj:
            ids.append(str(obj[f.id]))
        if f.score in obj and obj[f.score] is not None:
            scores.append(_as_number(obj[f.score], f.score, path, number))
        else:
            lacking.setdefault("score", number)
        if isinstance(obj.get(f.probs), dict):
            probs.append({str(k): _as_number(v, f"{f.probs}[{k!r}]", path, number)
                          for k, v in obj[f.probs].items()})
        else:
            lacking.setdefault("probs", number)
    n = len(y_true)
    if n == 0:
        raise DataError("no predictions in the file", path=path)
    for name, got in (("score", len(scores)), ("probs", len(probs))):
        if 0 < got < n:
            raise DataError(f"no {name!r} here, but {got} of {n} rows have one", path=path,
                            line=lacking[name], expected=f"{name!r} on every row or on none")
    fold = _fold_case(y_true)
    if fold:  # "OK" beside "ok": one class, in truths, predictions and probabilities alike
        y_true = [fold.get(v, v) for v in y_true]
        canon = {k.casefold(): v for k, v in fold.items()}
        y_pred = [canon.get(v.casefold(), v) for v in y_pred]
        probs = [_merged(row, canon) for row in probs]
    prob_labels = tuple(sorted({k for row in probs for k in row}))
    prob_arr = (np.array([[row.get(lab, 0.0) for lab in prob_labels] for row in probs])
                if probs else None)
    return Predictions(
        y_true=y_true, y_pred=y_pred, scores=np.array(scores) if scores else None,
        probs=prob_arr, prob_labels=prob_labels,
        ids=ids if len(ids) == n else None,
    )


def _merged(row: dict[str, float], canon: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in row.items():
        key = canon.get(k.casefold(), k)
        out[key] = out.get(key, 0.0) + v
    return out


def read_prediction_inputs(path: str | Path) -> list[list[Any]] | None:
    """The prompt messages each row carries (``messages``, as ``ftlens eval`` writes them), in
    the rows' order; None when the file is CSV or a row has none."""
    p = open_checked(path)
    text = p.read_bytes().decode("utf-8-sig", "replace")
    if _is_csv(p, text, Fields()):
        return None
    out = []
    for _, obj in _jsonl_rows(text, p):
        messages = obj.get("messages")
        if not isinstance(messages, list):
            return None
        out.append(messages)
    return out
