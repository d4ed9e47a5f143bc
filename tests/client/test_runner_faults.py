"""The eval runner against a real loopback HTTP endpoint that misbehaves: 429 with
Retry-After, 500/503, responses slower than the client's timeout, dropped and cut
connections. The run must end with the same responses as a clean run, and the server must
never have answered one request successfully twice; an interrupted run resumes from the
cache without asking again for anything it had received. Every test runs on both transports:
the lean aiohttp path and the openai SDK it is held to."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.support.fake_openai import FakeOpenAI, body_key

from ftlens.client.endpoint import Endpoint
from ftlens.client.retry import RetryPolicy
from ftlens.client.runner import Job, Runner, RunStats
from ftlens.client.transport import TRANSPORTS
from ftlens.errors import BackendError
from ftlens.io.response_cache import ResponseCache, request_key

N = 60
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)
KEY = "sk-test-0123456789abcdef"


def make_jobs(n: int = N, model: str = "m") -> list[Job]:
    return [Job({"model": model, "temperature": 0, "max_tokens": 16, "logprobs": True,
                 "top_logprobs": 5, "messages": [
                     {"role": "system", "content": "Classify: spam or ham."},
                     {"role": "user", "content": f"SMS {i} [{'spam' if i % 3 else 'ham'}]"}]},
                line=i + 1) for i in range(n)]


def number(body: Mapping[str, Any]) -> int:
    return int(str(body["messages"][-1]["content"]).split()[1])


@pytest.fixture(autouse=True, params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    global TRANSPORT
    TRANSPORT = request.param
    yield TRANSPORT
    TRANSPORT = "http"


TRANSPORT = "http"


def run(server: FakeOpenAI, cache: Path, jobs: list[Job], *, concurrency: int = 8,
        timeout: float = 5.0, policy: RetryPolicy = FAST,
        progress: Callable[[str, int, int], None] | None = None) -> tuple[list[Any], RunStats]:
    endpoint = Endpoint(server.base_url, KEY, timeout=timeout)
    with ResponseCache(cache) as c:
        runner = Runner(endpoint, c, concurrency=concurrency, policy=policy, progress=progress,
                        transport=TRANSPORT)
        return asyncio.run(runner.run(jobs)), runner.stats


def cached_keys(path: Path, server: FakeOpenAI) -> set[str]:
    """The cached requests, as the server's keys (sha256 of the request body)."""
    cached = {k for (k,) in sqlite3.connect(path).execute("SELECT key FROM responses")}
    return {body_key(j.body) for j in make_jobs() if
            request_key(server.base_url, j.model, j.body) in cached}


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeOpenAI]]:
    servers: list[FakeOpenAI] = []

    def start(**kwargs: Any) -> FakeOpenAI:
        servers.append(FakeOpenAI(**kwargs).start())
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


FAULTS = ["429", "500", "503", "timeout", "drop", "cut"]


