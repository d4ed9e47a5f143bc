"""OpenAI fine-tuning format rules, checked one parsed JSON line at a time.

:func:`check_example` returns the problems of one example (each with a fix hint) and, when the
example is usable, an :class:`ExampleView` with what the rest of the audit needs: the input text
(for duplicates and leakage), the label (final assistant answer) and the texts to count tokens on.
The happy path allocates little: this runs once per line on files of millions of lines.

Two shapes are examples: a chat example (``{"messages": [...]}``, supervised fine-tuning) and
a preference pair (``{"input": {"messages": [...]}, "preferred_output": [...],
"non_preferred_output": [...]}``, DPO), whose view has ``kind == "preference"``, no label, the
input's messages as its duplicate and leakage key and both answers in its token count.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from ftlens.core.wording import first

ALLOWED_KEYS = frozenset(
    {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id"}
)
ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
CHAT, PREFERENCE = "chat", "preference"
PREFERENCE_KEYS = ("preferred_output", "non_preferred_output")
PREFERENCE_SHAPE = ('{"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", '
                    '"content": ...}], "non_preferred_output": [{"role": "assistant", ...}]}')
_TOOL_KEYS = ("tool_calls", "function_call")


@dataclass(frozen=True, slots=True)
class FormatIssue:
    """One broken rule. ``code`` is stable (e.g. ``invalid_json``); ``line`` is 1-based."""

    code: str
    message: str
    hint: str
    line: int = 0

    def at(self, line: int) -> FormatIssue:
        return FormatIssue(self.code, self.message, self.hint, line)


class Message(Protocol):
    """A checked message reduced to its role and text (read-only attributes, so that the
    reader's decoded structs and :class:`Pair` both fit)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


class Pair(NamedTuple):
    role: str
    content: str  # "" for an assistant tool call without content


class ExampleView(NamedTuple):
    """What the audit keeps of a valid example. Only ``input_text`` and ``label`` are needed for
    every example; the rest is derived on demand for the few that are sampled."""

    input_text: str  # role-tagged text of every non-assistant message: the duplicate/leakage key
    label: str | None  # final assistant message, stripped; None for a tool call
    has_system: bool
    has_user: bool
    pairs: Sequence[Message]  # (role, text) of every message
    messages: Sequence[dict[str, Any] | Message]  # checked messages: dicts, or plain (role, text)
    kind: str = CHAT  # or PREFERENCE: a DPO pair (input, preferred and non-preferred answer)

    @property
    def near_text(self) -> str:
        """User/tool/function content only: compared for near-duplicates."""
        return "\n".join([m.content for m in self.pairs if m.role not in _NOT_NEAR])

    @property
    def chars(self) -> int:
        """Characters of every string the token count covers."""
        return sum(map(len, self.token_parts))

    @property
    def n_messages(self) -> int:
        return len(self.messages)

    @property
    def n_names(self) -> int:
        return sum(isinstance(m, dict) and isinstance(m.get("name"), str)
                   for m in self.messages)

    @property
    def token_parts(self) -> tuple[str, ...]:
        """Every string the token count covers: roles, contents, names, tool calls."""
        return tuple(_token_parts(self.messages))


_NOT_NEAR = frozenset({"system", "assistant"})


def _token_parts(messages: Sequence[dict[str, Any] | Message]) -> list[str]:
    parts: list[str] = []
    for msg in messages:
        if not isinstance(msg, dict):
            parts += (msg.role, msg.content)
            continue
        parts.append(msg["role"])
        content = msg.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content)
        if content:
            parts.append(content)
        name = msg.get("name")
        if isinstance(name, str):
            parts.append(name)
        parts.extend(_json_text(msg[k]) for k in _TOOL_KEYS if msg.get(k))
    return parts


