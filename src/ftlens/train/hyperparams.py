"""Hyperparameters named like OpenAI's, each accepting ``"auto"``, and the rules that resolve it.

* ``n_epochs``: OpenAI's default for the dataset size — 3; if 3 epochs would train on fewer than
  100 examples, ``min(25, 100 // n)``; if more than 25,000, ``max(1, 25000 // n)``.
* ``batch_size``: about 0.2 % of the training examples, at least 1 and at most 256 (OpenAI's
  documented behaviour: larger batches for larger datasets).
* ``learning_rate_multiplier``: 1.0. The learning rate is the multiplier times a base rate for
  the method: 1e-3 for LoRA adapters, 2e-5 for full fine-tuning (fresh low-rank adapters take a
  much larger step than pretrained weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ftlens.core.tokens import default_epochs
from ftlens.errors import ConfigError

Auto = Literal["auto"]
BASE_LEARNING_RATE = {"lora": 1e-3, "full": 2e-5}


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"

    @staticmethod
    def from_dict(raw: dict[str, Any] | None) -> Hyperparameters:
        """From an API payload; unknown keys and wrong values are a :class:`ConfigError`."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - {"n_epochs", "batch_size", "learning_rate_multiplier"})
        if unknown:
            raise ConfigError(f"unknown hyperparameter {unknown[0]!r}",
                              hint="use n_epochs, batch_size or learning_rate_multiplier")
        return Hyperparameters(
            n_epochs=_value(raw.get("n_epochs", "auto"), "n_epochs", int, 1, 50),
            batch_size=_value(raw.get("batch_size", "auto"), "batch_size", int, 1, 256),
            learning_rate_multiplier=_value(raw.get("learning_rate_multiplier", "auto"),
                                            "learning_rate_multiplier", float, 1e-4, 100.0))

    def resolve(self, n_examples: int) -> Resolved:
        epochs = self.n_epochs if self.n_epochs != "auto" else max(1, default_epochs(n_examples))
        batch = self.batch_size if self.batch_size != "auto" else auto_batch_size(n_examples)
        mult = (self.learning_rate_multiplier
                if self.learning_rate_multiplier != "auto" else 1.0)
        return Resolved(int(epochs), int(batch), float(mult))


@dataclass(frozen=True)
class Resolved:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float

    def learning_rate(self, method: str) -> float:
        return self.learning_rate_multiplier * BASE_LEARNING_RATE[method]

    def as_dict(self) -> dict[str, Any]:
        return {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
                "learning_rate_multiplier": self.learning_rate_multiplier}


def auto_batch_size(n_examples: int) -> int:
    return max(1, min(256, round(n_examples * 0.002)))


def _value(value: Any, name: str, kind: type, low: float, high: float) -> Any:
    if value == "auto":
        return "auto"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and kind is int and (not float(value).is_integer()):
        ok = False
    if not ok or not low <= value <= high:
        raise ConfigError(f"{name} must be 'auto' or a number from {low:g} to {high:g}, "
                          f"not {value!r}", hint=f"for example {name}=\"auto\"")
    return kind(value)
