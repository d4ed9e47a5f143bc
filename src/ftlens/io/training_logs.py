"""Read a fine-tuning run's logged losses, whatever wrote them, into a
:class:`~ftlens.core.run.TrainingRun`.

Formats (``fmt``), told apart by content when ``fmt="auto"``:

- ``openai-csv``: OpenAI's result file, header ``step,train_loss,train_accuracy,valid_loss,
  valid_mean_token_accuracy``, raw or as the base64 text the files API returns (an ftlens DPO
  job's has ``step,train_loss,train_reward_accuracy,train_reward_margin,valid_loss,
  valid_reward_accuracy,valid_reward_margin``; the legacy fine-tunes API's
  ``step,elapsed_tokens,elapsed_examples,training_loss,…``); ``classification/…`` columns
  (task metrics: an ftlens job's with task metrics on, the legacy API's) are read too, as they
  are from events and checkpoints;
- ``openai-events``: ``client.fine_tuning.jobs.list_events`` output as JSON (a list or the SDK's
  page object) or JSON lines (one event, or one page, per line), in any order;
- ``openai-checkpoints``: ``jobs.checkpoints.list`` output (a list or a page object);
- ``trainer-state``: Hugging Face Trainer's (and TRL's) ``trainer_state.json``;
- ``generic``: any CSV or JSON-lines table, its columns named by ``step_col``/``train_col``/
  ``valid_col`` (default ``step``, ``train_loss``, ``valid_loss``).

Detection (``fmt="auto"``): text that is base64 of a CSV starting ``step,`` is OpenAI's result
file. Text starting with ``{`` or ``[`` is JSON (or, when the whole does not parse but its first
line is an object, JSON lines): an object with ``log_history`` is a trainer state; records with
``"object": "fine_tuning.job.checkpoint"`` (or ``step_number`` and ``metrics``) are checkpoints;
records with ``"object": "fine_tuning.job.event"`` (or ``type`` metrics/message) are events;
records with the step column are a generic table; anything else is an error that lists the known
formats. Any other text is CSV: OpenAI's header makes it the result file, else a generic table.

Every problem raises :class:`~ftlens.errors.DataError` naming the file and, where it has one, the
line; the ``source`` of the run is the format's name.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlens.core.chat_format import a_type, json_type
from ftlens.core.run import TrainingRun
from ftlens.errors import ConfigError, DataError
from ftlens.io.chat_jsonl import open_checked
from ftlens.io.text import decode_utf8
from ftlens.io.training_logs_formats import (
    DPO_COLUMNS,
    LEGACY_COLUMNS,
    OPENAI_COLUMNS,
    checkpoints_run,
    events_run,
    generic_run,
    result_csv_run,
    trainer_state_run,
)
from ftlens.io.training_logs_records import Records, Table, csv_table, json_error, loads

FORMATS = ("auto", "openai-csv", "openai-events", "openai-checkpoints", "trainer-state",
           "generic")
KNOWN = ("the OpenAI result CSV (raw or base64), OpenAI job events or checkpoints (JSON or "
         "JSONL from the SDK), a Hugging Face or TRL trainer_state.json, or a CSV/JSONL table "
         "with a step column and a loss column")
HOW = ("pass --format with one of " + ", ".join(FORMATS[1:]) + " if it is one of these, or "
       "read it as a table with --step-col/--train-col/--valid-col")
JOB_HINT = ("this is a fine-tuning job object, not its log: read the job's result file "
            "(client.files.content(job.result_files[0])) or its events "
            "(client.fine_tuning.jobs.list_events(job.id))")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


@dataclass(frozen=True)
class Columns:
    step: str
    train: str
    valid: str
    valid_given: bool  # named by the caller, so it must exist


def read_run(path: str | Path, *, fmt: str = "auto", step_col: str | None = None,
             train_col: str | None = None, valid_col: str | None = None) -> TrainingRun:
    """One run's metrics from a training log. ``fmt`` is one of :data:`FORMATS`; the columns
    apply to ``generic`` tables (forced, or when the content is none of the other formats)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown log format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    cols = Columns(step_col or "step", train_col or "train_loss", valid_col or "valid_loss",
                   valid_col is not None)
    if len({cols.step, cols.train, cols.valid}) < 3:
        raise ConfigError("the step, training-loss and validation-loss columns must differ",
                          hint="name three different columns with --step-col, --train-col "
                          "and --valid-col")
    p = open_checked(path)
    text = _read_text(p)
    decoded = _base64_csv(p, text) if fmt in ("auto", "openai-csv") else None
    if decoded is not None:
        return _csv_run(p, decoded, fmt, cols, base64=True)
    if text.lstrip()[:1] in ("{", "["):
        return _json_run(p, text, fmt, cols)
    return _csv_run(p, text, fmt, cols, base64=False)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", path=path) from exc
    text = decode_utf8(raw, path, expected=KNOWN, wrong_file="; a training log is text, so "
                       "this may also be the wrong file")
    if not text.strip():
        raise DataError("the file is empty", path=path, expected=KNOWN,
                        hint="export the log again; a job that has not started logs nothing")
    return text