def _json_text(value: Any) -> str:
    """A tool call as the JSON text whose tokens count. One nested too deeply for ``json`` (a
    broken file, not a real call) counts as its keys and values joined, found without
    recursion."""
    try:
        return json.dumps(value, sort_keys=True)
    except RecursionError:
        leaves: list[str] = []
        todo = [value]
        while todo:
            item = todo.pop()
            if isinstance(item, dict):
                leaves += item.keys()
                todo += item.values()
            elif isinstance(item, list):
                todo += item
            else:
                leaves.append(str(item))
        return " ".join(leaves)


def _issue(code: str, message: str, hint: str) -> tuple[list[FormatIssue], None]:
    return [FormatIssue(code, message, hint)], None


MAX_IMAGES = 10  # image parts per example (OpenAI's vision fine-tuning)
_IMAGE_URL = re.compile(r"(https?://\S+|data:image/(jpeg|jpg|png|webp|gif);base64,[A-Za-z0-9+/=\s]+)",
                        re.IGNORECASE)
PART_SHAPE = ('{"type": "text", "text": "..."} (or, in a user message, {"type": "image_url", '
              '"image_url": {"url": "https://… or data:image/png;base64,…"}})')


def _where(i: int, role: str | None = None) -> str:
    """How a message is named: "message 2 (user)", counting from 1 as people do."""
    return f"message {i + 1}" + (f" ({role})" if role else "")


def _content_text(msg: dict[str, Any], i: int) -> tuple[str | None, FormatIssue | None]:
    """The text of a message's content, or the issue that makes it unusable."""
    role = msg["role"]
    content = msg.get("content")
    if isinstance(content, str):
        return content, None
    tool_call = role == "assistant" and any(msg.get(k) for k in _TOOL_KEYS)
    if content is None:
        if tool_call:
            return "", None
        what = "missing" if "content" not in msg else "null"
        return None, FormatIssue(
            "missing_content",
            f"{_where(i, role)} has {what} content",
            'give every message a "content" string (only assistant tool calls may omit it)',
        )
    if isinstance(content, list) and content:
        for j, part in enumerate(content):
            problem = _part_problem(part, role)
            if problem is not None:
                return None, FormatIssue("invalid_content_part",
                                         f"{_where(i, role)}: content part {j + 1} {problem}",
                                         f"make each content part {PART_SHAPE}")
        return "\n".join(p.get("text", "") for p in content if p.get("type") == "text"), None
    what = "an empty list" if isinstance(content, list) else f"of type {json_type(content)}"
    return None, FormatIssue(
        "content_not_string",
        f"{_where(i, role)} has content {what}",
        'make "content" a string (or a list of {"type": "text", "text": ...} parts)',
    )


def _part_problem(part: Any, role: str) -> str | None:
    """What is wrong with one content part (None: nothing)."""
    if not isinstance(part, dict):
        return f"is {a_type(part)}, not an object"
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        return None if isinstance(text, str) else (
            'has no "text"' if text is None else f'has "text" of type {json_type(text)}')
    if kind == "image_url":
        if role != "user":
            return "is an image; images are allowed in user messages only"
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            return 'is an image without {"url": ...}'
        if not _IMAGE_URL.fullmatch(url.strip()):
            return (f"is an image whose url {_short(url)} is neither an http(s) URL nor a "
                    "base64 data URL (data:image/png;base64,…)")
        return None
    return f"has type {_short(kind)}"


def _images(messages: list[Any]) -> int:
    return sum(1 for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list)
               for p in m["content"] if isinstance(p, dict) and p.get("type") == "image_url")


