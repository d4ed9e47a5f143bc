"""Chat generation with OpenAI-like log-probabilities, batched across requests.

Requests are left-padded into one batch and decoded together with a KV cache; each row keeps
its own temperature, seed, token budget and stop strings. Reported log-probabilities are the
model's own (before temperature), as OpenAI reports them.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class GenerationRequest:
    messages: Sequence[Mapping[str, Any]]
    max_tokens: int = 256
    temperature: float = 1.0
    top_logprobs: int = 0  # alternatives reported per token (0–20)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_p: float = 1.0  # nucleus sampling: the fewest tokens whose probability reaches top_p
    # OpenAI's penalties on the logits: minus frequency_penalty for each time a token was
    # generated already, minus presence_penalty once it was
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, added to its logit)


@dataclass(frozen=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob] = field(default_factory=list)


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[TokenLogprob]


# Told the text so far and its tokens after every step of a row still generating (streaming).
Progress = Callable[[str, list[TokenLogprob]], None]


class Refused(Exception):
    """A request this model cannot answer: its prompt fills the model's context, or it biases
    a token the model does not have. ``param`` and ``code`` as OpenAI names them."""

    def __init__(self, message: str, param: str, code: str) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def context_window(model: Any) -> int | None:
    """How many tokens (prompt and answer) the model's positions reach, if it says."""
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _refusal(request: GenerationRequest, n_prompt: int, window: int | None,
             vocab: int) -> Refused | None:
    if window is not None and n_prompt >= window:
        return Refused(f"This model's maximum context length is {window} tokens. However, "
                       f"your messages resulted in {n_prompt} tokens. Please reduce the "
                       "length of the messages.", "messages", "context_length_exceeded")
    bad = next((t for t, _ in request.logit_bias if t >= vocab), None)
    if bad is not None:
        return Refused(f"logit_bias: token id {bad} is not in the model's vocabulary (ids 0 "
                       f"to {vocab - 1})", "logit_bias", "invalid_value")
    return None


def prompt_ids(tokenizer: Any, messages: Sequence[Mapping[str, Any]]) -> list[int]:
    """The chat template's rendering of ``messages`` followed by the assistant's turn opener."""
    plain = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
    text = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


class _Tokens:
    """Each token's text and UTF-8 bytes, decoded once per call of :func:`generate` (the top
    alternatives of every step repeat the same few tokens)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._seen: dict[int, tuple[str, list[int]]] = {}

    def prefetch(self, token_ids: Iterable[int]) -> None:
        """Decode the new ones among ``token_ids`` in one call (one per token is slow)."""
        new = list({t for t in token_ids if t not in self._seen})
        if new:
            for t, text in zip(new, self.tokenizer.batch_decode([[t] for t in new]),
                               strict=True):
                self._seen[t] = (text, list(text.encode("utf-8")))

    def __call__(self, token_id: int) -> tuple[str, list[int]]:
        found = self._seen.get(token_id)
        if found is None:
            text = self.tokenizer.decode([token_id])
            found = self._seen[token_id] = (text, list(text.encode("utf-8")))
        return found


class _Row:
    def __init__(self, request: GenerationRequest, n_prompt: int,
                 window: int | None = None) -> None:
        self.request = request
        self.n_prompt = n_prompt
        self.budget = request.max_tokens if window is None else min(
            request.max_tokens, window - n_prompt)  # the answer ends with the context
        self.ids: list[int] = []
        self.logprobs: list[TokenLogprob] = []
        self.finish: str | None = None
        self.text = ""
        self.rng: Any = None


def generate(model: Any, tokenizer: Any, requests: Sequence[GenerationRequest],
             progress: Sequence[Progress | None] = ()) -> list[Completion | Refused]:
    """One completion per request, all decoded in one batch, or why the model cannot answer
    it (checked before any decoding; an answer stops where the context ends).
    ``progress[i]``, if given, hears about request ``i`` after each step that added to it and
    did not finish it (its completion tells the rest)."""
    window = context_window(model)
    vocab = int(model.get_output_embeddings().weight.shape[0])
    prompts = [prompt_ids(tokenizer, r.messages) for r in requests]
    out: list[Completion | Refused | None] = [
        _refusal(r, len(p), window, vocab) for r, p in zip(requests, prompts, strict=True)]
    keep = [i for i, x in enumerate(out) if x is None]
    if keep:
        done = _decode(model, tokenizer, [requests[i] for i in keep], [prompts[i] for i in keep],
                       [progress[i] if i < len(progress) else None for i in keep], window)
        for i, completion in zip(keep, done, strict=True):
            out[i] = completion
    return [x for x in out if x is not None]


def _decode(model: Any, tokenizer: Any, requests: Sequence[GenerationRequest],
            prompts: Sequence[list[int]], progress: Sequence[Progress | None],
            window: int | None) -> list[Completion]:
    import torch

    rows = [_Row(r, len(p), window) for r, p in zip(requests, prompts, strict=True)]
    for row in rows:
        seed = row.request.seed if row.request.seed is not None else random.getrandbits(63)
        row.rng = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                        device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    eos = _end_ids(tokenizer)
    cache_kw, last_only = _forward_keywords(model)
    tokens = _Tokens(tokenizer)
    cache = None
    budget = max(row.budget for row in rows)
    with torch.no_grad():
        for _ in range(budget):
            kwargs: dict[str, Any] = {cache_kw: cache} if cache is not None else {}
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                        use_cache=True, **last_only, **kwargs)
            cache = out[cache_kw] if cache_kw in out else out["past_key_values"]
            logp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu()
            ranked = _ranked(logp, rows)
            tokens.prefetch(i for r in ranked for i in r[1])
            chosen = [_step(row, logp[i], ranked[i], tokenizer, tokens, eos)
                      for i, row in enumerate(rows)]
            for row, tell in zip(rows, progress, strict=True):
                if tell is not None and row.finish is None:
                    tell(row.text, list(row.logprobs))
            if all(row.finish is not None for row in rows):
                break
            ids = torch.tensor([[t] for t in chosen], device=device)
            mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
            positions = positions[:, -1:] + 1
    return [_completion(row) for row in rows]


def _forward_keywords(model: Any) -> tuple[str, dict[str, int]]:
    """The KV cache argument's name (transformers 5 calls it ``cache``, earlier releases
    ``past_key_values``) and, where the model takes it, ``logits_to_keep=1``: only the last
    position's logits are needed, and computing the vocabulary's for the whole prompt was most
    of a batch's time on a small model."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(inner.forward).parameters
    return ("cache" if "cache" in params else "past_key_values",
            {"logits_to_keep": 1} if "logits_to_keep" in params else {})


