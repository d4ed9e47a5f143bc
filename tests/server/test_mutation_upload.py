"""Mutated fine-tune files uploaded through the official openai SDK (``client.files.create``,
purpose ``fine-tune``) to a real ftlens service: never a 5xx. A file the local audit finds no
fault in is taken (200); any other is refused with a 400 (``openai.BadRequestError``, param
``file``) that names the first line the local audit refuses and counts the others, or says
once what the whole file is (a JSON array, a CSV table, UTF-16) or that it holds no example.
Cases (mutated lines, uploads) and refusals are tallied."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import OpenAI
from tests.support.mutation import (
    CHAT_SEEDS,
    PREFERENCE_SEEDS,
    file_op,
    line_ops,
    mutate_file,
    mutate_line,
    mutation,
    packed,
    require_cases,
    tally,
)
from tests.support.service import KEY, serve

from ftlens.core.audit_findings import SHAPES
from ftlens.core.chat_format import check_example
from ftlens.core.scan import ScanOptions
from ftlens.io.chat_jsonl import BOM, file_shape, scan_file

TALLY = tally("upload")
SEEDS = CHAT_SEEDS + PREFERENCE_SEEDS
NAME = "up.jsonl"
LINE = re.compile(rf"^{re.escape(NAME)}, line (\d+): ")
MORE = re.compile(r" \((\d+) more bad lines?\)")


@pytest.fixture(scope="module", autouse=True)
def _at_least_10000_mutated_lines(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from require_cases(request, TALLY, 10_000, kind="line")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAI]:
    home = tmp_path_factory.mktemp("mutation-upload")
    with contextlib.contextmanager(serve)(home, api_key=KEY, workers=0) as service:
        yield OpenAI(base_url=service.url, api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutation-upload-local")


def bad_lines(path: Path) -> list[int]:
    """The lines the local audit refuses, and those of the other kind than the first example
    (chat examples and preference pairs: a file holds one kind), in order."""
    scan = scan_file(path, "train", ScanOptions(keep_issues=10**9), None, workers=1)
    refused = {issue.line for issue in scan.issues}
    kinds = {}
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if number in scan.lines:
            _, view = check_example(orjson.loads(raw.removeprefix(BOM) if number == 1 else raw))
            assert view is not None
            kinds[number] = view.kind
    first = next(iter(kinds.values()), None)
    return sorted(refused | {n for n, kind in kinds.items() if kind != first})


def upload(client: OpenAI, path: Path, data: bytes) -> tuple[str, list[int]]:
    """Uploads ``data``, asserting the service's answer against the local audit's; returns
    the outcome's kind and the lines the local audit refuses."""
    path.write_bytes(data)
    bad = bad_lines(path)
    return _answer(client, data, bad, file_shape(path) if data else None), bad


def _answer(client: OpenAI, data: bytes, bad: list[int], shape: str | None) -> str:
    try:
        up = client.files.create(file=(NAME, io.BytesIO(data)), purpose="fine-tune")
    except openai.BadRequestError as exc:
        assert exc.status_code == 400
        body = exc.body
        assert isinstance(body, dict) and body["param"] == "file", body
        message = body["message"]
        named = LINE.match(message)
        if data.startswith(BOM):  # refused whole, as the audit fails it (OpenAI would too)
            assert message.startswith(f"{NAME}: the file begins with the bytes EF BB BF"), \
                message
            return "400 bom"
        if not data:
            assert message.startswith(f"{NAME}: the file is empty"), message
            return "400 empty"
        if bad and shape is not None:  # not JSON lines at all: said once
            assert message.startswith(f"{NAME}: the file is {SHAPES[shape][0]}"), message
            return f"400 not_jsonl:{shape}"
        if bad:
            assert named and int(named[1]) == bad[0], (message, bad[:5])
            more = MORE.search(message)
            assert (int(more[1]) if more else 0) == len(bad) - 1, (message, len(bad))
            return "400 naming its first bad line"
        assert "0 examples" in message and not named, message  # nothing else is refused
        return "400 no example"
    assert not bad and data.strip(), bad[:5]
    assert up.bytes == len(data) and up.purpose == "fine-tune"
    return "200"


#: 40 to 60 lines, each mutated (each seed a chat example or a preference pair)
MUTATED_LINES = st.lists(packed(min_ops=1), min_size=40, max_size=60).map(
    lambda cases: [(code % len(SEEDS), ops) for code, ops in cases])


@mutation(340)  # about 12,500 mutated lines: the 10,000 floor holds whatever the draw
@given(lines=MUTATED_LINES, one_kind=st.booleans(), sparse=st.integers(0, 7))
def test_a_file_of_mutated_lines_is_taken_or_refused_naming_its_first_bad_line(
        client: OpenAI, work: Path, lines: list[tuple[int, list[tuple[str, int]]]],
        one_kind: bool, sparse: int) -> None:
    if one_kind:  # mostly chat examples, a preference file now and then
        lines = [(seed % len(CHAT_SEEDS) if lines[0][0] < len(CHAT_SEEDS) else
                  len(CHAT_SEEDS) + seed % len(PREFERENCE_SEEDS), ops) for seed, ops in lines]
    if sparse < 2:  # no mutated line, or one among good ones: the file may well be taken
        lines = [(seed, ops if sparse and i == len(lines) // 2 else []) for i, (seed, ops) in
                 enumerate(lines)]
    rows = [mutate_line(SEEDS[seed], ops) for seed, ops in lines]
    outcome, bad = upload(client, work / NAME, b"".join(row + b"\n" for row in rows))
    TALLY.case("upload", outcome)
    for number, (_, ops) in enumerate(lines, 1):
        if ops:  # a mutated line, judged by the service among the bad ones it counts
            TALLY.case("line", "refused" if number in bad else "accepted")


SEED_FILE = b"".join(orjson.dumps(CHAT_SEEDS[i % len(CHAT_SEEDS)]) + b"\n" for i in range(12))


@mutation(120)
@given(lines=st.lists(st.tuples(st.integers(0, 11), line_ops), max_size=3),
       ops=st.lists(file_op, min_size=1, max_size=3))
def test_a_mutated_whole_file_is_taken_or_refused_never_a_server_error(
        client: OpenAI, work: Path, lines: list[tuple[int, list[tuple[str, int]]]],
        ops: list[tuple[str, int]]) -> None:
    rows = SEED_FILE.split(b"\n")[:-1]
    for i, line_mutations in dict(lines).items():
        rows[i] = mutate_line(CHAT_SEEDS[i % len(CHAT_SEEDS)], line_mutations)
    data = b"".join(row + b"\n" for row in rows)
    for op, param in ops:
        data = mutate_file(data, op, param)
    TALLY.case("file", upload(client, work / NAME, data)[0])