def faulty(body: Mapping[str, Any], attempt: int) -> str | None:
    """A fault on the first arrival of half the requests, a second one on some."""
    i = number(body)
    if i % 2 == 0 and attempt == 1:
        return FAULTS[(i // 2) % len(FAULTS)]
    if i % 10 == 0 and attempt == 2:
        return "drop" if i % 20 else "500"
    return None


def test_faults_give_the_same_answers_and_no_request_succeeds_twice(
        serve: Callable[..., FakeOpenAI], tmp_path: Path) -> None:
    jobs = make_jobs()
    clean, clean_stats = run(serve(), tmp_path / "clean.sqlite", jobs)
    assert clean_stats.sent == N and clean_stats.retries == {}

    server = serve(plan=faulty, hold=3.0, retry_after="0.3")
    got, stats = run(server, tmp_path / "faulty.sqlite", jobs, timeout=0.75)
    assert got == clean
    assert len(server.ok) == N and set(server.ok.values()) == {1}  # each succeeded once
    assert stats.sent == N and stats.cached == 0
    assert set(stats.retries) == {"rate_limit", "http_500", "http_503", "timeout",
                                  "connection"}
    assert stats.attempts == N + sum(stats.retries.values())
    # Retry-After: 0.3 s was honoured (the backoff alone would have waited <= 0.05 s)
    for key in {k for _, k, what in server.events if what == "429"}:
        times = [t for t, k, what in server.events if k == key and what.startswith("arrival")]
        assert times[1] - times[0] >= 0.3


def test_a_rerun_sends_nothing(serve: Callable[..., FakeOpenAI], tmp_path: Path) -> None:
    server = serve()
    first, _ = run(server, tmp_path / "c.sqlite", make_jobs())
    again, stats = run(server, tmp_path / "c.sqlite", make_jobs())
    assert again == first
    assert stats.sent == 0 and stats.cached == N and stats.attempts == 0
    assert sum(server.arrivals.values()) == N


def test_identical_requests_are_sent_once(serve: Callable[..., FakeOpenAI],
                                          tmp_path: Path) -> None:
    server = serve()
    jobs = make_jobs(10)
    got, stats = run(server, tmp_path / "c.sqlite", jobs + jobs[:5])
    assert stats.requests == 10 and stats.sent == 10
    assert got[10:] == got[:5]
    assert sum(server.arrivals.values()) == 10


class Crash(Exception):
    pass


def crash_after(k: int) -> Callable[[str, int, int], None]:
    seen = [0]

    def progress(stage: str, advance: int, total: int) -> None:
        if stage == "requests":
            seen[0] += advance
            if seen[0] >= k:
                raise Crash(f"crash after {k} responses")

    return progress


def test_crash_midway_resumes_without_asking_twice(serve: Callable[..., FakeOpenAI],
                                                   tmp_path: Path) -> None:
    """One request in flight at a time: after the crash, not one request is sent again."""
    server = serve(latency=0.005)
    jobs = make_jobs()
    with pytest.raises(Crash):
        run(server, tmp_path / "c.sqlite", jobs, concurrency=1, progress=crash_after(25))
    assert len(cached_keys(tmp_path / "c.sqlite", server)) == 25  # none lost
    got, stats = run(server, tmp_path / "c.sqlite", jobs, concurrency=1)
    assert stats.cached == 25 and stats.sent == N - 25
    assert len(server.arrivals) == N and set(server.arrivals.values()) == {1}
    clean, _ = run(serve(), tmp_path / "clean.sqlite", jobs)
    assert got == clean


def test_crash_with_many_in_flight_never_resends_a_received_answer(
        serve: Callable[..., FakeOpenAI], tmp_path: Path) -> None:
    server = serve(latency=0.01, plan=faulty, hold=2.0)
    jobs = make_jobs()
    with pytest.raises(Crash):
        run(server, tmp_path / "c.sqlite", jobs, concurrency=8, timeout=0.5,
            progress=crash_after(20))
    kept = cached_keys(tmp_path / "c.sqlite", server)
    assert len(kept) >= 20
    ok_before = dict(server.ok)
    got, stats = run(server, tmp_path / "c.sqlite", jobs, concurrency=8, timeout=0.5)
    assert stats.cached == len(kept)
    for key in kept:  # nothing received before the crash was asked for again
        assert server.ok[key] == ok_before[key] == 1
    # only requests in flight at the crash can have been answered twice (their answers
    # never arrived); at most one per worker
    twice = [k for k, n in server.ok.items() if n > 1]
    assert len(twice) <= 8
    clean, _ = run(serve(), tmp_path / "clean.sqlite", jobs)
    assert got == clean


def test_cancelled_task_keeps_what_arrived(serve: Callable[..., FakeOpenAI],
                                           tmp_path: Path) -> None:
    """Ctrl-C cancels the run's task: what arrived is flushed to the cache first."""
    server = serve(latency=0.02)
    jobs = make_jobs()
    endpoint = Endpoint(server.base_url, KEY, timeout=5)

    async def main() -> int:
        with ResponseCache(tmp_path / "c.sqlite") as cache:
            runner = Runner(endpoint, cache, concurrency=4, policy=FAST, transport=TRANSPORT)
            task = asyncio.create_task(runner.run(jobs))
            while runner.stats.sent < 12:
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return runner.stats.sent

    sent = asyncio.run(main())
    assert len(cached_keys(tmp_path / "c.sqlite", server)) == sent >= 12
    _, stats = run(server, tmp_path / "c.sqlite", jobs)
    assert stats.cached == sent and stats.sent == N - sent


def test_retries_run_out_with_a_clear_error(serve: Callable[..., FakeOpenAI],
                                            tmp_path: Path) -> None:
    server = serve(plan=lambda body, attempt: "503" if number(body) == 7 else None,
                   retry_after="0")
    with pytest.raises(BackendError) as info:
        run(server, tmp_path / "c.sqlite", make_jobs(20), concurrency=1)
    text = info.value.render()
    assert "kept failing (http_503, 6 attempts)" in text
    assert "rerun the same command to resume" in text
    (key,) = [k for k in server.arrivals if server.arrivals[k] == 6]
    assert server.ok[key] == 0
    kept = cached_keys(tmp_path / "c.sqlite", server)
    assert len(kept) == sum(server.ok.values()) == 7 and key not in kept  # every answer kept


def test_unreachable_endpoint_fails_fast(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", KEY, timeout=2)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        runner = Runner(endpoint, cache, policy=FAST, transport=TRANSPORT)
        with pytest.raises(BackendError) as info:
            asyncio.run(runner.run(make_jobs(5)))
    assert runner.stats.attempts == FAST.probe_connect_attempts
    text = info.value.render()
    assert f"cannot reach http://127.0.0.1:{port}/v1" in text
    assert "is the server running?" in text


@pytest.mark.parametrize(("server_kwargs", "model", "words"), [
    ({"api_key": "the-right-key"}, "m", ["refused the API key (401", "OPENAI_API_KEY"]),
    ({"models": {"tuned"}}, "m", ["model 'm' was not found", "(404)", "--base-url ends"]),
])
def test_auth_and_unknown_model_stop_after_one_request(
        serve: Callable[..., FakeOpenAI], tmp_path: Path, server_kwargs: dict[str, Any],
        model: str, words: list[str]) -> None:
    server = serve(**server_kwargs)
    with pytest.raises(BackendError) as info:
        run(server, tmp_path / "c.sqlite", make_jobs(30, model))
    text = info.value.render()
    for w in words:
        assert w in text
    assert KEY not in text  # the server echoed the key back; it is redacted
    assert sum(server.arrivals.values()) == 1  # the probe, not one per worker


def test_a_body_that_is_not_a_completion_is_an_error(serve: Callable[..., FakeOpenAI],
                                                     tmp_path: Path) -> None:
    server = serve(plan=lambda body, attempt: "garbage" if number(body) == 3 else None)
    with pytest.raises(BackendError, match="not a chat completion"):
        run(server, tmp_path / "c.sqlite", make_jobs(10), concurrency=2)
    assert body_key(make_jobs(10)[3].body) not in cached_keys(tmp_path / "c.sqlite", server)
    assert body_key(make_jobs(10)[3].body) in server.arrivals


def test_a_stream_in_small_windows_sends_each_distinct_request_once(
        serve: Callable[..., FakeOpenAI], tmp_path: Path) -> None:
    import orjson

    server = serve()
    jobs = make_jobs(30) + make_jobs(30)  # each request twice, the copies 30 jobs apart
    with ResponseCache(tmp_path / "c.sqlite") as c:
        runner = Runner(Endpoint(server.base_url, KEY), c, concurrency=4, policy=FAST,
                        transport=TRANSPORT)

        async def collect() -> list[tuple[int, Any]]:
            return [(j.line, orjson.loads(body)) async for j, body in
                    runner.stream(iter(jobs), window=7)]  # an iterator: no length known

        got = asyncio.run(collect())
    assert [line for line, _ in got] == [j.line for j in jobs]
    assert got[:30] == got[30:]
    assert len(server.ok) == 30 and set(server.ok.values()) == {1}
    assert (runner.stats.requests, runner.stats.cached, runner.stats.sent) == (30, 0, 30)
