"""Encoded training examples and length-grouped batches (little padding, no cross-attention)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ftlens.errors import ConfigError, DataError
from ftlens.io.chat_dataset import Conversation
from ftlens.train.masking import IGNORE, Encoded, Template, encode_chat

GROUP = 32  # batches per length-sorted group


@dataclass(frozen=True)
class Example:
    line: int
    input_ids: list[int]
    labels: list[int]

    @property
    def n_trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)

    def __len__(self) -> int:
        """Tokens in a forward pass (what batching and micro-batching size by)."""
        return len(self.input_ids)


class Sized(Protocol):
    def __len__(self) -> int: ...


def encode_all(tokenizer: Any, conversations: Sequence[Conversation], *, max_length: int,
               path: str, model: str = "the model") -> list[Example]:
    """Encode every conversation; examples longer than ``max_length`` are cut (like OpenAI);
    an example left with nothing to train on, or that the model's template cannot render or
    mask, is an error naming its line."""
    template = Template(tokenizer, model)
    return [encode_one(template, conv.messages, conv.tools, line=conv.line,
                       max_length=max_length, path=path) for conv in conversations]


def encode_one(template: Template, messages: Sequence[dict[str, Any]],
               tools: Sequence[Any] | None, *, line: int, max_length: int, path: str
               ) -> Example:
    """One example of ``path`` (at ``line``), cut to ``max_length`` tokens."""
    try:
        enc: Encoded = encode_chat(template.tokenizer, messages, tools=tools,
                                   template=template)
    except ConfigError as exc:
        raise DataError(exc.message, path=path, line=line, hint=exc.hint) from None
    ex = Example(line, enc.input_ids[:max_length], enc.labels[:max_length])
    if ex.n_trained == 0:
        why = ("its answer starts after the first "
               f"{max_length} tokens" if enc.labels.count(IGNORE) < len(enc.labels)
               else "every assistant message has weight 0")
        raise DataError(f"the example has no tokens to train on: {why}", path=path,
                        line=line, hint="drop the line or give an answer weight 1")
    return ex


def step_batches(examples: Sequence[Sized], batch_size: int, seed: int, epoch: int
                 ) -> list[list[int]]:
    """One epoch's optimiser steps as lists of example indices.

    Examples are shuffled, cut into groups of ``GROUP`` batches, sorted by length within each
    group and batched, and the batches shuffled again: batches hold examples of similar length
    (little padding) while the order stays random from epoch to epoch."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(examples)))
    rng.shuffle(order)
    batches = []
    span = batch_size * GROUP
    for start in range(0, len(order), span):
        group = sorted(order[start:start + span], key=lambda i: len(examples[i]))
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def micro_batches(indices: Sequence[int], examples: Sequence[Sized], max_tokens: int
                  ) -> Iterator[list[int]]:
    """Split one step's examples, longest first, into micro-batches whose padded size stays
    within ``max_tokens`` (always at least one example each)."""
    ordered = sorted(indices, key=lambda i: -len(examples[i]))
    batch: list[int] = []
    for i in ordered:
        width = len(examples[batch[0]]) if batch else len(examples[i])
        if batch and width * (len(batch) + 1) > max_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding)."""
    import torch

    width = max(len(ex.input_ids) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ex in enumerate(batch):
        n = len(ex.input_ids)
        ids[row, :n] = torch.tensor(ex.input_ids)
        labels[row, :n] = torch.tensor(ex.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
