"""Mutated training logs through ``read_run`` (``ftlens curves``): OpenAI's result CSV (raw and
base64), job events (JSON lines and JSON), checkpoints, Hugging Face trainer states and generic
tables, one record mutated per file or the whole file. The only exception that escapes is
:class:`~ftlens.errors.DataError` (what the CLI prints as one message); it names a line that
exists — the mutated record's own where one record was mutated — unless it is about the whole
file. A run that is read is diagnosed and rendered as the CLI does. Cases and refusals are
tallied."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from tests.support.mutation import (
    file_op,
    line_ops,
    mutate_csv_row,
    mutate_file,
    mutate_line,
    mutation,
    n_lines,
    outcome_of,
    packed,
    require_cases,
    tally,
)

from ftlens.cli.curves_view import show_diagnosis
from ftlens.core.curves import diagnose
from ftlens.core.curves_json import diagnosis_to_dict
from ftlens.errors import DataError
from ftlens.io.training_logs import read_run

TALLY = tally("curves")
FIXTURES = Path(__file__).parents[1] / "fixtures" / "curves"
PER_EXAMPLE = 25  # files read per hypothesis example, each a case
#: refusals about the whole file, which name no line
WHOLE_FILE = ("the file is empty", "no training loss in the file",
              "not a training log ftlens knows", "no metrics events among",
              "the checkpoint list is empty", "no record has a", "no log_history",
              "the file looks like a base64 result file", "the file is encoded as UTF-16")
DECODED = re.compile(r"^line (\d+) of the base64-decoded CSV: ")


@pytest.fixture(scope="module", autouse=True)
def _at_least_10000_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from require_cases(request, TALLY, 10_000)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutation-curves")


def _text_lines(name: str, n: int) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()[:n]


def _json_lines(name: str, n: int) -> list[Any]:
    return [json.loads(line) for line in _text_lines(name, n)]


def _doc(name: str, key: str, n: int = 30, *, bare: bool = False
         ) -> tuple[list[str], list[Any], list[str]]:
    """A JSON document as lines around its records (those of ``key``), one record a line:
    (lines before, records, lines after). ``bare``: the records as a list of their own."""
    doc = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if bare:
        return ["["], doc[key][:n], ["]"]
    rest = {k: v for k, v in doc.items() if k != key}
    head = json.dumps(rest)[:-1] + "," if rest else "{"
    return [head, f'"{key}": ['], doc[key][:n], ["]}"]


#: (kind, suffix, seed, read_run's options); a doc seed is (lines before, records, lines after)
SEEDS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("jsonl", ".jsonl", _json_lines("generic.jsonl", 20), {}),
    ("jsonl", ".jsonl", _json_lines("openai_events.jsonl", 33), {}),
    ("csv", ".csv", _text_lines("openai_result.csv", 25), {}),
    ("csv", ".csv", _text_lines("openai_legacy_classification.csv", 20), {}),
    ("csv", ".csv", _text_lines("generic.csv", 25),
     {"step_col": "iteration", "train_col": "loss", "valid_col": "val_loss"}),
    ("doc", ".json", _doc("openai_events.json", "data"), {}),
    ("doc", ".json", _doc("openai_checkpoints.json", "data"), {}),
    ("doc", ".json", _doc("trainer_state.json", "log_history"), {}),
    ("doc", ".json", _doc("trl_trainer_state.json", "log_history"), {}),
    ("doc", ".json", _doc("openai_events.json", "data", bare=True), {}),
    ("b64", ".b64", _text_lines("openai_result.csv", 25), {}),
    # a validation loss on every step: long enough to be smoothed (short ones are not)
    ("jsonl", ".jsonl", [{"step": i, "train_loss": round(2 - i / 30, 4),
                          "valid_loss": round(2.1 - i / 40, 4)} for i in range(1, 41)], {}),
    ("csv", ".csv", ["step,train_loss,valid_loss", *(f"{i},{2 - i / 30:.4f},{2.1 - i / 40:.4f}"
                                                      for i in range(1, 41))], {}),
]


def _build(kind: str, seed: Any, mutated: dict[int, bytes]) -> bytes:
    """The file of a seed with its records ``mutated`` (0-based index -> line)."""
    if kind == "doc":
        before, records, after = seed
        rows = [json.dumps(r).encode() for r in records]
    else:
        before, after = [], []
        rows = [json.dumps(r).encode() if kind == "jsonl" else r.encode() for r in seed]
    for k, line in mutated.items():
        rows[k] = line
    if kind == "doc":
        rows = [r + b"," for r in rows[:-1]] + rows[-1:]
    lines = [b.encode() for b in before] + rows + [a.encode() for a in after]
    data = b"".join(x + b"\n" for x in lines)
    if kind == "b64":
        packed = base64.b64encode(data)
        data = b"\n".join(packed[i:i + 76] for i in range(0, len(packed), 76)) + b"\n"
    return data


def _line_of(kind: str, seed: Any, k: int) -> int:
    """The line record ``k`` is on (base64: its line in the decoded CSV)."""
    return (len(seed[0]) if kind == "doc" else 0) + k + 1


def _mutated(kind: str, seed: Any, k: int, ops: list[tuple[str, int]]) -> bytes:
    record = (seed[1] if kind == "doc" else seed)[k]
    return mutate_line(record, ops) if kind in ("jsonl", "doc") else mutate_csv_row(record, ops)


def _records(kind: str, seed: Any) -> int:
    return len(seed[1]) if kind == "doc" else len(seed)


def read(path: Path, data: bytes, options: dict[str, str], *, diagnosed: bool = False,
         shown: bool = False) -> DataError | None:
    """The refusal of the file, None when it is read (and then, if ``diagnosed``, diagnosed
    and written as JSON, and if ``shown`` printed as the CLI prints it); only a DataError may
    escape."""
    path.write_bytes(data)
    try:
        run = read_run(path, **options)
    except DataError as exc:
        assert exc.path == str(path)
        if exc.line is None:
            assert exc.message.startswith(WHOLE_FILE) or DECODED.match(exc.message), \
                exc.render()
        else:
            assert f"{path}:{exc.line}: " in exc.render()
        return exc
    if diagnosed or shown:
        d = diagnose(run)
        json.dumps(diagnosis_to_dict(d))
    if shown:
        show_diagnosis(Console(file=io.StringIO(), width=100), d, None)
    return None



@mutation(420)
@given(cases=st.lists(packed(min_ops=1), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
def test_a_mutated_record_is_read_or_refused_naming_its_line(
        work: Path, cases: list[tuple[int, list[tuple[str, int]]]]) -> None:
    for code, ops in cases:
        kind, suffix, seed, options = SEEDS[code % len(SEEDS)]
        k = code // len(SEEDS) % _records(kind, seed)
        data = _build(kind, seed, {k: _mutated(kind, seed, k, ops)})
        line = _line_of(kind, seed, k)
        # extreme values diagnosed too (the rest would cost more time than they find)
        exc = read(work / f"log{suffix}", data, options,
                   diagnosed=any(op == "huge" for op, _ in ops))
        TALLY.case("line", "accepted" if exc is None else f"refused:{outcome_of(exc)}")
        if exc is None:
            continue
        last = n_lines(data)
        named = exc.line
        if kind == "b64":
            decoded = DECODED.match(exc.message)
            if decoded:  # a line of the CSV inside
                last, named = len(seed), int(decoded[1])
            elif named is not None:  # not base64 of UTF-8 after all: read as it is
                line = 1
        if named is None:
            assert exc.message.startswith(WHOLE_FILE), exc.render()
        elif line == 1:  # the first line tells the format apart: any line may be named then
            assert 1 <= named <= last, exc.render()
        elif kind == "jsonl" or (kind == "doc" and not exc.message.startswith(
                "not valid JSON")):
            assert named == line, (exc.render(), line, data.split(b"\n")[line - 1][:300])
        elif kind == "doc":  # a bracket may run on past its line; with the record gone,
            # the comma ending the line before it is where the document breaks
            assert line - 1 <= named <= last, (exc.render(), line)
        else:  # a CSV quote may run on past its line
            assert line <= named <= last, (exc.render(), line)


@mutation(300)
@given(which=st.integers(0, len(SEEDS) - 1),
       records=st.lists(st.tuples(st.integers(0, 99), line_ops), max_size=3),
       ops=st.lists(file_op, min_size=1, max_size=3))
def test_a_mutated_log_is_read_or_refused_naming_a_line(
        work: Path, which: int, records: list[tuple[int, list[tuple[str, int]]]],
        ops: list[tuple[str, int]]) -> None:
    kind, suffix, seed, options = SEEDS[which]
    n = _records(kind, seed)
    data = _build(kind, seed, {at % n: _mutated(kind, seed, at % n, record_ops)
                               for at, record_ops in records})  # a few records, then the file
    for op, param in ops:
        data = mutate_file(data, op, param)
    exc = read(work / f"whole{suffix}", data, options, diagnosed=True, shown=True)
    if exc is not None and exc.line is not None:
        assert 1 <= exc.line <= n_lines(data), exc.render()
    TALLY.case("file", "accepted" if exc is None else f"refused:{outcome_of(exc)}")
