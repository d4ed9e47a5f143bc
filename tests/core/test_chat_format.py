"""The OpenAI chat fine-tuning format rules of ``check_example``, one table row per rule."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftlens.core.chat_format import ExampleView, FormatIssue, Pair, check_example, summarize


def sys_(text: str = "Classify.") -> dict[str, Any]:
    return {"role": "system", "content": text}


def user(text: str = "hello") -> dict[str, Any]:
    return {"role": "user", "content": text}


def asst(text: str = "ham", **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, **extra}


def conv(*messages: Any) -> dict[str, Any]:
    return {"messages": list(messages)}


CALL = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}


def image(url: str = "https://example.com/cat.png") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


# (id, parsed JSON value, the one expected issue code)
INVALID: list[tuple[str, Any, str]] = [
    ("array", [1, 2, 3], "not_an_object"),
    ("string", "hello", "not_an_object"),
    ("number", 42, "not_an_object"),
    ("null", None, "not_an_object"),
    ("bool", True, "not_an_object"),
    ("prompt_completion", {"prompt": "x", "completion": "y"}, "missing_messages"),
    ("empty_object", {}, "missing_messages"),
    ("messages_null", {"messages": None}, "missing_messages"),
    ("messages_string", {"messages": "hello"}, "messages_not_list"),
    ("messages_object", {"messages": {"role": "user"}}, "messages_not_list"),
    ("messages_number", {"messages": 3}, "messages_not_list"),
    ("messages_empty_list", {"messages": []}, "messages_not_list"),
    ("message_string", conv("hi", asst()), "message_not_object"),
    ("message_list", conv(user(), ["assistant", "ham"]), "message_not_object"),
    ("message_null", conv(user(), None, asst()), "message_not_object"),
    ("missing_role", conv(sys_(), {"content": "hi"}, asst()), "missing_role"),
    ("unknown_key", conv({"role": "user", "content": "hi", "foo": 1}, asst()), "unknown_key"),
    ("unknown_key_assistant", conv(user(), asst(extra_field=True)), "unknown_key"),
    ("unknown_role", conv(user(), {"role": "robot", "content": "beep"}, asst()),
     "unknown_role"),
    ("role_case", conv({"role": "User", "content": "hi"}, asst()), "unknown_role"),
    ("role_number", conv({"role": 1, "content": "hi"}, asst()), "unknown_role"),
    # A role that is a JSON array or object is just another unrecognised role.
    ("role_list", conv({"role": ["user"], "content": "hi"}, asst()), "unknown_role"),
    ("role_object", conv({"role": {"name": "user"}, "content": "hi"}, asst()), "unknown_role"),
    ("missing_content_user", conv({"role": "user"}, asst()), "missing_content"),
    ("null_content_user", conv({"role": "user", "content": None}, asst()), "missing_content"),
    ("null_content_assistant", conv(user(), {"role": "assistant", "content": None}),
     "missing_content"),
    ("empty_tool_calls", conv(user(), {"role": "assistant", "content": None, "tool_calls": []}),
     "missing_content"),
    ("content_number", conv({"role": "user", "content": 42}, asst()), "content_not_string"),
    ("content_object", conv({"role": "user", "content": {"text": "hi"}}, asst()),
     "content_not_string"),
    ("content_empty_list", conv({"role": "user", "content": []}, asst()), "content_not_string"),
    ("content_bad_part", conv({"role": "user", "content": [{"type": "text", "text": 1}]}, asst()),
     "invalid_content_part"),
    ("content_unknown_part", conv({"role": "user", "content": [{"type": "audio"}]}, asst()),
     "invalid_content_part"),
    ("text_part_without_text", conv({"role": "user", "content": [{"type": "text"}]}, asst()),
     "invalid_content_part"),
    ("image_not_a_url", conv({"role": "user", "content": [image("file:///etc/passwd")]}, asst()),
     "invalid_content_part"),
    ("image_without_url", conv({"role": "user", "content": [{"type": "image_url"}]}, asst()),
     "invalid_content_part"),
    ("image_in_assistant", conv(user(), asst([image()])), "invalid_content_part"),
    ("eleven_images", conv({"role": "user", "content": [image()] * 11}, asst()),
     "too_many_images"),
    ("tool_calls_number", conv(user(), asst(None, tool_calls=5)), "invalid_tool_calls"),
    ("tool_calls_string", conv(user(), asst(None, tool_calls="call")), "invalid_tool_calls"),
    ("tool_calls_of_numbers", conv(user(), asst(None, tool_calls=[1])), "invalid_tool_calls"),
    ("tool_call_function_null", conv(user(), asst(None, tool_calls=[{**CALL, "function": None}])),
     "invalid_tool_calls"),
    ("tool_call_without_id", conv(user(), asst(None, tool_calls=[{"type": "function",
                                                                 "function": CALL["function"]}])),
     "invalid_tool_calls"),
    ("tool_call_arguments_not_json", conv(user(), asst(None, tool_calls=[
        {**CALL, "function": {"name": "f", "arguments": "{not json"}}])), "invalid_tool_calls"),
    ("tool_call_arguments_object", conv(user(), asst(None, tool_calls=[
        {**CALL, "function": {"name": "f", "arguments": {"x": 1}}}])), "invalid_tool_calls"),
    ("tool_calls_on_user", conv({**user(), "tool_calls": [CALL]}, asst()), "invalid_tool_calls"),
    ("function_call_arguments_not_json", conv(user(), asst(
        None, function_call={"name": "f", "arguments": "nope"})), "invalid_tool_calls"),
    ("tool_reply_without_id", conv(user(), asst(None, tool_calls=[CALL]),
                                   {"role": "tool", "content": "sunny"}, asst()),
     "invalid_tool_calls"),
    ("tool_reply_to_no_call", conv(user(), asst(None, tool_calls=[CALL]),
                                   {"role": "tool", "content": "sunny", "tool_call_id": "c9"},
                                   asst()), "invalid_tool_calls"),
    ("tools_not_a_list", {**conv(user(), asst()), "tools": "weather"}, "invalid_tools"),
    ("tools_entry_not_a_function", {**conv(user(), asst()), "tools": [{"type": "web"}]},
     "invalid_tools"),
    ("tools_parameters_string", {**conv(user(), asst()), "tools": [
        {"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "invalid_tools"),
    ("content_bool_assistant", conv(user(), asst(True)), "content_not_string"),
    ("no_assistant", conv(sys_(), user()), "no_assistant"),
    ("only_system", conv(sys_()), "no_assistant"),
    ("weight_2", conv(user(), asst(weight=2)), "invalid_weight"),
    ("weight_true", conv(user(), asst(weight=True)), "invalid_weight"),
    ("weight_false", conv(user(), asst(weight=False)), "invalid_weight"),
    ("weight_string", conv(user(), asst(weight="1")), "invalid_weight"),
    ("weight_half", conv(user(), asst(weight=0.5)), "invalid_weight"),
    ("weight_negative", conv(user(), asst(weight=-1)), "invalid_weight"),
    ("weight_null", conv(user(), asst(weight=None)), "invalid_weight"),
    ("weight_on_user", conv({"role": "user", "content": "hi", "weight": 1}, asst()),
     "invalid_weight"),
    ("weight_on_system", conv({"role": "system", "content": "s", "weight": 0}, user(), asst()),
     "invalid_weight"),
]


@pytest.mark.parametrize(("obj", "code"), [row[1:] for row in INVALID],
                         ids=[row[0] for row in INVALID])
def test_invalid_example_reports_its_rule(obj: Any, code: str) -> None:
    issues, view = check_example(obj)
    assert view is None
    assert [i.code for i in issues] == [code]
    issue = issues[0]
    assert isinstance(issue, FormatIssue)
    assert issue.message and issue.hint  # every problem says what is wrong and how to fix it
    assert issue.line == 0  # the scanner places it; at() sets the line
    assert issue.at(7).line == 7 and issue.at(7).code == code


def test_issue_messages_name_the_problem() -> None:
    cases = [
        ([1], "array"),
        (conv(user(), {"role": "robot", "content": "x"}, asst()), "'robot'"),
        (conv({"role": "user", "content": "hi", "foo": 1}, asst()), "'foo'"),
        (conv({"role": "user", "content": 42}, asst()), "of type number"),
        (conv({"role": "user", "content": "hi", "weight": 1}, asst()), "user"),
        (conv(user(), asst(weight=2)), "2"),
        ({"messages": []}, "empty list"),
    ]
    for obj, fragment in cases:
        issues, _ = check_example(obj)
        assert fragment in issues[0].message, (obj, issues[0].message)


def test_one_issue_per_broken_message_and_no_view() -> None:
    obj = conv({"content": "a"}, {"role": "robot", "content": "b"}, {"role": "user", "content": 5},
               asst())
    issues, view = check_example(obj)
    assert view is None
    assert [i.code for i in issues] == ["missing_role", "unknown_role", "content_not_string"]
    # messages are numbered from 1 in the order they appear
    assert [i.message.split()[1] for i in issues] == ["1", "2", "3"]


def test_no_assistant_not_added_when_messages_already_broken() -> None:
    issues, view = check_example(conv({"role": "user", "content": 1}))
    assert view is None
    assert [i.code for i in issues] == ["content_not_string"]


# (id, parsed JSON value, expected label, expected has_system, has_user, n_messages, n_names)
VALID: list[tuple[str, Any, str | None, bool, bool, int, int]] = [
    ("system_user_assistant", conv(sys_(), user("Win £500 now"), asst("  spam \n")),
     "spam", True, True, 3, 0),
    ("no_system", conv(user(), asst("ham")), "ham", False, True, 2, 0),
    ("only_assistant", conv(asst("hi")), "hi", False, False, 1, 0),
    ("tool_call_null_content",
     conv(user("weather?"), {"role": "assistant", "content": None,
                             "tool_calls": [{"id": "c1", "type": "function",
                                             "function": {"name": "w", "arguments": "{}"}}]}),
     None, False, True, 2, 0),
    ("function_call_no_content",
     conv(user("weather?"), {"role": "assistant", "function_call": {"name": "w",
                                                                   "arguments": "{}"}}),
     None, False, True, 2, 0),
    ("tool_reply_then_answer",
     conv(user("weather?"),
          {"role": "assistant", "content": None,
           "tool_calls": [{"id": "c1", "type": "function",
                           "function": {"name": "w", "arguments": "{}"}}]},
          {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
          asst("It is sunny.")),
     "It is sunny.", False, True, 4, 0),
    ("content_parts",
     conv({"role": "user", "content": [{"type": "text", "text": "a"},
                                       {"type": "image_url", "image_url": {"url": "https://e.org/x.png"}}]},
          {"role": "assistant", "content": [{"type": "text", "text": " yes "}]}),
     "yes", False, True, 2, 0),
    ("weight_0", conv(user(), asst("a", weight=0), user("again"), asst("b", weight=1)),
     "b", False, True, 4, 0),
    ("weight_1_final", conv(user(), asst("spam", weight=1)), "spam", False, True, 2, 0),
    ("names", conv({"role": "system", "content": "s", "name": "rules"},
                   {"role": "user", "content": "hi", "name": "bob"}, asst("ham")),
     "ham", True, True, 3, 2),
    ("non_string_name_not_counted", conv({"role": "user", "content": "hi", "name": 3},
                                         asst("ham")),
     "ham", False, True, 2, 0),
    ("function_role", conv(user(), {"role": "function", "content": "42", "name": "f"},
                           asst("ok")),
     "ok", False, True, 3, 1),
    ("extra_top_level_keys_allowed", {"messages": [user(), asst("ham")], "id": 7},
     "ham", False, True, 2, 0),
]


@pytest.mark.parametrize(
    ("obj", "label", "has_system", "has_user", "n_messages", "n_names"),
    [row[1:] for row in VALID], ids=[row[0] for row in VALID])
def test_valid_example_view(obj: Any, label: str | None, has_system: bool, has_user: bool,
                            n_messages: int, n_names: int) -> None:
    issues, view = check_example(obj)
    assert issues == []
    assert isinstance(view, ExampleView)
    assert view.label == label
    assert view.has_system is has_system
    assert view.has_user is has_user
    assert view.n_messages == n_messages
    assert view.n_names == n_names


def test_label_is_the_final_stripped_assistant_content() -> None:
    _, view = check_example(conv(user("q1"), asst("first"), user("q2"), asst("\t second  ")))
    assert view is not None
    assert view.label == "second"


def test_input_text_excludes_assistant_content() -> None:
    obj = conv(sys_("SYSTEM-PROMPT"), user("USER-TEXT"), asst("ASSISTANT-ANSWER"),
               user("FOLLOW-UP"), asst("FINAL-ANSWER"))
    _, view = check_example(obj)
    assert view is not None
    assert "SYSTEM-PROMPT" in view.input_text
    assert "USER-TEXT" in view.input_text and "FOLLOW-UP" in view.input_text
    assert "ASSISTANT-ANSWER" not in view.input_text
    assert "FINAL-ANSWER" not in view.input_text


def test_input_text_depends_on_roles_and_order() -> None:
    def key(*messages: Any) -> str:
        _, view = check_example(conv(*messages, asst()))
        assert view is not None
        return view.input_text

    assert key(sys_("a"), user("b")) != key(user("a"), user("b"))
    assert key(user("a"), user("b")) != key(user("b"), user("a"))
    assert key(user("a")) == key(user("a"))
    # the answer is not part of the key: same input, different label -> same key
    _, v1 = check_example(conv(user("x"), asst("spam")))
    _, v2 = check_example(conv(user("x"), asst("ham")))
    assert v1 is not None and v2 is not None
    assert v1.input_text == v2.input_text


def test_near_text_is_user_tool_function_content_only() -> None:
    obj = conv(sys_("SYSTEM-PROMPT"), user("USER-TEXT"),
               asst(None, tool_calls=[{**CALL, "id": "c"}]),
               {"role": "tool", "content": "TOOL-TEXT", "tool_call_id": "c"},
               {"role": "function", "content": "FUNC-TEXT", "name": "f"},
               asst("ANSWER"))
    _, view = check_example(obj)
    assert view is not None
    assert view.near_text.split("\n") == ["USER-TEXT", "TOOL-TEXT", "FUNC-TEXT"]
    assert "SYSTEM-PROMPT" not in view.near_text
    assert "ANSWER" not in view.near_text


def test_token_parts_cover_roles_contents_names_and_tool_calls() -> None:
    call = [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]
    obj = conv({"role": "system", "content": "S", "name": "nm"}, user("U"),
               {"role": "assistant", "content": None, "tool_calls": call})
    _, view = check_example(obj)
    assert view is not None
    parts = Counter(view.token_parts)
    tool_json = [p for p in parts if '"arguments"' in p]
    assert len(tool_json) == 1 and '"c1"' in tool_json[0]  # the call itself is counted
    del parts[tool_json[0]]
    parts.pop("", None)  # the omitted content may count as an empty string
    assert parts == Counter(["system", "S", "nm", "user", "U", "assistant"])


def test_token_parts_of_plain_example() -> None:
    _, view = check_example(conv(sys_("S"), user("U"), asst(" A ")))
    assert view is not None
    assert Counter(view.token_parts) == Counter(["system", "S", "user", "U", "assistant", " A "])


def test_a_tool_call_nested_too_deep_for_json_is_named_briefly() -> None:
    nested: Any = {"k": "v"}
    for _ in range(5000):
        nested = [nested]
    issues, view = check_example(conv(user("q"), {"role": "assistant", "tool_calls": nested}))
    assert view is None and [i.code for i in issues] == ["invalid_tool_calls"]
    assert issues[0].message == "message 2 (assistant): tool call 1 is an array, not an object"


def test_the_rules_openai_upload_checks_are_named_with_their_fix() -> None:
    """The message names the message (counted from 1), the part or call, and what is wrong."""
    cases = [
        (conv({"role": "user", "content": [{"type": "text"}]}, asst()),
         'message 1 (user): content part 1 has no "text"'),
        (conv(user(), asst(None, tool_calls=[{**CALL, "function": {"name": "f",
                                                                   "arguments": "{not"}}])),
         "message 2 (assistant): tool call 1's function has arguments '{not' that are not "
         "valid JSON"),
        (conv(user(), asst(None, tool_calls=[CALL]), {"role": "tool", "content": "s",
                                                       "tool_call_id": "c9"}, asst()),
         "message 3 (tool) answers tool_call_id 'c9', which no earlier assistant tool call "
         "made"),
        ({"messages": None}, '"messages" is null'),
        (conv(user(), asst(None, tool_calls=[{**CALL, "function": None}])),
         "tool call 1's function is null, not an object"),
    ]
    for obj, words in cases:
        issues, _ = check_example(obj)
        assert words in issues[0].message, (obj, issues[0].message)
        assert issues[0].hint


@pytest.mark.parametrize("obj", [
    conv(user(), asst(weight=1.0)), conv(user(), asst(weight=0.0), asst("spam")),
    conv({"role": "user", "content": [{"type": "text", "text": "what is it?"}, image(),
                                      image("data:image/png;base64,iVBORw0KGgo=")]}, asst()),
    conv(user(), asst(None, tool_calls=[CALL]), {"role": "tool", "content": "sunny",
                                                  "tool_call_id": "c1"}, asst("sunny")),
    {**conv(user(), asst()), "tools": [{"type": "function", "function": {
        "name": "weather", "parameters": {"type": "object"}}}]},
])
def test_what_openai_accepts_is_accepted(obj: dict[str, Any]) -> None:
    issues, view = check_example(obj)
    assert issues == [] and view is not None


@pytest.mark.parametrize("message", [
    {"role": "ROLE", "content": "x"}, {"role": "assistant", "content": "x", "weight": "ROLE"}])
def test_a_value_nested_too_deep_for_repr_is_still_named(message: dict[str, Any]) -> None:
    nested: Any = ["x"]
    for _ in range(5000):
        nested = [nested]
    issues, view = check_example(conv({k: nested if v == "ROLE" else v
                                       for k, v in message.items()}))
    assert view is None
    assert issues[0].code in {"unknown_role", "invalid_weight"}
    assert "[[[" in issues[0].message and len(issues[0].message) < 120


def test_content_parts_join_text_parts_with_newlines() -> None:
    content = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    _, view = check_example(conv({"role": "user", "content": content}, asst()))
    assert view is not None
    assert view.near_text == "one\ntwo"
    assert view.token_parts[1] == "one\ntwo"


PAIRS = st.lists(st.builds(Pair, st.sampled_from(["system", "user", "assistant", "tool"]),
                           st.text(max_size=8)), max_size=4)


@given(pairs=st.one_of(PAIRS, st.sampled_from([  # the shapes summarize takes without its loop
    [Pair("system", " S "), Pair("user", "U\x1f"), Pair("assistant", " spam\n")],
    [Pair("user", ""), Pair("assistant", "ham")],
    [Pair("user", "U"), Pair("system", "S"), Pair("assistant", "A")],
    [Pair("assistant", "A"), Pair("user", "U")],
])))
def test_summarize_follows_its_definition(pairs: list[Pair]) -> None:
    answers = [p.content for p in pairs if p.role == "assistant"]
    inputs = [p for p in pairs if p.role != "assistant"]
    expected = None if not answers else (
        "\x1f".join(part for p in inputs for part in (p.role, p.content)),
        answers[-1].strip(),
        any(p.role == "system" for p in pairs),
        any(p.role == "user" for p in pairs),
    )
    assert summarize(pairs) == expected
