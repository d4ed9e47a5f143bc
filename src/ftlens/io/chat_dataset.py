"""Load a fine-tuning JSONL file for training or evaluation: every line must pass the audit's
format rules, and the first one that does not stops the load with its file and line. A file
holds chat examples (supervised) or preference pairs (DPO), never both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ftlens.core.audit_findings import BOM_TEXT, EMPTY_FIX, SHAPES
from ftlens.core.chat_format import CHAT, PREFERENCE, PREFERENCE_SHAPE, check_example
from ftlens.core.wording import plural
from ftlens.errors import DataError
from ftlens.io.chat_jsonl import BOM, file_shape, line_issue, open_checked


@dataclass(frozen=True)
class Conversation:
    line: int  # 1-based line in its file
    messages: list[dict[str, Any]]
    label: str | None  # the final assistant answer, as the audit reads it (None: a tool call)
    tools: list[Any] | None = None  # the example's top-level function specs, if any


@dataclass(frozen=True)
class Preference:
    """A DPO pair: the conversation so far, and the answer to prefer over the other."""

    line: int
    messages: list[dict[str, Any]]  # ``input.messages``
    preferred: dict[str, Any]  # one assistant message each
    rejected: dict[str, Any]
    tools: list[Any] | None = None


_WRONG_KIND = {
    CHAT: ("the line is a preference pair (DPO data), not a chat example",
           'train preference pairs with method {"type": "dpo"} (`ftlens train --method dpo`)'
           ', or give chat examples {"messages": [...]} to a supervised job'),
    PREFERENCE: ("the line is a chat example, not a preference pair",
                 f"a DPO job trains on preference pairs {PREFERENCE_SHAPE}; train chat "
                 "examples with a supervised job"),
}


def read_conversations(path: str | Path, *, min_examples: int = 1) -> list[Conversation]:
    """Every chat example of ``path``, in file order. Raises :class:`DataError` naming the
    first bad line (and how many others are bad; a preference pair is bad here), or when the
    file has fewer than ``min_examples``."""
    out = read_dataset(path, CHAT, min_examples=min_examples)
    return out  # type: ignore[return-value]  # CHAT: conversations only


def read_preferences(path: str | Path, *, min_examples: int = 1) -> list[Preference]:
    """Every preference pair of ``path``, checked like :func:`read_conversations`."""
    return read_dataset(path, PREFERENCE, min_examples=min_examples)  # type: ignore[return-value]


def read_dataset(path: str | Path, kind: str | None = None, *, min_examples: int = 1,
                 bom_ok: bool = True) -> list[Conversation] | list[Preference]:
    """Every example of ``path``, all of ``kind`` (None: the kind of the first example).
    ``bom_ok``: a leading byte-order mark is skipped (else refused, as the audit fails it:
    an upload is held to what OpenAI takes)."""
    p = open_checked(path)
    data = p.read_bytes()
    if data.startswith(BOM):
        if not bom_ok:
            raise DataError(f"the file {BOM_TEXT[0]}", path=p, hint=BOM_TEXT[1].format(path=p))
        data = data[len(BOM):]
    if not data:
        raise DataError("the file is empty", path=p, hint=EMPTY_FIX)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: list[Any] = []
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
                kind = kind or view.kind
                if view.kind != kind:
                    problem = _WRONG_KIND[kind]
                else:
                    out.append(_example(number, obj, view.kind, view.label))
        if problem is not None:
            n_bad += 1
            if first is None:
                first = (number, *problem)
    shape = file_shape(p) if first is not None and data else None
    if shape is not None:  # not JSON lines at all: said once, not line by line
        what, how = SHAPES[shape]
        raise DataError(f"the file is {what}", path=p,
                        hint=how.format(path=p, stem=str(p).rsplit(".", 1)[0]))
    if first is not None:
        number, message, hint = first
        more = f" ({plural(n_bad - 1, 'more bad line')})" if n_bad > 1 else ""
        raise DataError(message + more, path=p, line=number,
                        hint=f"{hint}; `ftlens audit {p}` lists every problem")
    if len(out) < min_examples:
        need = f"{min_examples} {'is' if min_examples == 1 else 'are'} needed"
        raise DataError(f"{len(out)} examples; at least {need}", path=p,
                        hint="add more examples to the file")
    return out


def _example(line: int, obj: dict[str, Any], kind: str, label: str | None
             ) -> Conversation | Preference:
    if kind == CHAT:
        return Conversation(line, obj["messages"], label, obj.get("tools") or None)
    given = obj["input"]
    return Preference(line, given["messages"], obj["preferred_output"][0],
                      obj["non_preferred_output"][0], given.get("tools") or None)


def data_kind(path: str | Path) -> str | None:
    """The kind of the first example of a file (``chat`` or ``preference``), read from its
    first lines only; None when none of the first thousand is an example, or the file cannot
    be read (whoever reads it whole says why)."""
    try:
        with Path(path).open("rb") as f:
            for _, raw in zip(range(1000), f, strict=False):
                try:
                    _, view = check_example(orjson.loads(raw.removeprefix(BOM)))
                except orjson.JSONDecodeError:
                    continue
                if view is not None:
                    return view.kind
    except OSError:
        pass
    return None


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
