"""Benchmark: the eval runner's request rate and client overhead (issue 6).

A loopback OpenAI-compatible endpoint (``tests/support/fake_openai.py``, plain asyncio, run in
its own process) answers every chat completion after a simulated latency. Measured in one run:

1. the eval runner (``ftlens.client.runner``: AsyncOpenAI, response cache, retries) at
   ``--concurrency`` against 50 ms latency, as a share of the theoretical rate
   concurrency / latency. Target: >= 90 % at concurrency 32;
2. the baseline: a sequential loop with the plain ``OpenAI`` client (one request after the
   other, ``chat.completions.create``), same endpoint. Target: the runner >= 20x faster;
3. client overhead per request: the client process's CPU time per request (event loop,
   SDK, HTTP, JSON, cache writer thread) during (1), and wall time per request against a
   zero-latency endpoint; AsyncOpenAI's bare ``post`` (no cache, no runner) measured alongside
   shows what the runner itself adds. Target: < 2 ms.
4. what the SDK alone allows: AsyncOpenAI's bare ``post`` (no cache, no runner) at the same
   concurrency and latency; and the ceiling of this machine and endpoint: a minimal aiohttp
   client (no SDK, no cache).

The runner's client is ``AsyncOpenAI`` on the SDK's aiohttp transport (``openai[aiohttp]``).

    python bench/eval_throughput.py [--n 3000] [--concurrency 32] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from ftlens.client.endpoint import Endpoint
from ftlens.client.runner import Job, Runner
from ftlens.io.response_cache import ResponseCache


class Server:
    """The fake endpoint in a child process (so it does not share the client's GIL)."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_openai", "--latency", str(latency)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def bodies(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"model": "tuned", "temperature": 0, "max_tokens": 16, "logprobs": True,
             "top_logprobs": 20, "messages": [
                 {"role": "system", "content": "Classify the SMS as spam or ham."},
                 {"role": "user", "content": f"SMS {i} [{'spam' if i % 5 == 0 else 'ham'}] "
                  f"{tag} are we still on for dinner at 8?"}]} for i in range(n)]


def run_runner(url: str, n: int, concurrency: int, tag: str) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for ``n`` fresh requests through the runner."""
    jobs = [Job(b, i + 1) for i, b in enumerate(bodies(n, tag))]
    with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "c.sqlite") as cache:
        runner = Runner(Endpoint(url, "bench-key", timeout=30), cache, concurrency=concurrency)
        cpu, start = time.process_time(), time.perf_counter()
        asyncio.run(runner.run(jobs))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert runner.stats.sent == n and not runner.stats.retries, runner.stats
    return wall, cpu


def run_bare(url: str, n: int, concurrency: int, tag: str) -> tuple[float, float]:
    """The same requests with AsyncOpenAI's ``post`` alone (the same client and transport as
    the runner's): no cache, no runner."""
    import httpx2

    payloads = [orjson.dumps(b) for b in bodies(n, tag)]

    async def main() -> None:
        client = Endpoint(url, "bench-key", timeout=30).client()

        async def send(p: bytes) -> bytes:
            r = await client.post("/chat/completions", content=p, cast_to=httpx2.Response,
                                  options={"headers": {"Content-Type": "application/json"}})
            return bytes(r.content)

        await _fan_out(payloads, concurrency, send)
        await client.close()

    return _timed(main)


def run_minimal(url: str, n: int, concurrency: int, tag: str) -> tuple[float, float]:
    """The same requests from a bare aiohttp session (the transport under the SDK): what the
    machine and the endpoint allow a client with next to no overhead."""
    import aiohttp

    payloads = [orjson.dumps(b) for b in bodies(n, tag)]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}

    async def main() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def send(p: bytes) -> bytes:
                async with session.post(f"{url}/chat/completions", data=p,
                                        headers=headers) as r:
                    return await r.read()

            await _fan_out(payloads, concurrency, send)

    return _timed(main)