def _tool_calls_problem(msg: dict[str, Any], i: int, role: str) -> FormatIssue | None:
    """``tool_calls`` (and the legacy ``function_call``) as OpenAI's upload checks them."""
    for key in _TOOL_KEYS:
        if key in msg and msg[key] is not None and role != "assistant":
            return FormatIssue("invalid_tool_calls", f"{_where(i, role)} has {key}",
                               f"only assistant messages call tools; remove {key} here")
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return FormatIssue("invalid_tool_calls",
                               f"{_where(i, role)}: tool_calls is {a_type(calls)}",
                               "make tool_calls a list of calls " + CALL_SHAPE)
        for j, call in enumerate(calls):
            problem = _call_problem(call, need_id=True)
            if problem is not None:
                return FormatIssue("invalid_tool_calls",
                                   f"{_where(i, role)}: tool call {j + 1}"
                                   + ("" if problem.startswith("'") else " ") + problem,
                                   "each call is " + CALL_SHAPE)
    legacy = msg.get("function_call")
    problem = None if legacy is None else _function_problem(legacy)
    if problem is not None:
        return FormatIssue("invalid_tool_calls", f"{_where(i, role)}: function_call {problem}",
                           'function_call is {"name": "...", "arguments": "<JSON text>"}')
    return None


CALL_SHAPE = ('{"id": "call_1", "type": "function", "function": {"name": "...", '
              '"arguments": "<the arguments object as JSON text>"}}')


def _call_problem(call: Any, *, need_id: bool) -> str | None:
    if not isinstance(call, dict):
        return f"is {a_type(call)}, not an object"
    if need_id and (not isinstance(call.get("id"), str) or not call["id"]):
        return 'has no "id" string'
    if call.get("type", "function") != "function":
        return f"has type {_short(call.get('type'))}, not 'function'"
    problem = _function_problem(call.get("function"))
    return None if problem is None else "'s function " + problem


def _function_problem(fn: Any) -> str | None:
    """A called function: ``{"name": str, "arguments": JSON text}``."""
    if not isinstance(fn, dict):
        return f"is {'null' if fn is None else _short(fn)}, not an object"
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        return 'has no "name" string'
    args = fn.get("arguments")
    if not isinstance(args, str):
        return (f"has arguments of type {json_type(args)}; arguments are JSON text (the "
                "arguments object through json.dumps)")
    try:
        json.loads(args)
    except ValueError:
        return f"has arguments {_short(args)} that are not valid JSON"
    return None


def _tools_problem(tools: Any) -> FormatIssue | None:
    """The example's top-level ``tools``: a list of function specs."""
    shape = '[{"type": "function", "function": {"name": "...", "parameters": {...}}}]'
    if not isinstance(tools, list):
        return FormatIssue("invalid_tools", f'"tools" is {a_type(tools)}, not a list',
                           f'make "tools" a list of function specs: {shape}')
    for j, tool in enumerate(tools):
        problem = _tool_problem(tool)
        if problem is not None:
            return FormatIssue("invalid_tools", f'"tools" entry {j + 1} {problem}',
                               f"each tool is a function spec: {shape}")
    return None


def _tool_problem(tool: Any) -> str | None:
    """What is wrong with one function spec of ``tools`` (None: nothing)."""
    if not isinstance(tool, dict):
        return f"is {a_type(tool)}"
    if tool.get("type") != "function":
        return f"has type {_short(tool.get('type'))}"
    fn = tool.get("function")
    if not isinstance(fn, dict):
        return "has no function object"
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        return 'has a function without a "name" string'
    if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
        return "has parameters that are not an object"
    return None