def _end_ids(tokenizer: Any) -> set[int]:
    ends = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ends.add(tid)
    return {t for t in ends if t is not None}


def _ranked(logp: Any, rows: Sequence[_Row]) -> list[tuple[list[float], list[int]]]:
    """Each row's most likely tokens and their log-probabilities, as many as the most
    demanding row asks for: one ``topk`` for the whole batch, not one per row."""
    k = max((r.request.top_logprobs for r in rows if r.finish is None), default=0)
    greedy = any(r.request.temperature <= 0 for r in rows)
    k = min(max(k, 1 if greedy else 0), MAX_TOP_LOGPROBS)
    if k == 0:
        return [([], [])] * len(rows)
    values, indices = logp.topk(k, dim=-1)
    return list(zip(values.tolist(), indices.tolist(), strict=True))


def _step(row: _Row, logp: Any, ranked: tuple[list[float], list[int]], tokenizer: Any,
          tokens: _Tokens, eos: set[int]) -> int:
    """Choose this row's next token and record it; returns the token to feed back."""
    import torch

    if row.finish is not None:
        return next(iter(eos))
    req = row.request
    scores = _adjusted(row, logp)
    if req.temperature <= 0:
        token = ranked[1][0] if scores is None else int(torch.argmax(scores))
    else:
        probs = torch.softmax((logp if scores is None else scores) / req.temperature, dim=-1)
        if req.top_p < 1.0:
            probs = _nucleus(probs, req.top_p)
        token = int(torch.multinomial(probs, 1, generator=row.rng))
    row.ids.append(token)
    if token in eos:
        row.finish = "stop"
        return token
    text, raw = tokens(token)
    top: list[TopLogprob] = []
    if req.top_logprobs:
        n = min(req.top_logprobs, MAX_TOP_LOGPROBS)
        for value, index in zip(ranked[0][:n], ranked[1][:n], strict=True):
            alt, alt_raw = tokens(index)
            top.append(TopLogprob(alt, value, alt_raw))
    chosen = next((v for v, i in zip(*ranked, strict=True) if i == token), None)
    row.logprobs.append(TokenLogprob(text, float(logp[token]) if chosen is None else chosen,
                                     raw, top))
    row.text = tokenizer.decode([t for t in row.ids if t not in eos])
    cut = min((row.text.find(s) for s in req.stop if s and s in row.text), default=-1)
    if cut >= 0:
        row.text = row.text[:cut]
        while row.logprobs and len(tokenizer.decode(row.ids[:len(row.logprobs)])) > cut:
            row.logprobs.pop()
        row.finish = "stop"
    elif len(row.ids) >= row.budget:
        row.finish = "length"
    return token


def _adjusted(row: _Row, logp: Any) -> Any:
    """The scores a token is chosen by when the request biases or penalises tokens (None:
    the model's own log-probabilities, which are what is reported either way)."""
    import torch

    req = row.request
    if not (req.logit_bias or req.frequency_penalty or req.presence_penalty):
        return None
    scores = logp.clone()
    for token, bias in req.logit_bias:
        if 0 <= token < len(scores):
            scores[token] += bias
    if row.ids and (req.frequency_penalty or req.presence_penalty):
        counts = torch.bincount(torch.tensor(row.ids), minlength=len(scores))[:len(scores)]
        scores -= counts.float() * req.frequency_penalty
        scores -= (counts > 0).float() * req.presence_penalty
    return scores


def _nucleus(probs: Any, top_p: float) -> Any:
    """Keep the most likely tokens until their probability reaches ``top_p`` (at least
    one), renormalised."""
    import torch

    ordered, order = probs.sort(descending=True)
    before = ordered.cumsum(0) - ordered  # the mass of the tokens ranked above each
    keep = order[before < top_p]
    out = torch.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def _completion(row: _Row) -> Completion:
    return Completion(row.text, row.finish or "length", row.n_prompt, len(row.ids),
                      row.logprobs)
