"""The retry policy: Retry-After honoured, full-jitter backoff, which statuses retry."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftlens.client.retry import RetryPolicy, retry_after, retryable_status

POLICY = RetryPolicy(base_delay=0.5, max_delay=20.0, max_retry_after=120.0)


@given(attempt=st.integers(1, 40), rand=st.floats(0, 1, exclude_max=True))
def test_backoff_is_full_jitter_up_to_the_cap(attempt: int, rand: float) -> None:
    cap = min(20.0, 0.5 * 2 ** (attempt - 1))
    delay = POLICY.delay(attempt, None, rand)
    assert 0 <= delay <= cap
    assert delay == pytest.approx(rand * cap)


@given(wait=st.floats(0, 100), rand=st.floats(0, 1, exclude_max=True),
       attempt=st.integers(1, 10))
def test_retry_after_is_honoured_never_earlier(wait: float, rand: float, attempt: int) -> None:
    delay = POLICY.delay(attempt, wait, rand)
    assert wait <= delay <= wait * 1.1 + 1e-12


def test_a_huge_retry_after_is_capped() -> None:
    assert POLICY.delay(1, 3600.0, 0.0) == 120.0
    assert POLICY.delay(1, -5.0, 0.5) == 0.0


@pytest.mark.parametrize(("status", "retry"), [
    (400, False), (401, False), (403, False), (404, False), (422, False),
    (408, True), (409, True), (429, True), (500, True), (502, True), (503, True), (504, True),
])
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert retryable_status(status) is retry


NOW = 1_800_000_000.0


@pytest.mark.parametrize(("headers", "seconds"), [
    ({}, None),
    ({"retry-after": "2"}, 2.0),
    ({"retry-after": "0.25"}, 0.25),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
    ({"retry-after": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
    ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
    ({"retry-after": "tomorrow-ish"}, None),
    ({"retry-after": "inf"}, None),
])
def test_retry_after_header(headers: dict[str, str], seconds: float | None) -> None:
    got = retry_after(headers, NOW)
    assert got == (None if seconds is None else pytest.approx(seconds))
