"""Send many chat-completion requests to one endpoint, fast and safely.

- **Cache first**: requests already in the :class:`ResponseCache` are not sent; identical
  requests in one run are sent once.
- **Bounded concurrency**: ``concurrency`` workers take the pending requests in order, so at
  most that many are in flight.
- **Retries** by :class:`RetryPolicy` (the SDK's own retries are off): ``Retry-After`` is
  honoured, else exponential backoff with full jitter; non-retryable errors stop the run.
- **Nothing lost**: every response is committed to the cache the moment it arrives, so after a
  crash or Ctrl-C a rerun sends only what never came back.
- **A probe first**: the first pending request goes alone, so a wrong URL, key or model gives
  one clear error at once, not one per worker.
- **Flat memory**: :meth:`Runner.stream` takes the jobs a window at a time (cache lookup, then
  the missing ones sent) and yields each response as JSON bytes, in order; a copy of a request
  sent in an earlier window is read back from the cache.
- **Two transports** (:mod:`ftlens.client.transport`): aiohttp straight (the default) and the
  openai SDK (the reference it is tested against).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any

import orjson

from ftlens.client.endpoint import Endpoint, gave_up
from ftlens.client.retry import RetryPolicy
from ftlens.client.transport import Retryable, Transport, open_transport
from ftlens.errors import BackendError, FtlensError
from ftlens.io.response_cache import CacheWriter, ResponseCache, canonical, request_key

Progress = Callable[[str, int, int], None]
WINDOW = 2048  # jobs looked up in the cache and sent together by Runner.stream


@dataclass(frozen=True)
class Job:
    """One request: ``body`` is the chat-completion request (with ``model``); ``line`` is where
    its example is in the data (for error messages). ``payload`` (the canonical JSON, which is
    also what is sent) and ``key`` are filled in by the runner."""

    body: Mapping[str, Any]
    line: int = 0
    key: str = ""
    payload: bytes = b""

    @property
    def model(self) -> str:
        return str(self.body["model"])


@dataclass
class RunStats:
    requests: int = 0  # distinct requests this run needed
    cached: int = 0  # of them, answered from the cache
    sent: int = 0  # answered by the endpoint now
    attempts: int = 0  # HTTP attempts, retries included
    retries: dict[str, int] = field(default_factory=dict)  # cause -> count

    def to_dict(self) -> dict[str, Any]:
        return {"distinct": self.requests, "cached": self.cached, "sent": self.sent,
                "attempts": self.attempts, "retries": dict(self.retries)}


class Responses(Sequence[Any]):
    """Responses as JSON bytes, decoded when read (a slice is another lazy Responses)."""

    def __init__(self, raw: list[bytes]) -> None:
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return Responses(self._raw[index])
        return orjson.loads(self._raw[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Responses):
            return self._raw == other._raw or list(self) == list(other)
        return isinstance(other, list) and list(self) == other

    __hash__ = None  # type: ignore[assignment]  # mutable-like: equal by content


class Runner:
    def __init__(self, endpoint: Endpoint, cache: ResponseCache, *, concurrency: int = 16,
                 policy: RetryPolicy | None = None, progress: Progress | None = None,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 transport: str = "http") -> None:
        """``transport``: ``http`` (aiohttp, lean) or ``sdk`` (the openai SDK); see
        :mod:`ftlens.client.transport`."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.transport = transport
        self.endpoint, self.cache, self.concurrency = endpoint, cache, concurrency
        self.policy, self.progress = policy or RetryPolicy(), progress
        self.rng, self.sleep = rng or random.Random(), sleep
        self.stats = RunStats()
        self._to_send = 0  # for the progress bar: how many requests this run will send

    def keyed(self, jobs: Iterable[Job]) -> list[Job]:
        return keyed(self.endpoint.public, jobs)

    async def run(self, jobs: Sequence[Job]) -> Responses:
        """The response of every job, in order (each decoded when read: a run of 100,000
        requests holds their JSON bytes, not 100,000 decoded objects)."""
        return Responses([body async for _, body in self.stream(jobs, total=len(jobs))])

    async def stream(self, jobs: Iterable[Job], *, total: int | None = None,
                     window: int = WINDOW) -> AsyncIterator[tuple[Job, bytes]]:
        """Each job (keyed) with its response's JSON bytes, in order. Jobs are taken
        ``window`` at a time (looked up in the cache together, the missing ones sent
        together), so memory stays bounded whatever their number; ``total`` (the number of
        jobs, when known) sizes the progress bar."""
        state = _Open()
        answered: set[str] = set()  # sent this run: a later copy is read back from the cache
        try:
            for chunk in _windows(iter(jobs), window):
                keyed = self.keyed(chunk)
                first: dict[str, Job] = {}
                for j in keyed:
                    first.setdefault(j.key, j)  # identical requests are sent once
                if state.writer is not None and not answered.isdisjoint(first):
                    state.writer.flush()  # what this run sent is in the cache before the lookup
                results: dict[str, bytes] = self.cache.get_many(first, raw=True)
                fresh = [k for k in first if k not in answered]
                self.stats.requests += len(fresh)
                cached = sum(k in results for k in fresh)
                self.stats.cached += cached
                if cached:
                    self._tick("cached", cached, self.stats.cached)
                pending = [j for k, j in first.items() if k not in results]
                if pending:
                    await self._send(state, pending, results, total)
                    answered.update(j.key for j in pending)
                for j in keyed:
                    yield j, results[j.key]
        finally:
            await state.close()

    async def _send(self, state: _Open, pending: list[Job], results: dict[str, bytes],
                    total: int | None) -> None:
        self._to_send = (total or 0) - self.stats.cached
        if state.client is None:  # the first request goes alone (see the module docstring)
            state.client = open_transport(self.transport, self.endpoint, self.concurrency)
            state.writer = self.cache.writer()
            await self._fetch(state.client, state.writer, pending[0], results, probe=True)
            pending = pending[1:]
        assert state.writer is not None
        await self._fan_out(state.client, state.writer, pending, results)

    async def _fan_out(self, client: Transport, writer: CacheWriter, jobs: Sequence[Job],
                       results: dict[str, bytes]) -> None:
        todo: Iterator[Job] = iter(jobs)

        async def worker() -> None:
            for job in todo:  # shared iterator: each job is taken by one worker
                await self._fetch(client, writer, job, results)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(jobs))):
                    group.create_task(worker())
        except BaseExceptionGroup as eg:
            raise _first(eg) from None

    async def _fetch(self, client: Transport, writer: CacheWriter, job: Job,
                     results: dict[str, bytes], probe: bool = False) -> None:
        policy = self.policy
        for attempt in range(1, policy.max_attempts + 1):
            self.stats.attempts += 1
            try:
                body = await client.send(job.payload, job.model, job.line)
            except Retryable as r:
                self.stats.retries[r.cause] = self.stats.retries.get(r.cause, 0) + 1
                limit = policy.max_attempts
                if probe and r.cause == "connection":
                    limit = min(limit, policy.probe_connect_attempts)
                if attempt >= limit:
                    raise gave_up(self.endpoint, r.cause, attempt, r.detail) from None
                await self.sleep(policy.delay(attempt, r.wait, self.rng.random()))
                continue
            self._check(body, job)
            writer.put(job.key, self.endpoint.public, job.model, job.payload, body)
            results[job.key] = body
            self.stats.sent += 1
            self._tick("requests", 1, max(self._to_send,
                                          self.stats.requests - self.stats.cached))
            return

    def _check(self, body: bytes, job: Job) -> None:
        """That ``body`` is a chat completion (else an error naming the line)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            shown = self.endpoint.redact(body[:200].decode("utf-8", "replace"))
            raise BackendError(f"{self.endpoint.public} answered the request for line "
                               f"{job.line} with something that is not a chat completion: "
                               f"{shown!r}", body=shown,
                               hint="check that --base-url points at an OpenAI-compatible "
                               "/v1 endpoint")

    def _tick(self, stage: str, advance: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, advance, total)


@dataclass
class _Open:
    """The transport and cache writer of a run, opened with its first request to send."""

    client: Transport | None = None
    writer: CacheWriter | None = None

    async def close(self) -> None:
        try:
            if self.client is not None:
                await self.client.close()
        finally:
            if self.writer is not None:
                self.writer.close()  # flushes every response received, also on Ctrl-C


def keyed(endpoint: str, jobs: Iterable[Job]) -> list[Job]:
    """``jobs`` with their canonical payload and cache key for ``endpoint`` filled in."""
    out = []
    for j in jobs:
        payload = j.payload or canonical(j.body)
        out.append(Job(j.body, j.line, j.key or request_key(endpoint, j.model, payload), payload))
    return out


def _windows(jobs: Iterator[Job], size: int) -> Iterator[list[Job]]:
    while chunk := list(itertools.islice(jobs, size)):
        yield chunk


def _first(eg: BaseExceptionGroup) -> BaseException:
    """The error to report from a task group: an FtlensError if any, else the first one."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [eg]
    while stack:
        e = stack.pop(0)
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        elif not isinstance(e, asyncio.CancelledError):
            leaves.append(e)
    for e in leaves:
        if isinstance(e, FtlensError):
            return e
    return leaves[0] if leaves else asyncio.CancelledError()
