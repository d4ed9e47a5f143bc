"""Token counts, truncation and the billed-token estimate of a fine-tuning job.

Counts follow OpenAI's chat accounting (3 tokens per message plus its role, content and name,
1 more for a name, 3 to prime the reply). Billing: every example is truncated to the model's
training context, and the job trains ``epochs`` passes over the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


Counts = TypeVar("Counts", int, np.ndarray)  # one example's, or one per example


def chat_overhead(n_messages: Counts, n_names: Counts) -> Counts:
    """Tokens an example costs beyond the text of its parts."""
    return REPLY_PRIMING + TOKENS_PER_MESSAGE * n_messages + TOKENS_PER_NAME * n_names


def chat_token_count(
    parts: Sequence[str], n_messages: int, n_names: int, count: Callable[[str], int]
) -> int:
    """Tokens of one example from its flattened role/content/name strings."""
    return chat_overhead(n_messages, n_names) + sum(map(count, parts))


def token_upper_bound(chars: Counts, n_messages: Counts) -> Counts:
    """A cheap bound never below the true count of an example whose strings have ``chars``
    characters: a BPE token covers at least one UTF-8 byte, a character is at most 4 bytes,
    and a message has at most one name."""
    return chat_overhead(n_messages, n_messages) + 4 * chars


def default_epochs(n_examples: int) -> int:
    """OpenAI's default number of epochs for a training set of ``n_examples``."""
    if n_examples <= 0:
        return 0
    epochs = 3
    if n_examples * epochs < 100:
        epochs = min(25, 100 // n_examples)
    elif n_examples * epochs > 25_000:
        epochs = max(1, 25_000 // n_examples)
    return epochs


@dataclass(frozen=True)
class TokenStats:
    n_examples: int
    n_counted: int  # examples whose tokens were counted (all, or a uniform sample)
    min: int
    mean: float
    p50: float
    p90: float
    max: int
    total: float  # estimated total tokens of the split (exact when n_counted == n_examples)
    billed_per_epoch: float  # sum of min(limit, tokens)
    billed_per_epoch_margin: float  # half-width of the 95 % interval (0 when exact)
    over_limit_lines: tuple[int, ...]
    limit: int | None

    @property
    def exact(self) -> bool:
        return self.n_counted == self.n_examples


def token_stats(
    counts: np.ndarray, *, n_examples: int, limit: int | None,
    over_limit_lines: Sequence[int] = (), over_limit_counts: Sequence[int] = (),
) -> TokenStats:
    """Summaries from ``counts``: every example's count, or a uniform sample of them.

    ``over_limit_*`` are the examples known (exactly counted) to exceed ``limit``; when sampling,
    they are counted for every example, so truncation is never missed.
    """
    if n_examples == 0 or len(counts) == 0:
        return TokenStats(n_examples, 0, 0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0,
                          tuple(over_limit_lines), limit)
    c = np.asarray(counts, dtype=np.float64)
    capped = np.minimum(c, limit) if limit else c
    k = len(c)
    if k == n_examples:
        billed, margin, total = float(capped.sum()), 0.0, float(c.sum())
    else:
        # Uniform sample: scale the sample mean; 95 % normal interval with finite-population
        # correction. Long examples over the limit bill exactly ``limit`` each.
        billed = n_examples * float(capped.mean())
        sd = float(capped.std(ddof=1)) if k > 1 else 0.0
        fpc = math.sqrt(max(0.0, (n_examples - k) / max(1, n_examples - 1)))
        margin = 1.96 * n_examples * sd / math.sqrt(k) * fpc
        total = n_examples * float(c.mean())
    observed_max = max([int(c.max()), *map(int, over_limit_counts)])
    return TokenStats(
        n_examples=n_examples, n_counted=k, min=int(c.min()), mean=float(c.mean()),
        p50=float(np.percentile(c, 50)), p90=float(np.percentile(c, 90)), max=observed_max,
        total=total, billed_per_epoch=billed, billed_per_epoch_margin=margin,
        over_limit_lines=tuple(over_limit_lines), limit=limit,
    )