def _check_message(msg: Any, i: int) -> FormatIssue | None:
    if not isinstance(msg, dict):
        return FormatIssue(
            "message_not_object",
            f"{_where(i)} is {a_type(msg)}, not an object",
            'each message must be an object like {"role": "user", "content": "..."}',
        )
    if "role" not in msg:
        return FormatIssue(
            "missing_role",
            f"{_where(i)} has no \"role\"",
            'add "role": one of system, user, assistant, tool, function',
        )
    extra = msg.keys() - ALLOWED_KEYS
    if extra:
        return FormatIssue(
            "unknown_key",
            f"{_where(i)} has unrecognised key(s) {', '.join(sorted(map(_short, extra)))}",
            "remove them; allowed keys are " + ", ".join(sorted(ALLOWED_KEYS)),
        )
    role = msg["role"]
    if not isinstance(role, str) or role not in ROLES:
        return FormatIssue(
            "unknown_role",
            f"{_where(i)} has unrecognised role {_short(role)}",
            "use one of " + ", ".join(sorted(ROLES)),
        )
    weight = msg.get("weight", 1)
    if "weight" in msg and (role != "assistant" or type(weight) not in (int, float)
                            or weight not in (0, 1)):  # 1.0 is 1; True is no weight
        where = "" if role == "assistant" else f" on a {role} message"
        return FormatIssue(
            "invalid_weight",
            f"{_where(i)} has weight {_short(msg['weight'])}{where}",
            "weight is only for assistant messages and must be 0 (skip) or 1 (train)",
        )
    return _tool_calls_problem(msg, i, role)


def check_example(obj: Any) -> tuple[list[FormatIssue], ExampleView | None]:
    """Check one parsed JSON value. Returns ``(issues, view)``; ``view`` is None when unusable.

    Only the first problem of a message is reported: fixing it often changes the rest.
    """
    if not isinstance(obj, dict):
        return _issue(
            "not_an_object",
            f"the line is a JSON {json_type(obj)}, not an object",
            'each line must be one object: {"messages": [...]}',
        )
    messages = obj.get("messages")
    if messages is None and ("input" in obj or any(k in obj for k in PREFERENCE_KEYS)):
        return _check_preference(obj)
    if messages is None and "messages" in obj:
        return _issue("missing_messages", '"messages" is null',
                      '"messages" must be a non-empty list of message objects')
    if messages is None:
        return _issue(
            "missing_messages",
            'the object has no "messages" key'
            + (f" (keys: {first((_short(k, 20) for k in sorted(obj)), 5)})" if obj else ""),
            'wrap the conversation as {"messages": [{"role": ..., "content": ...}, ...]}; '
            "prompt/completion files are the legacy format",
        )
    if not isinstance(messages, list) or not messages:
        kind = "an empty list" if isinstance(messages, list) else f"{a_type(messages)}"
        return _issue(
            "messages_not_list",
            f'"messages" is {kind}',
            '"messages" must be a non-empty list of message objects',
        )
    if obj.get("tools") is not None:
        problem = _tools_problem(obj["tools"])
        if problem is not None:
            return [problem], None
    return _check_messages(messages)


_PLAIN_KEYS = frozenset({"role", "content"})


def _check_messages(messages: list[Any]) -> tuple[list[FormatIssue], ExampleView | None]:
    """Fast path for conversations of plain ``{"role", "content": str}`` messages; anything
    else goes through :func:`_check_messages_fully`."""
    pairs = []
    for msg in messages:
        if type(msg) is not dict or not msg.keys() <= _PLAIN_KEYS:
            return _check_messages_fully(messages)
        role = msg.get("role")
        text = msg.get("content")
        if type(role) is not str or role not in ROLES or type(text) is not str:
            return _check_messages_fully(messages)
        pairs.append(Pair(role, text))
    view = _view(pairs, pairs)
    return ([], view) if view is not None else ([NO_ASSISTANT], None)


Summary = tuple[str, str | None, bool, bool]  # the first four fields of an ExampleView


