"""OpenAI's preference (DPO) line format in ``check_example``: a valid pair's view, and one
rule per broken shape."""

from __future__ import annotations

from typing import Any

import pytest

from ftlens.core.chat_format import PREFERENCE, check_example


def pair(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "input": {"messages": [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Is 4 even?"}]},
        "preferred_output": [{"role": "assistant", "content": "yes"}],
        "non_preferred_output": [{"role": "assistant", "content": "no"}]}
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


def test_a_valid_pair_is_a_preference_view_keyed_on_its_input() -> None:
    issues, view = check_example(pair())
    assert issues == [] and view is not None
    assert view.kind == PREFERENCE and view.label is None
    assert view.input_text == "system\x1fBe brief.\x1fuser\x1fIs 4 even?"
    assert view.near_text == "Is 4 even?"  # the answers are not part of the leakage key
    assert {"yes", "no"} <= set(view.token_parts)  # both answers are billed
    assert view.has_system and view.has_user


def test_answers_do_not_change_the_key_so_repeated_prompts_are_found() -> None:
    other = pair(preferred_output=[{"role": "assistant", "content": "Yes, 4 is even."}])
    assert check_example(other)[1].input_text == check_example(pair())[1].input_text


def test_tool_calls_and_text_parts_are_answers_too() -> None:
    call = {"id": "c1", "type": "function",
            "function": {"name": "lookup", "arguments": "{}"}}
    issues, view = check_example(pair(
        preferred_output=[{"role": "assistant", "content": None, "tool_calls": [call]}],
        non_preferred_output=[{"role": "assistant",
                               "content": [{"type": "text", "text": "no"}]}]))
    assert issues == [] and view is not None


@pytest.mark.parametrize(("row", "code", "words"), [
    (pair(non_preferred_output=None), "missing_preference_output",
     'no "non_preferred_output"'),
    (pair(preferred_output=None), "missing_preference_output", 'no "preferred_output"'),
    (pair(preferred_output="yes"), "invalid_preference_output",
     '"preferred_output" is a string'),
    (pair(preferred_output=[]), "invalid_preference_output", "a list of 0 messages"),
    (pair(preferred_output=[{"role": "assistant", "content": "a"}] * 2),
     "invalid_preference_output", "a list of 2 messages"),
    (pair(non_preferred_output=[{"role": "user", "content": "no"}]),
     "invalid_preference_output", "holds a user message"),
    (pair(non_preferred_output=[{"role": "assistant"}]), "missing_content",
     "non_preferred_output: message 1 (assistant) has missing content"),
    (pair(input=[{"role": "user", "content": "x"}]), "invalid_preference_input",
     '"input" is an array'),
    (pair(input={"messages": []}), "invalid_preference_input", "non-empty"),
    (pair(input={"messages": [{"role": "user", "content": 3}]}), "content_not_string",
     "input message 1 (user)"),
    (pair(input={"messages": [{"role": "user", "content": "q"},
                              {"role": "assistant", "content": "a"}]}),
     "input_ends_with_answer", "ends with an assistant message"),
    (pair(extra=1), "unknown_key", "'extra'"),
])
def test_broken_pairs_name_their_rule(row: dict[str, Any], code: str, words: str) -> None:
    issues, view = check_example(row)
    assert view is None
    assert code in [i.code for i in issues], issues
    assert any(words in i.message for i in issues), [i.message for i in issues]
    assert all(i.hint for i in issues)


def test_a_chat_line_is_still_a_chat_line() -> None:
    issues, view = check_example({"messages": [{"role": "user", "content": "q"},
                                               {"role": "assistant", "content": "a"}]})
    assert issues == [] and view is not None and view.kind == "chat"
