"""Token ids and the training-loss mask of a chat example, built from its model's chat template.

Loss is taken only on assistant answers — their text and their tool calls, which are part of
the answer the model learns — each including the token that closes the turn (so the model
learns to stop), and never on system, user or tool messages or on an assistant message with
``weight: 0``.

* A template with ``{% generation %}`` markers says itself which tokens are the assistant's:
  its mask is used, with the ``weight: 0`` answers taken out again.
* Otherwise (SmolLM2's, and most others) the answer spans are found by rendering the
  conversation up to each answer: the text before the answer is the rendering of the earlier
  messages plus the generation prompt, and the answer ends with the template's **turn closer**,
  found by rendering a probe conversation (ChatML's ``<|im_end|>``, Llama 3's ``<|eot_id|>``,
  Gemma's ``<end_of_turn>``, Phi-3's ``<|end|>``, Mistral's ``</s>``): not the tokenizer's
  ``eos_token``, which in many families ends the whole text, not a turn.

A template that cannot be masked (it closes an assistant turn with nothing, renders a
conversation differently from its beginning, cannot render a role or drops the tools or tool
calls it is given) is a :class:`~ftlens.errors.ConfigError` naming the model, never a silent
wrong mask. Character spans become token labels through the fast tokenizer's offset mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ftlens.errors import ConfigError

IGNORE = -100
PROBE_USER = "ftlens probe question"
PROBE_ANSWER = "ftlens probe answer"
PROBE_NEXT = "ftlens probe follow-up"
GENERATION_MARK = "{% generation %}"
KEPT_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # the token id where the loss applies, IGNORE elsewhere


def text_of(content: Any) -> str:
    """A message's content as text: a string, or a list of text parts joined by newlines
    (as the audit and the evaluation read them)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text") or "") for p in content
                     if isinstance(p, Mapping) and p.get("type", "text") == "text")


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call as chat templates read it: its ``arguments`` as an object when
    they are a JSON object (templates write them with ``tojson``), else as given."""
    fn = dict(call.get("function") or {})
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            fn["arguments"] = parsed
    return {"id": call.get("id"), "type": call.get("type", "function"), "function": fn}


def template_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The messages as a chat template takes them: text content, tool calls, tool call ids
    and names kept; ``weight`` and unknown keys left out. OpenAI's legacy ``function_call``
    and ``function`` role become the tool call and ``tool`` message they stand for."""
    out = []
    last_call = None
    for i, m in enumerate(messages):
        msg: dict[str, Any] = {k: m[k] for k in KEPT_KEYS if m.get(k) is not None}
        msg["content"] = text_of(m.get("content"))
        if m.get("tool_calls"):
            msg["tool_calls"] = [_tool_call(c) for c in m["tool_calls"]]
        elif isinstance(m.get("function_call"), Mapping):
            last_call = f"call_{i}"
            msg["tool_calls"] = [_tool_call({"id": last_call, "type": "function",
                                             "function": m["function_call"]})]
        if m.get("role") == "function":
            msg["role"] = "tool"
            if last_call is not None:
                msg.setdefault("tool_call_id", last_call)
        out.append(msg)
    return out


def _called(msg: Mapping[str, Any]) -> list[str]:
    """The names of the functions an assistant message calls."""
    return [str((c.get("function") or {}).get("name") or "")
            for c in msg.get("tool_calls") or []]


class Template:
    """One tokenizer's chat template, checked once: rendering, and how an answer ends."""

    def __init__(self, tokenizer: Any, model: str = "the model") -> None:
        self.tokenizer = tokenizer
        self.model = model
        source = getattr(tokenizer, "chat_template", None)
        if not source:
            raise ConfigError(f"{model} has no chat template", hint="use a chat (instruct) "
                              "model, or add a chat_template to its tokenizer_config.json")
        self.source = source if isinstance(source, str) else json.dumps(source)
        self.marked = GENERATION_MARK in self.source
        self.closer = "" if self.marked else self._closer()

    def render(self, messages: Sequence[Mapping[str, Any]], *, generation: bool,
               tools: Sequence[Any] | None = None) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                template_messages(messages), tools=list(tools) if tools else None,
                tokenize=False, add_generation_prompt=generation)
        except Exception as exc:  # jinja2 errors, the template's own raise_exception
            raise ConfigError(f"the chat template of {self.model} cannot render this "
                              f"conversation: {exc}", hint="give the roles and message "
                              "order the model's template accepts") from None
        assert isinstance(text, str)
        return text

    def _closer(self) -> str:
        """What follows an assistant answer before the next turn: the common start of the
        text after the answer at the end of a conversation and before a next user turn,
        without trailing whitespace."""
        one = [{"role": "user", "content": PROBE_USER},
               {"role": "assistant", "content": PROBE_ANSWER}]
        two = [*one, {"role": "user", "content": PROBE_NEXT}]
        last = self.render(one, generation=False)
        more = self.render(two, generation=False)
        if PROBE_ANSWER not in last or PROBE_NEXT not in more:
            raise ConfigError(f"the chat template of {self.model} does not show the messages "
                              "it is given", hint="use the model's own chat template")
        after = last[last.rindex(PROBE_ANSWER) + len(PROBE_ANSWER):]
        start = more.rindex(PROBE_ANSWER) + len(PROBE_ANSWER)
        between = more[start:more.index(PROBE_NEXT, start)]
        closer = self._common_tokens(after, between).rstrip()
        if not closer:
            raise ConfigError(f"the chat template of {self.model} does not close an assistant "
                              "turn with anything: the model could not learn where its answer "
                              "ends", hint="use a template whose assistant turns end with a "
                              "token, or one with {% generation %} markers")
        return closer

    def _common_tokens(self, a: str, b: str) -> str:
        """The start of ``a`` made of the tokens ``a`` and ``b`` begin with alike (whole
        tokens: ``<|end|>\n<|endoftext|>`` and ``<|end|>\n<|user|>`` share ``<|end|>\n``)."""
        enc = self.tokenizer(a, add_special_tokens=False, return_offsets_mapping=True)
        other = self.tokenizer(b, add_special_tokens=False)["input_ids"]
        n = _common_start(enc["input_ids"], other)
        return a[:enc["offset_mapping"][n - 1][1]] if n else ""


