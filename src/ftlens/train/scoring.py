"""Score a model as a classifier: the probability of each candidate label for each prompt.

* ``first_token``: when every label starts with a different token after the same prompt, one
  forward pass over the prompt gives them all; the label probabilities are those first tokens'
  probabilities renormalised over the labels.
* ``sequence``: otherwise each label is scored as the summed log-probability of all its tokens
  and the end-of-turn token after it. The text prompt + label + end of turn is tokenised as a
  whole, so a token that straddles the boundary is scored as the label's.

Rows are sorted by length and batched up to a token budget; the language-model head runs only at
the positions that are read, once per batch. :func:`prepare_labels` tokenises once for scoring
the same prompts again and again (the validation rows at every validation step of a job).
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


@dataclass(frozen=True)
class Prepared:
    """Prompts tokenised with every label, and the mode they are scored in."""

    labels: tuple[str, ...]
    groups: tuple[tuple[_Row, ...], ...]  # per prompt, one row per label
    mode: str  # "first_token" or "sequence"


def prepare_labels(tokenizer: Any, prompts: Sequence[Sequence[Mapping[str, Any]]],
                   labels: Sequence[str], *, mode: str = "auto") -> Prepared:
    """Tokenise each prompt (a conversation without its final answer) with each label."""
    if mode not in MODES:
        raise ConfigError(f"unknown scoring mode {mode!r}", hint=f"use one of {MODES}")
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise ConfigError("give at least two distinct labels to score")
    groups = tuple(tuple(_rows(tokenizer, messages, labels, i))
                   for i, messages in enumerate(prompts))
    first = all(_first_token_ok(g) for g in groups)
    if mode == "first_token" and not first:
        raise ConfigError("the labels' first tokens are not all different after the prompt",
                          hint="use mode 'sequence' (or 'auto')")
    return Prepared(tuple(labels), groups,
                    "first_token" if first and mode != "sequence" else "sequence")


def score_labels(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Mapping[str, Any]]],
                 labels: Sequence[str], *, mode: str = "auto",
                 batch_tokens: int = 4096) -> LabelScores:
    """Label probabilities for each prompt (a conversation without its final answer)."""
    return score_prepared(model, prepare_labels(tokenizer, prompts, labels, mode=mode),
                          batch_tokens=batch_tokens)


def score_prepared(model: Any, prepared: Prepared, which: Sequence[int] | None = None, *,
                   batch_tokens: int = 4096) -> LabelScores:
    """Label probabilities of the prepared prompts ``which`` (default: all), in that order."""
    chosen = [prepared.groups[i] for i in (range(len(prepared.groups)) if which is None
                                           else which)]
    k = len(prepared.labels)
    scores = np.full((len(chosen), k), -np.inf)
    if prepared.mode == "first_token":  # one row per prompt, read at the first label token
        heads = [_Row(n, -1, g[0].ids[:g[0].start + 1], g[0].start)
                 for n, g in enumerate(chosen)]
        for n, (g, vocab_logp) in enumerate(zip(chosen, _score(model, heads, batch_tokens,
                                                                full_vocab=True), strict=True)):
            scores[n] = vocab_logp[[r.ids[r.start] for r in g]]
    else:
        rows = [r for g in chosen for r in g]
        for n, total in enumerate(_score(model, rows, batch_tokens, full_vocab=False)):
            scores[n // k, rows[n].label] = total
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    return LabelScores(prepared.labels, probs, prepared.mode)


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


def _first_token_ok(group: Sequence[_Row]) -> bool:
    """The same prefix before every label of a prompt, and distinct first tokens."""
    prefix = group[0].ids[:group[0].start]
    if any(r.ids[:r.start] != prefix for r in group):
        return False
    return len({r.ids[r.start] for r in group}) == len(group)


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
            # every read position of the batch through the head at once; position p predicts
            # token p + 1
            spans = [range(rows[i].start - 1, (rows[i].start if full_vocab
                                               else len(rows[i].ids) - 1)) for i in batch]
            where_b = torch.tensor([b for b, span in enumerate(spans) for _ in span])
            where_t = torch.tensor([t for span in spans for t in span])
            logp = torch.log_softmax(head(hidden[where_b.to(device), where_t.to(device)])
                                     .float(), dim=-1).cpu()
            if full_vocab:
                for b, i in enumerate(batch):
                    out[i] = logp[b].numpy()
                continue
            wanted = torch.tensor([tok for i in batch for tok in rows[i].ids[rows[i].start:]])
            picked = logp[torch.arange(len(wanted)), wanted].double().numpy()
            ends = np.cumsum([len(span) for span in spans])
            for i, chunk in zip(batch, np.split(picked, ends[:-1]), strict=True):
                out[i] = float(chunk.sum())
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
