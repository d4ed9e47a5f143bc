"""Load a chat JSONL file for training or evaluation: every line must pass the audit's format
rules, and the first one that does not stops the load with its file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ftlens.core.chat_format import check_example
from ftlens.errors import DataError
from ftlens.io.chat_jsonl import BOM, line_issue, open_checked


@dataclass(frozen=True)
class Conversation:
    line: int  # 1-based line in its file
    messages: list[dict[str, Any]]
    label: str | None  # the final assistant answer, as the audit reads it (None: a tool call)
    tools: list[Any] | None = None  # the example's top-level function specs, if any


def read_conversations(path: str | Path, *, min_examples: int = 1) -> list[Conversation]:
    """Every example of ``path``, in file order. Raises :class:`DataError` naming the first bad
    line (and how many others are bad), or when the file has fewer than ``min_examples``."""
    p = open_checked(path)
    data = p.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: list[Conversation] = []
    first: tuple[int, str, str] | None = None
    n_bad = 0
    for number, raw in enumerate(lines, 1):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            issue = line_issue(raw, exc)
            problem: tuple[str, str] | None = (issue.message, issue.hint)
        else:
            issues, view = check_example(obj)
            problem = (issues[0].message, issues[0].hint) if issues else None
            if view is not None and not issues:
                out.append(Conversation(number, obj["messages"], view.label,
                                        obj.get("tools") or None))
        if problem is not None:
            n_bad += 1
            if first is None:
                first = (number, *problem)
    if first is not None:
        number, message, hint = first
        more = f" ({n_bad - 1} more bad lines)" if n_bad > 1 else ""
        raise DataError(message + more, path=p, line=number,
                        hint=f"{hint}; `ftlens audit {p}` lists every problem")
    if len(out) < min_examples:
        raise DataError(f"{len(out)} examples; at least {min_examples} are needed", path=p,
                        hint="add more examples to the file")
    return out


API_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "function_call")


@dataclass(frozen=True)
class Example:
    line: int
    prompt: list[dict[str, Any]]
    truth: str


def read_examples(path: Path) -> list[Example]:
    """The test examples: prompt = the messages before the final assistant message."""
    out = []
    for conv in read_conversations(path):
        last = conv.messages[-1]
        if last.get("role") != "assistant":
            raise DataError(f"the last message is {last.get('role')!r}, not the assistant's "
                            "answer", path=path, line=conv.line,
                            expected="the final message to be the assistant's answer (the "
                            "truth); the messages before it are the prompt")
        prompt = [{k: m[k] for k in API_MESSAGE_KEYS if k in m} for m in conv.messages[:-1]]
        out.append(Example(conv.line, prompt, str(last.get("content") or "").strip()))
    return out