def summarize(pairs: Sequence[Message]) -> Summary | None:
    """``(input_text, label, has_system, has_user)`` of checked messages, as in their
    :class:`ExampleView` (whose label is None also for a tool call); None when there is no
    assistant message. The scanner calls this for every plain line, without building the
    view, so the two usual shapes — system, user, assistant and user, assistant — are taken
    without the loop."""
    if len(pairs) == 3:
        system, user, answer = pairs
        if (system.role, user.role, answer.role) == ("system", "user", "assistant"):
            return (f"system\x1f{system.content}\x1fuser\x1f{user.content}",
                    answer.content.strip(), True, True)
    elif len(pairs) == 2:
        user, answer = pairs
        if (user.role, answer.role) == ("user", "assistant"):
            return f"user\x1f{user.content}", answer.content.strip(), False, True
    inputs: list[str] = []
    label: str | None = None
    has_system = has_user = False
    for m in pairs:
        role = m.role
        if role == "assistant":
            label = m.content
            continue
        if role == "system":
            has_system = True
        elif role == "user":
            has_user = True
        inputs += (role, m.content)
    if label is None:
        return None
    return "\x1f".join(inputs), label.strip(), has_system, has_user


def _view(pairs: Sequence[Message], messages: Sequence[dict[str, Any] | Message],
          tool_answer: bool = False) -> ExampleView | None:
    """The view of checked messages, given as ``pairs`` (role, text). ``tool_answer``: the last
    assistant message is a tool call, so the example has no plain-text label."""
    summary = summarize(pairs)
    if summary is None:
        return None
    text, label, has_system, has_user = summary
    return ExampleView(text, None if tool_answer else label, has_system, has_user, pairs,
                       messages)


NO_ASSISTANT = FormatIssue(
    "no_assistant", "the conversation has no assistant message",
    "add the answer the model should learn as a final assistant message",
)


def _check_messages_fully(messages: list[Any]) -> tuple[list[FormatIssue], ExampleView | None]:
    """Every rule on every message; the view only when nothing is broken."""
    issues: list[FormatIssue] = []
    pairs: list[Pair] = []
    tool_answer = False
    call_ids: set[str] = set()  # the tool calls made so far
    for i, msg in enumerate(messages):
        problem = _check_message(msg, i)
        text = None
        if problem is None:
            text, problem = _content_text(msg, i)
        if problem is None and msg["role"] == "tool":
            problem = _tool_reply_problem(msg, i, call_ids)
        if problem is not None:
            issues.append(problem)
            continue
        call_ids.update(c["id"] for c in msg.get("tool_calls") or ())
        assert text is not None
        pairs.append(Pair(msg["role"], text))
        if msg["role"] == "assistant":
            tool_answer = any(msg.get(k) for k in _TOOL_KEYS)
    if _images(messages) > MAX_IMAGES:
        issues.append(FormatIssue("too_many_images",
                                  f"the example has {_images(messages)} images",
                                  f"give at most {MAX_IMAGES} images per example"))
    if issues:  # no_assistant only once the rest is clean: fixing a message may add one
        return issues, None
    view = _view(pairs, messages, tool_answer)
    return ([], view) if view is not None else ([NO_ASSISTANT], None)


def _tool_reply_problem(msg: dict[str, Any], i: int, call_ids: set[str]) -> FormatIssue | None:
    """A tool message answers a call an earlier assistant message made, by its id."""
    ident = msg.get("tool_call_id")
    if not isinstance(ident, str) or not ident:
        return FormatIssue("invalid_tool_calls", f'{_where(i, "tool")} has no "tool_call_id"',
                           "give the id of the assistant tool call it answers")
    if ident not in call_ids:
        return FormatIssue("invalid_tool_calls",
                           f'{_where(i, "tool")} answers tool_call_id {_short(ident)}, which '
                           "no earlier assistant tool call made",
                           "use the id of a call in an earlier assistant message's tool_calls")
    return None