def _common_start(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def supports(source: str, part: str) -> bool:
    """Whether a chat template's source has a place for a part of function calling:
    ``tools`` (the top-level list), ``tool_calls`` or the ``tool`` role."""
    if part == "tool":
        return "'tool'" in source or '"tool"' in source
    return part in source


def tool_problem(model: str, part: str) -> str:
    return (f"the chat template of {model} has no place for {part!r}: the example's function "
            "calling would be dropped")


TOOL_HINT = ("fine-tune a model whose template supports tools (Qwen2.5, Llama 3.1, Mistral's), "
             "or drop the tool messages")


def _check_tools(template: Template, messages: Sequence[Mapping[str, Any]],
                 tools: Sequence[Any] | None) -> None:
    """Tools and tool calls the template would silently drop are refused."""
    shown = template_messages(messages)
    used = {"tools": bool(tools),
            "tool_calls": any(m.get("tool_calls") for m in shown),
            "tool": any(m.get("role") == "tool" for m in shown)}
    for part, present in used.items():
        if present and not supports(template.source, part):
            raise ConfigError(tool_problem(template.model, part), hint=TOOL_HINT)


def answer_spans(template: Template, messages: Sequence[Mapping[str, Any]],
                 tools: Sequence[Any] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans to train on (templates without
    generation markers)."""
    full = template.render(messages, generation=False, tools=tools)
    shown = template_messages(messages)
    spans = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant" or msg.get("weight", 1) == 0:
            continue
        if i == 0:
            raise ConfigError("the conversation starts with the assistant's answer: there is "
                              "nothing it answers, and the template's own opening (a default "
                              "system prompt) would be trained on",
                              hint="start the example with the user's message")
        before = template.render(messages[:i], generation=True, tools=tools)
        upto = template.render(messages[: i + 1], generation=False, tools=tools)
        end = upto.rfind(template.closer)
        if end < len(before):
            raise ConfigError(f"no turn closer {template.closer!r} after assistant message "
                              f"{i + 1} in the chat template of {template.model}",
                              hint="use the model's own chat template")
        # what follows the closer may end the whole text (Phi-3 adds its eos there)
        if not full.startswith(before) or not full.startswith(
                upto[:end + len(template.closer)]):
            raise ConfigError(f"the chat template of {template.model} renders a conversation "
                              "differently from its beginning, so its answers cannot be "
                              "found", hint="use a template that renders messages one after "
                              "another")
        answer = full[len(before):end]
        for name in _called(shown[i]):
            if name and name not in answer:
                raise ConfigError(f"the chat template of {template.model} drops the tool "
                                  f"call {name!r} of assistant message {i + 1}",
                                  hint="use a template that renders tool_calls")
        spans.append((len(before), end + len(template.closer)))
    return full, spans


def encode_chat(tokenizer: Any, messages: Sequence[Mapping[str, Any]], *,
                tools: Sequence[Any] | None = None, template: Template | None = None
                ) -> Encoded:
    template = template or Template(tokenizer)
    _check_tools(template, messages, tools)
    if template.marked:
        return _encode_marked(template, messages, tools)
    full, spans = answer_spans(template, messages, tools)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for token, (start, stop) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = any(a <= start and stop <= b for a, b in spans) and stop > start
        labels.append(token if inside else IGNORE)
    return Encoded(list(enc["input_ids"]), labels)


def _encode_marked(template: Template, messages: Sequence[Mapping[str, Any]],
                   tools: Sequence[Any] | None) -> Encoded:
    """The template's own assistant mask: its k-th marked run is the k-th assistant
    message, left out when that message has weight 0."""
    try:
        out = template.tokenizer.apply_chat_template(
            template_messages(messages), tools=list(tools) if tools else None, tokenize=True,
            return_dict=True, return_assistant_tokens_mask=True)
    except Exception as exc:
        raise ConfigError(f"the chat template of {template.model} cannot render this "
                          f"conversation: {exc}", hint="give the roles and message order the "
                          "model's template accepts") from None
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    runs: list[list[int]] = []
    for i, flag in enumerate(mask):
        if flag and (not i or not mask[i - 1]):
            runs.append([])
        if flag:
            runs[-1].append(i)
    answers = [m for m in messages if m["role"] == "assistant"]
    if len(runs) != len(answers):
        raise ConfigError(f"the chat template of {template.model} marks {len(runs)} "
                          f"generation blocks for {len(answers)} assistant messages",
                          hint="put each assistant message in one {% generation %} block")
    labels = [IGNORE] * len(ids)
    for run, msg in zip(runs, answers, strict=True):
        if msg.get("weight", 1) != 0:
            for i in run:
                labels[i] = ids[i]
    return Encoded(ids, labels)
