"""Score a model as a classifier: the probability of each candidate label for each prompt.

* ``first_token``: when every label starts with a different token after the same prompt, one
  forward pass over the prompt gives them all; the label probabilities are those first tokens'
  probabilities renormalised over the labels.
* ``sequence``: otherwise each label is scored as the summed log-probability of all its tokens
  and the end-of-turn token after it. The text prompt + label + end of turn is tokenised as a
  whole, so a token that straddles the boundary is scored as the label's.

Rows are sorted by length and batched up to a token budget; the language-model head runs only at
the positions that are read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ftlens.errors import ConfigError
from ftlens.train.models import decoder_and_head

MODES = ("auto", "first_token", "sequence")


@dataclass(frozen=True)
class _Row:
    example: int
    label: int
    ids: list[int]
    start: int  # first scored position: ids[start:] are the label's tokens


@dataclass(frozen=True)
class LabelScores:
    labels: tuple[str, ...]
    probs: np.ndarray  # (examples, labels), rows sum to 1
    mode: str  # "first_token" or "sequence"


def score_labels(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Mapping[str, Any]]],
                 labels: Sequence[str], *, mode: str = "auto",
                 batch_tokens: int = 4096) -> LabelScores:
    """Label probabilities for each prompt (a conversation without its final answer)."""
    if mode not in MODES:
        raise ConfigError(f"unknown scoring mode {mode!r}", hint=f"use one of {MODES}")
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise ConfigError("give at least two distinct labels to score")
    rows = [r for i, messages in enumerate(prompts)
            for r in _rows(tokenizer, messages, labels, i)]
    first = _first_token_ok(rows, len(labels))
    if mode == "first_token" and not first:
        raise ConfigError("the labels' first tokens are not all different after the prompt",
                          hint="use mode 'sequence' (or 'auto')")
    use_first = first and mode != "sequence"
    scores = np.full((len(prompts), len(labels)), -np.inf)
    if use_first:  # one row per prompt, read at the first label token
        groups = [rows[i:i + len(labels)] for i in range(0, len(rows), len(labels))]
        heads = [_Row(g[0].example, -1, g[0].ids[:g[0].start + 1], g[0].start) for g in groups]
        for g, vocab_logp in zip(groups, _score(model, heads, batch_tokens, full_vocab=True),
                                 strict=True):
            scores[g[0].example] = vocab_logp[[r.ids[r.start] for r in g]]
    else:
        for row, total in zip(rows, _score(model, rows, batch_tokens, full_vocab=False),
                              strict=True):
            scores[row.example, row.label] = total
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    return LabelScores(tuple(labels), probs, "first_token" if use_first else "sequence")


def _rows(tokenizer: Any, messages: Sequence[Mapping[str, Any]], labels: Sequence[str],
          example: int) -> list[_Row]:
    plain = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
    prompt = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
    rows = []
    for j, label in enumerate(labels):
        enc = tokenizer(prompt + label + tokenizer.eos_token, add_special_tokens=False,
                        return_offsets_mapping=True)
        start = next(k for k, (_, stop) in enumerate(enc["offset_mapping"]) if stop > len(prompt))
        rows.append(_Row(example, j, list(enc["input_ids"]), start))
    return rows


def _first_token_ok(rows: Sequence[_Row], k: int) -> bool:
    """Within each prompt: the same prefix before every label and distinct first tokens."""
    for i in range(0, len(rows), k):
        group = rows[i:i + k]
        prefix = group[0].ids[:group[0].start]
        if any(r.ids[:r.start] != prefix for r in group):
            return False
        if len({r.ids[r.start] for r in group}) != k:
            return False
    return True


def _score(model: Any, rows: Sequence[_Row], batch_tokens: int, *, full_vocab: bool
           ) -> list[Any]:
    """Per row: the log-softmax over the vocabulary at its first scored position
    (``full_vocab``), or the summed log-probability of its scored tokens."""
    import torch

    decoder, head = decoder_and_head(model)
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
    out: list[Any] = [None] * len(rows)
    with torch.no_grad():
        for batch in _batches(order, rows, batch_tokens):
            width = max(len(rows[i].ids) for i in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for b, i in enumerate(batch):
                ids[b, :len(rows[i].ids)] = torch.tensor(rows[i].ids)
                mask[b, :len(rows[i].ids)] = 1
            hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device),
                             use_cache=False).last_hidden_state
            for b, i in enumerate(batch):
                row = rows[i]
                # position p predicts token p + 1
                at = torch.arange(row.start - 1, len(row.ids) - 1, device=device)
                logp = torch.log_softmax(head(hidden[b, at]).float(), dim=-1).cpu()
                if full_vocab:
                    out[i] = logp[0].numpy()
                else:
                    wanted = torch.tensor(row.ids[row.start:])
                    out[i] = float(logp[torch.arange(len(wanted)), wanted].sum())
    return out


def _batches(order: Sequence[int], rows: Sequence[_Row], budget: int) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:  # ascending length: the newest row is the widest
        if current and len(rows[i].ids) * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