async def _fan_out(payloads: list[bytes], concurrency: int,
                   send: Callable[[bytes], Awaitable[bytes]]) -> None:
    """``concurrency`` workers send the payloads in turn and decode every answer."""
    todo = iter(payloads)

    async def worker() -> None:
        for p in todo:
            orjson.loads(await send(p))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _timed(main: Callable[[], Coroutine[Any, Any, None]]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of ``asyncio.run(main())``."""
    cpu, start = time.process_time(), time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - start, time.process_time() - cpu


def run_sequential(url: str, n: int, tag: str) -> float:
    """The plain SDK loop: ``OpenAI().chat.completions.create`` one request after another."""
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="bench-key", max_retries=0)
    start = time.perf_counter()
    for b in bodies(n, tag):
        client.chat.completions.create(**b)
    wall = time.perf_counter() - start
    client.close()
    return wall


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"load average {load} at start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="requests per concurrent run")
    ap.add_argument("--n-seq", type=int, default=60, help="requests in the sequential loop")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.05)
    args = ap.parse_args()
    c, lat = args.concurrency, args.latency
    theory = c / lat
    print(f"machine: {machine()}")
    slow, fast = Server(lat), Server(0.0)
    try:
        run_runner(slow.url, 200, c, "warm-up")
        seq_wall = run_sequential(slow.url, args.n_seq, "seq")
        seq_rate = args.n_seq / seq_wall
        server_cpu = slow.cpu()
        wall, cpu = run_runner(slow.url, args.n, c, "runner")
        server_cpu = slow.cpu() - server_cpu
        rate = args.n / wall
        s_wall, s_cpu = run_bare(slow.url, args.n, c, "bare-slow")
        m_wall, m_cpu = run_minimal(slow.url, args.n, c, "minimal")
        run_runner(fast.url, 200, c, "warm-up")
        z_wall, z_cpu = run_runner(fast.url, args.n, c, "zero")
        b_wall, b_cpu = run_bare(fast.url, args.n, c, "bare")
    finally:
        slow.close()
        fast.close()
    ms = 1000 / args.n
    print(f"\nlatency {lat * 1000:.0f} ms, concurrency {c}: theoretical {theory:.0f} req/s")
    print(f"  sequential OpenAI loop ({args.n_seq} requests): {seq_rate:.1f} req/s")
    print(f"  eval runner ({args.n} requests): {rate:.0f} req/s = {rate / theory:.1%} of "
          f"theoretical, {rate / seq_rate:.1f}x the sequential loop")
    print(f"  client CPU {cpu * ms:.2f} ms/request; server process CPU "
          f"{server_cpu * ms:.2f} ms/request")
    print(f"  bare AsyncOpenAI post, no runner ({args.n} requests): {args.n / s_wall:.0f} req/s "
          f"= {args.n / s_wall / theory:.1%} of theoretical, client CPU {s_cpu * ms:.2f} "
          "ms/request")
    print(f"  ceiling: bare aiohttp client, no SDK ({args.n} requests): {args.n / m_wall:.0f} "
          f"req/s = {args.n / m_wall / theory:.1%} of theoretical, client CPU "
          f"{m_cpu * ms:.2f} ms/request")
    print(f"zero latency, concurrency {c} ({args.n} requests):")
    print(f"  eval runner: {args.n / z_wall:.0f} req/s, wall {z_wall * ms:.2f} ms/request, "
          f"client CPU {z_cpu * ms:.2f} ms/request")
    print(f"  bare AsyncOpenAI post: {args.n / b_wall:.0f} req/s, wall {b_wall * ms:.2f} "
          f"ms/request, client CPU {b_cpu * ms:.2f} ms/request")
    print(f"\ntargets: >= 90 % of theoretical: {'met' if rate >= 0.9 * theory else 'NOT met'}"
          f"; >= 20x sequential: {'met' if rate >= 20 * seq_rate else 'NOT met'}"
          f"; client overhead < 2 ms: {'met' if cpu * ms < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
