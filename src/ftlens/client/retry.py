"""When to retry a failed request, and how long to wait first.

Retried: 429 (rate limit), 408, 409, every 5xx, timeouts and connection errors (refused,
reset, dropped mid-response). Not retried: other 4xx (bad key, unknown model, bad request),
which no wait can fix. The wait is the server's ``Retry-After`` (``retry-after-ms``, seconds,
or an HTTP date) when it sends one, plus up to 10 % jitter so that the waiting requests do not
return together; else exponential backoff with full jitter: uniform in
``[0, min(max_delay, base_delay * 2 ** (attempt - 1))]``.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass

RETRY_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # in all, the first try included
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0  # a longer Retry-After is capped to this
    probe_connect_attempts: int = 3  # the first request gives up sooner on connection errors

    def delay(self, attempt: int, retry_after: float | None, rand: float) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based); ``rand`` in [0, 1)."""
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_retry_after)
            return wait * (1 + 0.1 * rand)
        return rand * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


def retryable_status(status: int) -> bool:
    return status in RETRY_STATUS or status >= 500


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asks to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or
    an HTTP date, relative to ``now``); None when absent or unreadable."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) else None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)
