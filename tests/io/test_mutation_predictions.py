"""Mutated predictions files through ``read_predictions`` (``ftlens metrics``): JSONL and CSV,
one line mutated per file or the whole file. The only exception that escapes is
:class:`~ftlens.errors.DataError` (a :class:`~ftlens.errors.FtlensError`: what the CLI prints
as one message), and it names the file and a line that exists — the mutated line itself where
one line was mutated — unless it is about the whole file (empty, UTF-16, no predictions). A
row that is a JSON object is never refused as broken JSON. Cases and refusals are tallied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
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

from ftlens.errors import DataError, FtlensError
from ftlens.io.predictions import read_predictions

TALLY = tally("metrics")
PER_EXAMPLE = 25  # files read per hypothesis example, each a case
WHOLE_FILE = ("the file is empty", "the file is encoded as UTF-16, not UTF-8",
              "the file is a JSON array, not JSON lines",
              "no predictions in the file")
CONSISTENCY = ("no 'score' here", "no 'probs' here")  # names the first row lacking it


@pytest.fixture(scope="module", autouse=True)
def _at_least_10000_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from require_cases(request, TALLY, 10_000)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutation-predictions")


def _rows(n: int, shape: str) -> list[dict[str, object]]:
    labels = ["spam", "ham", "ham", "spam", "ham", "other", "spam", "ham"]
    rows: list[dict[str, object]] = []
    for i in range(n):
        y, p = labels[i % 8], labels[(i * 3) % 8]
        row: dict[str, object] = {"id": f"r{i}", "label": y, "prediction": p}
        if shape == "score":
            row["score"] = round(0.1 + 0.1 * (i % 9), 2)
        elif shape == "probs":
            row["probs"] = {"spam": 0.25, "ham": 0.5, "other": 0.25}
        elif shape == "messages":
            row["messages"] = [{"role": "user", "content": f"text {i} Café"}]
        rows.append(row)
    return rows


def _csv(rows: list[dict[str, object]], delimiter: str = ",") -> list[str]:
    header = [k for k in rows[0] if k != "probs"]
    probs = list(rows[0].get("probs", {}))  # type: ignore[call-overload]
    out = [delimiter.join(header + [f"p_{k}" for k in probs])]
    for r in rows:
        out.append(delimiter.join([str(r[k]) for k in header]
                                  + [str(r["probs"][k]) for k in probs]))  # type: ignore[index]
    return out


#: (suffix, kind, lines): JSONL lines are JSON objects, CSV lines text (header first)
SEEDS: list[tuple[str, str, list[object]]] = [
    (".jsonl", "jsonl", list(_rows(8, "score"))),
    (".jsonl", "jsonl", list(_rows(8, "probs"))),
    (".jsonl", "jsonl", list(_rows(6, "messages"))),
    (".txt", "jsonl", list(_rows(6, "plain"))),  # told apart by its content
    (".csv", "csv", list(_csv(_rows(8, "score")))),
    (".csv", "csv", list(_csv(_rows(8, "probs")))),
    (".tsv", "tsv", list(_csv(_rows(6, "plain"), "\t"))),
    (".txt", "csv", list(_csv(_rows(6, "score")))),
]


def _line(kind: str, seed: object, ops: list[tuple[str, int]]) -> bytes:
    if kind == "jsonl":
        return mutate_line(seed, ops)
    return mutate_csv_row(str(seed), ops, "\t" if kind == "tsv" else ",")


def _seed_line(kind: str, seed: object) -> bytes:
    return json.dumps(seed).encode() if kind == "jsonl" else str(seed).encode()


def read(path: Path, data: bytes) -> Exception | None:
    """The refusal of the file, None when it is read; only a DataError may escape."""
    path.write_bytes(data)
    try:
        read_predictions(path)
    except DataError as exc:
        assert isinstance(exc, FtlensError)
        assert exc.path == str(path)
        if exc.line is None:
            assert exc.message in WHOLE_FILE, exc.render()
        else:
            assert f"{path}:{exc.line}: " in exc.render()
        return exc
    return None



@mutation(420)
@given(cases=st.lists(packed(min_ops=1), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
def test_a_mutated_row_is_read_or_refused_naming_it(
        work: Path, cases: list[tuple[int, list[tuple[str, int]]]]) -> None:
    for code, ops in cases:
        suffix, kind, seeds = SEEDS[code % len(SEEDS)]
        k = code // len(SEEDS) % len(seeds) + 1  # the mutated line
        lines = [_seed_line(kind, s) for s in seeds]
        lines[k - 1] = _line(kind, seeds[k - 1], ops)
        data = b"".join(line + b"\n" for line in lines)
        exc = read(work / f"preds{suffix}", data)
        TALLY.case("line", "accepted" if exc is None else f"refused:{outcome_of(exc)}")
        if exc is None:
            continue
        assert isinstance(exc, DataError)
        if kind == "jsonl" and k == 1 and not data.decode(
                "utf-8", "replace").lstrip().startswith("{"):
            kind = "csv"  # told apart by its content: now a CSV, its header the mutated line
        if exc.line is None or exc.message.startswith(CONSISTENCY):
            assert exc.line is None or 1 <= exc.line <= len(lines), exc.render()
        elif kind == "jsonl":
            assert exc.line == k, (exc.render(), k, lines[k - 1][:300])
        else:  # a quote on the line may open a cell that runs on to a later line
            assert k <= exc.line <= len(lines), (exc.render(), k, lines[k - 1][:300])
        if kind == "jsonl" and exc.line == k and (suffix == ".jsonl" or k > 1):
            raw = lines[k - 1].removeprefix(b"\xef\xbb\xbf" if k == 1 else b"")
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            # a row that is a JSON object is judged by its fields, never as broken JSON
            assert isinstance(obj, dict) != exc.message.startswith(
                ("not valid JSON", "the line is ")), (exc.render(), raw[:300])


@mutation(300)
@given(seed=st.integers(0, len(SEEDS) - 1),
       lines=st.lists(st.tuples(st.integers(0, 99), line_ops), max_size=3),
       ops=st.lists(file_op, min_size=1, max_size=3))
def test_a_mutated_file_is_read_or_refused_naming_a_line(
        work: Path, seed: int, lines: list[tuple[int, list[tuple[str, int]]]],
        ops: list[tuple[str, int]]) -> None:
    suffix, kind, seeds = SEEDS[seed]
    rows = [_seed_line(kind, s) for s in seeds]
    for at, line_mutations in dict(lines).items():
        i = at % len(rows)
        rows[i] = _line(kind, seeds[i], line_mutations)
    data = b"".join(row + b"\n" for row in rows)
    for op, param in ops:
        data = mutate_file(data, op, param)
    exc = read(work / f"whole{suffix}", data)
    if isinstance(exc, DataError) and exc.line is not None:
        assert 1 <= exc.line <= n_lines(data), exc.render()
    TALLY.case("file", "accepted" if exc is None else f"refused:{outcome_of(exc)}")