def _check_preference(obj: dict[str, Any]) -> tuple[list[FormatIssue], ExampleView | None]:
    """A DPO preference pair: the conversation so far in ``input.messages`` (optionally with
    ``tools``), and one assistant message in each of ``preferred_output`` and
    ``non_preferred_output``."""
    extra = obj.keys() - {"input", *PREFERENCE_KEYS}
    if extra:
        return _issue("unknown_key", "the preference pair has unrecognised key(s) "
                      + ", ".join(sorted(map(_short, extra))),
                      "a preference line has only the keys input, preferred_output and "
                      "non_preferred_output: " + PREFERENCE_SHAPE)
    given = obj.get("input")
    if not isinstance(given, dict) or not isinstance(given.get("messages"), list) \
            or not given["messages"]:
        what = (f"{a_type(given)}" if not isinstance(given, dict) else
                'an object without a non-empty "messages" list')
        return _issue("invalid_preference_input", f'"input" is {what}',
                      '"input" must be {"messages": [...]}: the conversation before the '
                      "answer; " + PREFERENCE_SHAPE)
    if given.get("tools") is not None:
        problem = _tools_problem(given["tools"])
        if problem is not None:
            return [FormatIssue(problem.code, "input " + problem.message, problem.hint)], None
    issues, pairs, messages = [], [], []
    for i, msg in enumerate(given["messages"]):
        problem = _check_message(msg, i)
        text = None
        if problem is None:
            text, problem = _content_text(msg, i)
        if problem is not None:
            issues.append(FormatIssue(problem.code, "input " + problem.message, problem.hint))
            continue
        pairs.append(Pair(msg["role"], text or ""))
        messages.append(msg)
    for key in PREFERENCE_KEYS:
        problem, msg = _preference_answer(obj.get(key), key)
        if problem is not None:
            issues.append(problem)
        else:
            pairs.append(Pair("assistant", msg.get("content") or ""))
            messages.append(msg)
    if issues:
        return issues, None
    if pairs[-3].role == "assistant":
        return _issue("input_ends_with_answer", "the input ends with an assistant message",
                      "end input.messages with the message the answers reply to (usually "
                      "the user's); the answers go in preferred_output and "
                      "non_preferred_output")
    inputs = [p for p in pairs[:-2] if p.role != "assistant"]
    text = "\x1f".join(x for p in inputs for x in (p.role, p.content))
    return [], ExampleView(text, None, any(p.role == "system" for p in inputs),
                           any(p.role == "user" for p in inputs), pairs, messages, PREFERENCE)


def _preference_answer(value: Any, key: str) -> tuple[FormatIssue | None, dict[str, Any]]:
    """The one assistant message of ``preferred_output`` or ``non_preferred_output``."""
    hint = (f'make "{key}" a list of one assistant message, e.g. [{{"role": "assistant", '
            '"content": "..."}]')
    if value is None:
        return FormatIssue("missing_preference_output", f'the preference pair has no "{key}"',
                           f"add it: {PREFERENCE_SHAPE}"), {}
    if not isinstance(value, list) or len(value) != 1:
        what = (f"a list of {len(value)} messages" if isinstance(value, list)
                else f"{a_type(value)}")
        return FormatIssue("invalid_preference_output", f'"{key}" is {what}', hint), {}
    msg = value[0]
    problem = _check_message(msg, 0)
    if problem is None and msg["role"] != "assistant":
        return FormatIssue("invalid_preference_output",
                           f'"{key}" holds a {msg["role"]} message', hint), {}
    if problem is None:
        problem = _content_text(msg, 0)[1]
    if problem is not None:
        return FormatIssue(problem.code, f"{key}: {problem.message}", problem.hint), {}
    return None, msg


_SHALLOW = reprlib.Repr()  # containers nested a few levels deep at most: no recursion limit
_SHALLOW.maxlevel = 3


def _short(value: Any, limit: int = 40) -> str:
    """``repr`` of a user value, cut so that one huge value cannot flood the report."""
    text = _SHALLOW.repr(value) if isinstance(value, list | dict) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def a_type(value: Any) -> str:
    """"an array", "a string"…: the JSON type with its article."""
    kind = json_type(value)
    if kind == "null":
        return kind
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def json_type(value: Any) -> str:
    return {
        dict: "object", list: "array", str: "string", int: "number", float: "number",
        bool: "boolean", type(None): "null",
    }.get(type(value), type(value).__name__)
