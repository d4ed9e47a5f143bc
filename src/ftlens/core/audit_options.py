"""What an audit was asked (the model, tokenizer, epochs, price) and the training bill it
estimated: plain values the audit's findings and its report share."""

from __future__ import annotations

from dataclasses import dataclass

from ftlens.core.models import ModelSpec


@dataclass(frozen=True)
class AuditOptions:
    model: ModelSpec
    tokenizer: str  # description of the tokenizer used, e.g. "cl100k_base (exact)"
    tokenizer_exact: bool = True
    epochs: int | None = None  # None: OpenAI's default for the training-set size
    price_per_1m: float | None = None  # overrides the model's list price
    near_threshold: float = 0.8


@dataclass(frozen=True)
class Cost:
    epochs: int
    billed_tokens: float
    billed_margin: float
    price_per_1m: float | None
    usd: float | None
