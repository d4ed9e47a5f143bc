"""The parsing shared by every training-log format: JSON, JSON lines and CSV records that remember
their line, numbers and steps checked one by one, and metric series built from records.

A record's line is known at once for JSON lines and CSV; for a JSON document it is found only when
an error needs it, by walking the document's array with the standard library's decoder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from ftlens.core.run import Series, StepsBack
from ftlens.errors import DataError
from ftlens.io.chat_jsonl import json_error_reason

MAX_STEP = 2**63 - 1
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")

Point = tuple[int, int, Mapping[str, Any]]  # (step, record index, the record's metrics)


@dataclass
class Records:
    """The records of one file: events, checkpoints, log entries or table rows."""

    path: Path
    items: list[Any]
    lines: list[int] | None = None  # each item's line, when known up front
    text: str = ""  # the JSON document, to find an item's line on demand
    key: str | None = None  # the top-level member holding the array; None: the array itself
    decoded: bool = False  # the lines are those of base64-decoded text, not of the file

    @cached_property
    def _doc_lines(self) -> list[int]:
        return array_item_lines(self.text, self.key)

    def line(self, index: int) -> int | None:
        if self.lines is not None:
            return self.lines[index] if index < len(self.lines) else None
        found = self._doc_lines
        return found[index] if index < len(found) else None

    def error(self, index: int | None, message: str, *, expected: str | None = None,
              hint: str | None = None, line: int | None = None) -> DataError:
        """An error at the record ``index`` (or at ``line``, or about the whole file)."""
        line = line if index is None else self.line(index)
        if self.decoded and line is not None:
            message = f"line {line} of the base64-decoded CSV: {message}"
            line = None
        return DataError(message, path=self.path, line=line, expected=expected, hint=hint)


def loads(text: str) -> Any:
    """orjson, or the standard library where the text holds NaN or Infinity (Python's json module
    writes them, e.g. into a diverged run's trainer_state.json)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        if "NaN" not in text and "Infinity" not in text:
            raise
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise json.JSONDecodeError("nested too deeply", text, 0) from exc


def json_error(path: Path, exc: json.JSONDecodeError, *, line: int | None = None,
               expected: str) -> DataError:
    """A parse error of a whole document (at the error's line) or of the JSON line ``line``."""
    reason = f"{exc.msg} at column {exc.colno}" if line is None else json_error_reason(exc)
    return DataError(
        f"not valid JSON ({reason})", path=path,
        line=exc.lineno if line is None else line, expected=expected,
        hint="the file may be cut short or hand-edited: look for a missing bracket, quote or "
        "comma; export it again if it was truncated")


def array_item_lines(text: str, key: str | None) -> list[int]:
    """The line of each element of the document's top-level array (or of its top-level member
    ``key``); [] where the document is not shaped so."""
    try:
        pos = _skip(text, 0)
        if key is not None:
            pos = _member(text, pos, key)
        if pos < 0 or not text.startswith("[", pos):
            return []
        lines: list[int] = []
        line, last = 1, 0
        pos = _skip(text, pos + 1)
        while pos < len(text) and text[pos] != "]":
            line += text.count("\n", last, pos)
            last = pos
            lines.append(line)
            _, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text.startswith(",", pos):
                pos = _skip(text, pos + 1)
        return lines
    except (ValueError, RecursionError):
        return []


def _skip(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _member(text: str, pos: int, key: str) -> int:
    """Where the value of the top-level object's member ``key`` starts; -1 if it has none."""
    if not text.startswith("{", pos):
        return -1
    pos = _skip(text, pos + 1)
    while text.startswith('"', pos):
        name, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # past the colon
        if name == key:
            return pos
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
    return -1


@dataclass(frozen=True)
class Table:
    header: list[str]
    header_line: int
    rows: Records  # dicts column -> cell (None where a short row has no cell)


def csv_table(path: Path, text: str, *, decoded: bool = False) -> Table:
    """The header and the rows of a CSV (or, by its first line, tab-separated) text."""
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_line = 1
    rows: list[dict[str, str | None]] = []
    lines: list[int] = []
    records = Records(path, rows, lines, decoded=decoded)
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                header_line = reader.line_num
                continue
            if len(cells) > len(header):
                lines.append(reader.line_num)
                raise records.error(
                    len(lines) - 1, f"{len(cells)} cells but the header has {len(header)} columns",
                    expected=f"one cell per column: {','.join(header)}",
                    hint="quote cells that contain the delimiter, or remove the extra cells")
            rows.append(dict(zip(header, [*cells, *[None] * (len(header) - len(cells))],
                                 strict=True)))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"not a readable CSV ({exc})", path=path, line=reader.line_num,
                        expected="comma-separated values with a header row",
                        hint="check that this is a training log; a quote left open, or a cell "
                        "of over 128 KiB (a line that is no table row), cannot be read") from exc
    return Table(header or [], header_line, records)


def to_step(value: Any) -> int:
    """A training step: a whole number >= 0 (10, 10.0, "10" or "1e3"); ValueError (saying what
    the value "is ...") otherwise."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    whole = isinstance(number, int) or (isinstance(number, float) and math.isfinite(number)
                                        and number.is_integer())
    if isinstance(value, bool) or not whole:
        raise ValueError(f"is {_show(value)}, not a whole number")
    step = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else int(
        number)
    if not 0 <= step <= MAX_STEP:
        raise ValueError(f"is {_show(value)}, outside 0 to 2**63-1")
    return step


def to_value(value: Any, name: str) -> float | None:
    """A metric value; None when missing or empty. NaN and inf are kept: they mean divergence."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return _float(value.strip(), name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is {_show(value)}, not a number")
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _float(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} is {_show(text)}, not a number") from None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def steps_back(records: Records, points: Iterable[Point], keys: Iterable[str]
               ) -> StepsBack | None:
    """The first row, in file order, whose step is not above the step of the column's row
    before it, for any of the columns ``keys`` (rows that log nothing there do not count:
    a table may log training and validation loss on rows of their own at one step)."""
    keys = list(keys)
    last: dict[str, int] = {}
    for step, index, metrics in points:
        for key in keys:
            value = metrics.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if key in last and step <= last[key]:
                line = None if records.decoded else records.line(index)
                return StepsBack(line, step, last[key], key)
            last[key] = step
    return None


def series_of(records: Records, points: Iterable[Point], fields: Mapping[str, str]
              ) -> dict[str, Series]:
    """For each record key in ``fields`` (key -> TrainingRun field) the series of its values over
    the points that have one; a repeated step keeps its last value."""
    pairs: dict[str, list[tuple[int, float]]] = {name: [] for name in fields.values()}
    for step, index, metrics in points:
        for key, name in fields.items():
            try:
                value = to_value(metrics.get(key), key)
            except ValueError as exc:
                raise records.error(index, str(exc), expected=f"{key} as a number, e.g. 0.4213",
                                    hint="fix or remove the value; an empty cell or null "
                                    "means 'not logged at this step'") from None
            if value is not None:
                pairs[name].append((step, value))
    return {name: Series.of(p) for name, p in pairs.items() if p}
