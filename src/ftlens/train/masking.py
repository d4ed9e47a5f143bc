"""Token ids and the training-loss mask of a chat example, built from its chat template.

Loss is taken only on assistant answers, each including its end-of-turn token (so the model
learns to stop), and never on an assistant message with ``weight: 0``. Templates such as
SmolLM2's have no ``{% generation %}`` markers, so the answer spans are found by rendering the
conversation up to each answer: the text before the answer is the rendering of the earlier
messages plus the generation prompt; the answer ends at the end-of-turn token that follows it.
Character spans become token labels through the fast tokenizer's offset mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ftlens.errors import ConfigError

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # the token id where the loss applies, IGNORE elsewhere


def _render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], generation: bool) -> str:
    plain = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
    text = tokenizer.apply_chat_template(plain, tokenize=False,
                                         add_generation_prompt=generation)
    assert isinstance(text, str)
    return text


def answer_spans(tokenizer: Any, messages: Sequence[Mapping[str, Any]]
                 ) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans to train on."""
    full = _render(tokenizer, messages, generation=False)
    eot = tokenizer.eos_token
    spans = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant" or msg.get("weight", 1) == 0:
            continue
        before = _render(tokenizer, messages[:i], generation=True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], generation=False)
        if not full.startswith(before) or not full.startswith(upto):
            raise ConfigError("the chat template renders a conversation differently from its "
                              "beginning", hint="use a model whose template renders messages "
                              "one after another")
        end = upto.rfind(eot)
        if end < len(before):
            raise ConfigError(f"no end-of-turn token {eot!r} after assistant message {i}",
                              hint="the tokenizer's eos_token must close each turn")
        spans.append((len(before), end + len(eot)))
    return full, spans


def encode_chat(tokenizer: Any, messages: Sequence[Mapping[str, Any]]) -> Encoded:
    full, spans = answer_spans(tokenizer, messages)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for token, (start, stop) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        inside = any(a <= start and stop <= b for a, b in spans) and stop > start
        labels.append(token if inside else IGNORE)
    return Encoded(list(enc["input_ids"]), labels)