def _base64_csv(path: Path, text: str) -> str | None:
    """The CSV inside base64 text (how the files API returns a result file), else None. Text
    that starts as the base64 of "step," but does not decode is a broken result file: said so,
    with the line of its first character that is not base64."""
    packed = text.strip().strip('"')
    if len(packed) < 8 or not _BASE64.fullmatch(packed):
        if packed.startswith(_STEP_B64):
            bad = text.index(packed) + next(i for i, c in enumerate(packed)
                                            if not _BASE64.fullmatch(c))
            raise DataError(
                f"the file looks like a base64 result file (it starts as the base64 of "
                f"\"step,\"), but {text[bad]!r} at column {bad - text.rfind(chr(10), 0, bad)} "
                "is not base64", path=path, line=text.count("\n", 0, bad) + 1,
                expected="the base64 text the files API returns for a result file",
                hint=_B64_HINT)
        return None
    try:
        decoded = base64.b64decode("".join(packed.split()), validate=True).decode("utf-8-sig")
    except (binascii.Error, ValueError) as exc:
        if packed.startswith(_STEP_B64):
            why = ("the decoded bytes are not UTF-8 text" if isinstance(exc, UnicodeDecodeError)
                   else "its length or padding is wrong, so it is probably cut short")
            raise DataError(
                f"the file looks like a base64 result file, but it does not decode: {why}",
                path=path, expected="the whole base64 text the files "
                "API returns for a result file", hint=_B64_HINT) from None
        return None
    return decoded if decoded.lstrip().startswith("step,") else None


_STEP_B64 = base64.b64encode(b"step,")[:6].decode()  # "c3RlcC": "step" and the next char's top
_B64_HINT = ("download it again whole: client.files.content(job.result_files[0]).read(), "
             "or decode it yourself (base64 -d) and pass the CSV")


def _csv_run(path: Path, text: str, fmt: str, cols: Columns, *, base64: bool) -> TrainingRun:
    if fmt not in ("auto", "openai-csv", "generic"):
        raise DataError(f"--format {fmt} reads JSON, but this is not JSON", path=path, line=1,
                        expected=KNOWN, hint="check the file, or pass --format auto")
    table = csv_table(path, text, decoded=base64)
    kind = next((k for k, cols in (("dpo", DPO_COLUMNS), ("openai", OPENAI_COLUMNS),
                                   ("legacy", LEGACY_COLUMNS))
                 if tuple(table.header[: len(cols)]) == cols), None)
    if fmt == "openai-csv" or (fmt == "auto" and kind is not None):
        if kind is None:
            raise table.rows.error(None, "not the header of an OpenAI result file",
                                   line=table.header_line, expected=",".join(OPENAI_COLUMNS),
                                   hint="use the file from the job's result_files, or " + HOW)
        return result_csv_run(table.rows, table.header, base64=base64, kind=kind)
    _check_header(table, cols)
    return generic_run(table.rows, cols.step, cols.train, cols.valid)


def _check_header(table: Table, cols: Columns) -> None:
    needed = [("step", cols.step), ("training-loss", cols.train)]
    if cols.valid_given:
        needed.append(("validation-loss", cols.valid))
    for what, name in needed:
        if name not in table.header:
            found = ", ".join(_short(h) for h in table.header[:12]) or "nothing"
            raise table.rows.error(
                None, f"the CSV header has no {name!r} column", line=table.header_line,
                expected=f"a {what} column {name!r} (the header has: {found})",
                hint=_mapping_hint(table.header))


