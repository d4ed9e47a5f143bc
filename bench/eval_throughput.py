"""Benchmark: the eval runner's request rate and client overhead (issues 6 and 17).

A loopback OpenAI-compatible endpoint (``tests/support/fake_openai.py``, plain asyncio, run in
its own process) answers every chat completion after a simulated latency. Measured in one run:

1. the eval runner (``ftlens.client.runner``: response cache, retries) on its default lean
   transport (aiohttp straight, ``ftlens.client.transport``) at ``--concurrency`` against 50 ms
   latency, as a share of the theoretical rate concurrency / latency. Target: >= 90 % at
   concurrency 32; client CPU per request < 1 ms;
2. the baseline: a sequential loop with the plain ``OpenAI`` client (one request after the
   other, ``chat.completions.create``), same endpoint. Target: the runner >= 25x faster;
3. the same runner on the openai SDK transport (the reference the lean one is tested against),
   and the machine's ceiling: a minimal aiohttp client (no runner, no cache);
4. concurrency 128 at 50 ms (the ratio to its theoretical rate is reported);
5. ``--big`` rows (100,000) against a 1 ms endpoint in a child process, streamed through the
   runner (``Runner.stream``, jobs generated as taken, answers decoded and dropped): rate and
   the child's peak RSS. Target: under 300 MiB.

    python bench/eval_throughput.py [--n 3000] [--concurrency 32] [--latency 0.05] [--big N]
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


def run_runner(url: str, n: int, concurrency: int, tag: str, transport: str = "http"
               ) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for ``n`` fresh requests through the runner."""
    jobs = [Job(b, i + 1) for i, b in enumerate(bodies(n, tag))]
    with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "c.sqlite") as cache:
        runner = Runner(Endpoint(url, "bench-key", timeout=30), cache, concurrency=concurrency,
                        transport=transport)
        cpu, start = time.process_time(), time.perf_counter()
        asyncio.run(runner.run(jobs))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert runner.stats.sent == n and not runner.stats.retries, runner.stats
    return wall, cpu


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



def big(n: int, concurrency: int) -> None:
    """The child process of the --big run: ``n`` requests generated as they are taken and
    streamed through the runner (``Runner.stream``), each answer decoded and dropped, as a
    large evaluation reads them; prints the rate and the peak RSS."""
    import resource

    def jobs() -> Any:
        for i in range(n):
            yield Job(bodies(1, f"big {i}")[0], i + 1)

    async def consume(runner: Runner) -> int:
        seen = 0
        async for _, body in runner.stream(jobs(), total=n):
            seen += len(orjson.loads(body)["choices"])
        return seen

    server = Server(0.001)
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                ResponseCache(Path(tmp) / "c.sqlite") as cache:
            runner = Runner(Endpoint(server.url, "bench-key", timeout=30), cache,
                            concurrency=concurrency)
            cpu, start = time.process_time(), time.perf_counter()
            assert asyncio.run(consume(runner)) == n
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            assert runner.stats.sent == n and not runner.stats.retries, runner.stats
    finally:
        server.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(orjson.dumps({"n": n, "wall": wall, "cpu": cpu, "rss_mib": rss}).decode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="requests per concurrent run")
    ap.add_argument("--n-seq", type=int, default=60, help="requests in the sequential loop")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--big", type=int, default=100_000, help="rows of the 1 ms run (0: skip)")
    ap.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.big_child:
        big(args.big, args.concurrency)
        return
    c, lat = args.concurrency, args.latency
    theory = c / lat
    print(f"machine: {machine()}")
    slow = Server(lat)
    try:
        run_runner(slow.url, 200, c, "warm-up")
        seq_rate = args.n_seq / run_sequential(slow.url, args.n_seq, "seq")
        server_cpu = slow.cpu()
        wall, cpu = run_runner(slow.url, args.n, c, "runner")
        server_cpu = slow.cpu() - server_cpu
        rate = args.n / wall
        k_wall, k_cpu = run_runner(slow.url, args.n, c, "sdk", transport="sdk")
        m_wall, m_cpu = run_minimal(slow.url, args.n, c, "minimal")
        w_wall, w_cpu = run_runner(slow.url, args.n, 4 * c, "wide")
    finally:
        slow.close()
    ms = 1000 / args.n
    print(f"\nlatency {lat * 1000:.0f} ms, concurrency {c}: theoretical {theory:.0f} req/s")
    print(f"  sequential OpenAI loop ({args.n_seq} requests): {seq_rate:.1f} req/s")
    print(f"  eval runner, lean transport ({args.n} requests): {rate:.0f} req/s = "
          f"{rate / theory:.1%} of theoretical, {rate / seq_rate:.1f}x the sequential loop; "
          f"client CPU {cpu * ms:.2f} ms/request; server CPU {server_cpu * ms:.2f} ms/request")
    print(f"  eval runner, SDK transport: {args.n / k_wall:.0f} req/s = "
          f"{args.n / k_wall / theory:.1%}, client CPU {k_cpu * ms:.2f} ms/request")
    print(f"  ceiling: bare aiohttp client, no runner: {args.n / m_wall:.0f} req/s = "
          f"{args.n / m_wall / theory:.1%}, client CPU {m_cpu * ms:.2f} ms/request")
    print(f"  concurrency {4 * c}: {args.n / w_wall:.0f} req/s = "
          f"{args.n / w_wall / (4 * theory):.1%} of its theoretical {4 * theory:.0f} req/s, "
          f"client CPU {w_cpu * ms:.2f} ms/request")
    if args.big:
        out = subprocess.run([sys.executable, __file__, "--big-child", "--big", str(args.big),
                              "--concurrency", str(c)], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[1])
        got = orjson.loads(out.stdout.strip().splitlines()[-1])
        print(f"{got['n']:,} rows at 1 ms, concurrency {c}: {got['n'] / got['wall']:.0f} "
              f"req/s, client CPU {got['cpu'] / got['n'] * 1000:.2f} ms/request, peak RSS "
              f"{got['rss_mib']:.0f} MiB")
    print(f"\ntargets: >= 90 % of theoretical: {'met' if rate >= 0.9 * theory else 'NOT met'}"
          f"; >= 25x sequential: {'met' if rate >= 25 * seq_rate else 'NOT met'}"
          f"; client CPU < 1 ms: {'met' if cpu * ms < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
