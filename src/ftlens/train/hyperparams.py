"""Hyperparameters named like OpenAI's, each accepting ``"auto"``, and the rules that resolve it.

* ``n_epochs``: OpenAI's default for the dataset size — 3; if 3 epochs would train on fewer than
  100 examples, ``min(25, 100 // n)``; if more than 25,000, ``max(1, 25000 // n)``.
* ``batch_size``: about 0.2 % of the training examples, at least 1 and at most 256 (OpenAI's
  documented behaviour: larger batches for larger datasets).
* ``learning_rate_multiplier``: 1.0. The learning rate is the multiplier times a base rate for
  the method: 1e-3 for LoRA adapters, 2e-5 for full fine-tuning (fresh low-rank adapters take a
  much larger step than pretrained weights); preference tuning (DPO) takes a tenth of those
  (its loss sums log-probabilities over whole answers, so its gradients are larger).
* ``beta`` (DPO only): 0.1, how far the tuned model may move from the reference model (higher
  keeps it closer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ftlens.core.tokens import default_epochs
from ftlens.errors import ConfigError

Auto = Literal["auto"]
BASE_LEARNING_RATE = {"lora": 1e-3, "full": 2e-5}
DPO_RATE_FACTOR = 0.1
DEFAULT_BETA = 0.1
OBJECTIVES = ("supervised", "dpo")


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    beta: float | Auto | None = None  # DPO only ("auto" or a value); None for supervised

    @staticmethod
    def from_dict(raw: dict[str, Any] | None, objective: str = "supervised"
                  ) -> Hyperparameters:
        """From an API payload (``objective``: the job's method type, ``supervised`` or
        ``dpo``); unknown keys and wrong values are a :class:`ConfigError`."""
        raw = dict(raw or {})
        known = {"n_epochs", "batch_size", "learning_rate_multiplier"}
        if objective == "dpo":
            known.add("beta")
        unknown = sorted(set(raw) - known)
        if unknown:
            why = (" (beta is a DPO hyperparameter: use method type 'dpo')"
                   if unknown[0] == "beta" else "")
            raise ConfigError(f"unknown hyperparameter {unknown[0]!r}{why}",
                              hint="use " + ", ".join(sorted(known)))
        return Hyperparameters(
            n_epochs=_value(raw.get("n_epochs", "auto"), "n_epochs", int, 1, 50),
            batch_size=_value(raw.get("batch_size", "auto"), "batch_size", int, 1, 256),
            learning_rate_multiplier=_value(raw.get("learning_rate_multiplier", "auto"),
                                            "learning_rate_multiplier", float, 1e-4, 100.0),
            beta=(_value(raw.get("beta", "auto"), "beta", float, 1e-3, 2.0)
                  if objective == "dpo" else None))

    def resolve(self, n_examples: int) -> Resolved:
        epochs = self.n_epochs if self.n_epochs != "auto" else max(1, default_epochs(n_examples))
        batch = self.batch_size if self.batch_size != "auto" else auto_batch_size(n_examples)
        mult = (self.learning_rate_multiplier
                if self.learning_rate_multiplier != "auto" else 1.0)
        beta = None if self.beta is None else (
            DEFAULT_BETA if self.beta == "auto" else float(self.beta))
        return Resolved(int(epochs), int(batch), float(mult), beta)


@dataclass(frozen=True)
class Resolved:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    beta: float | None = None  # set for DPO

    def learning_rate(self, method: str) -> float:
        base = BASE_LEARNING_RATE[method]
        return self.learning_rate_multiplier * base * (1 if self.beta is None
                                                       else DPO_RATE_FACTOR)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
                               "learning_rate_multiplier": self.learning_rate_multiplier}
        if self.beta is not None:
            out["beta"] = self.beta
        return out


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