def _short(name: str, limit: int = 40) -> str:
    """A column name as a message quotes it: one huge cell (a file that is no CSV) is cut."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _mapping_hint(header: list[str]) -> str:
    """Name the columns with the options, suggesting likely ones from the header."""
    def first(*words: str, avoid: tuple[str, ...] = ()) -> str | None:
        return next((h for h in header if len(h) <= 40 and any(w in h.lower() for w in words)
                     and not any(a in h.lower() for a in avoid)), None)

    guesses = [("--step-col", first("step", "iter")),
               ("--train-col", first("loss", avoid=("val", "eval", "test"))),
               ("--valid-col", first("val_loss", "valid", "eval_loss", "validation"))]
    example = " ".join(f"{opt} {name}" for opt, name in guesses if name)
    return ("name the columns with --step-col/--train-col/--valid-col"
            + (f" (e.g. {example})" if example else "")
            + ", or pass --format if the file is one of the known log formats")


def _json_run(path: Path, text: str, fmt: str, cols: Columns) -> TrainingRun:
    if fmt == "openai-csv":
        raise DataError("this is JSON, not the OpenAI result CSV", path=path, line=1,
                        expected=",".join(OPENAI_COLUMNS), hint=HOW)
    try:
        doc = loads(text)
    except json.JSONDecodeError as exc:
        records, state = _json_lines(path, text, exc), None
    else:
        records, state = _doc_records(path, text, doc)
    kind = fmt if fmt != "auto" else _detect(records, state, cols)
    if kind == "trainer-state":
        if state is None:
            raise records.error(None, "no log_history: not a trainer_state.json",
                                expected='{"log_history": [{"loss": 0.52, "step": 10}, ...], '
                                '"max_steps": 100, ...}', hint=HOW)
        return trainer_state_run(records, state)
    if kind == "openai-events":
        return events_run(records)
    if kind == "openai-checkpoints":
        return checkpoints_run(records)
    if kind == "generic":
        _check_rows(records, cols)
        return generic_run(records, cols.step, cols.train, cols.valid)
    job = len(records.items) == 1 and isinstance(records.items[0], dict) and str(
        records.items[0].get("object")) == "fine_tuning.job"
    raise records.error(None, f"not a training log ftlens knows: {_describe(records.items)}",
                        expected=KNOWN, hint=JOB_HINT if job else HOW)


def _json_lines(path: Path, text: str, doc_error: json.JSONDecodeError) -> Records:
    """One JSON object per line; a page object ({"object": "list", "data": [...]}) counts as
    its items. Where the first line is not a whole object, the document's error is reported."""
    lines = text.split("\n")
    filled = [line for line in lines if line.strip()]
    try:
        head = loads(filled[0])
    except json.JSONDecodeError:
        head = None
    if len(filled) < 2 or not isinstance(head, dict):
        raise json_error(path, doc_error, expected=KNOWN)
    items: list[Any] = []
    numbers: list[int] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            raise json_error(path, exc, line=number, expected="one JSON object per line") from exc
        if not isinstance(obj, dict):
            raise DataError(f"a JSON {json_type(obj)}, not an object", path=path, line=number,
                            expected="one JSON object per line (an event, a page of events, "
                            "or a table row)")
        page = obj.get("data") if obj.get("object") == "list" else None
        found = page if isinstance(page, list) else [obj]
        items += found
        numbers += [number] * len(found)
    return Records(path, items, numbers)


def _doc_records(path: Path, text: str, doc: Any) -> tuple[Records, dict[str, Any] | None]:
    """The records of a JSON document, and the document itself if it is a trainer state."""
    if isinstance(doc, list):
        return Records(path, doc, text=text), None
    if not isinstance(doc, dict):
        return Records(path, [doc], [1]), None
    if "log_history" in doc:
        if not isinstance(doc["log_history"], list):
            line = text.count("\n", 0, max(0, text.find('"log_history"'))) + 1
            raise DataError(f"log_history is {a_type(doc['log_history'])}, not a list",
                            path=path, line=line, expected='"log_history": [{"loss": 0.52, '
                            '"step": 10}, ...]')
        return Records(path, doc["log_history"], text=text, key="log_history"), doc
    if isinstance(doc.get("data"), list):
        return Records(path, doc["data"], text=text, key="data"), None
    return Records(path, [doc], [1]), None


def _detect(records: Records, state: dict[str, Any] | None, cols: Columns) -> str:
    if state is not None:
        return "trainer-state"
    dicts = [item for item in records.items if isinstance(item, dict)]
    if any(d.get("object") == "fine_tuning.job.checkpoint"
           or ("step_number" in d and "metrics" in d) for d in dicts):
        return "openai-checkpoints"
    if any(d.get("object") == "fine_tuning.job.event"
           or d.get("type") in ("metrics", "message") for d in dicts):
        return "openai-events"
    if any(cols.step in d for d in dicts):
        return "generic"
    return "unknown"


def _check_rows(records: Records, cols: Columns) -> None:
    names = [cols.step, cols.train] + ([cols.valid] if cols.valid_given else [])
    for name in names:
        if not any(isinstance(r, dict) and name in r for r in records.items):
            raise records.error(None, f"no record has a {name!r} field",
                                expected=f"objects such as {{{cols.step!r}: 10, "
                                f"{cols.train!r}: 0.52}}",
                                hint="name the fields with --step-col/--train-col/--valid-col")


def _describe(items: list[Any]) -> str:
    if not items:
        return "an empty list"
    first = items[0]
    if isinstance(first, dict):
        keys = ", ".join(repr(k) for k in list(first)[:8]) or "none"
        what = "an object" if len(items) == 1 else f"{len(items)} objects; the first"
        return f"{what} with keys {keys}"
    return f"{len(items)} item(s), the first a JSON {json_type(first)}"
