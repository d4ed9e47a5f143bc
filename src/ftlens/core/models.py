"""What we know about OpenAI fine-tunable models: tokenizer, training context, price.

Prices are USD per 1M training tokens as published by OpenAI at the time of writing; they change,
so every cost we print is labelled an estimate and ``--price-per-1m`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    encoding: str  # tiktoken encoding name
    context_limit: int | None  # tokens per training example; longer ones are truncated
    price_per_1m: float | None  # USD per 1M training tokens


_FAMILIES: tuple[tuple[str, str, int | None, float | None], ...] = (
    # prefix, encoding, training context, USD / 1M training tokens
    ("gpt-4.1-nano", "o200k_base", 65_536, 1.50),
    ("gpt-4.1-mini", "o200k_base", 65_536, 5.00),
    ("gpt-4.1", "o200k_base", 65_536, 25.00),
    ("gpt-4o-mini", "o200k_base", 65_536, 3.00),
    ("gpt-4o", "o200k_base", 65_536, 25.00),
    ("gpt-3.5-turbo", "cl100k_base", 16_385, 8.00),
    ("gpt-4", "cl100k_base", 8_192, 90.00),
    ("davinci-002", "cl100k_base", 16_384, 6.00),
    ("babbage-002", "cl100k_base", 16_384, 0.40),
)


def model_spec(name: str) -> ModelSpec:
    """The spec of an OpenAI model by name or dated snapshot; unknown models get no limit or
    price (the caller says so) and the cl100k_base tokenizer."""
    base = name.removeprefix("ft:").split(":", 1)[0]
    for prefix, encoding, limit, price in _FAMILIES:
        if base == prefix or base.startswith(prefix + "-"):
            return ModelSpec(base, encoding, limit, price)
    return ModelSpec(base, "cl100k_base", None, None)

