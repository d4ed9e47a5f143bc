"""Benchmark: the Batch API of ``ftlens serve`` against the same requests sent live (issue 17).

``ftlens serve`` runs in its own process on the tiny random model (``tiny-random-llama``, no
job workers). The same number of short label-style requests (a system prompt, one SMS, at most
5 answer tokens, 20 top logprobs, temperature 0) are answered, each phase with fresh texts so
nothing is cached:

1. as one batch: upload (purpose ``batch``), ``batches.create``, polled every 50 ms until
   ``completed``, the output file downloaded (the time covers all of it);
2. one by one: the plain ``OpenAI`` client, ``chat.completions.create`` in a loop;
3. at concurrency 32: ftlens's eval runner (``ftlens.client.runner``, lean aiohttp transport),
   which the service answers with its live batcher (up to 16 requests per forward pass).

Targets: the batch at least 5x faster than one by one and at least 2x faster than concurrency
32. The model is loaded before the first phase.

    python bench/batch.py [--n 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.eval_throughput import machine  # noqa: E402

from ftlens.client.endpoint import Endpoint  # noqa: E402
from ftlens.client.runner import Job, Runner  # noqa: E402
from ftlens.io.response_cache import ResponseCache  # noqa: E402
from ftlens.server.embedded import free_port  # noqa: E402

MODEL = "tiny-random-llama"


def bodies(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"model": MODEL, "temperature": 0, "max_tokens": 5, "logprobs": True,
             "top_logprobs": 20, "messages": [
                 {"role": "system", "content": "Classify the SMS as spam or ham."},
                 {"role": "user", "content": f"SMS {i} {tag}: " + (
                     "WIN a free prize, call now" if i % 5 == 0 else
                     "are we still on for dinner at 8?")}]} for i in range(n)]


def start_service(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ftlens", "serve", "--home", str(home),
                             "--port", str(port), "--workers", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "FTLENS_HOME": str(home)})
    return proc, f"http://127.0.0.1:{port}/v1"


def wait_ready(client: Any) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            client.models.list()
            return
        except Exception:  # not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def as_batch(client: Any, n: int, tag: str) -> float:
    lines = [json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                         "body": b}) for i, b in enumerate(bodies(n, tag))]
    start = time.perf_counter()
    f = client.files.create(file=("batch.jsonl", io.BytesIO("\n".join(lines).encode())),
                            purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    while batch.status not in ("completed", "failed", "cancelled"):
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == n, batch
    out = client.files.content(batch.output_file_id).text.splitlines()
    wall = time.perf_counter() - start
    assert len(out) == n
    return wall


def one_by_one(client: Any, n: int, tag: str) -> float:
    start = time.perf_counter()
    for b in bodies(n, tag):
        client.chat.completions.create(**b)
    return time.perf_counter() - start


def concurrent(url: str, n: int, tag: str, concurrency: int = 32) -> float:
    jobs = [Job(b, i + 1) for i, b in enumerate(bodies(n, tag))]
    with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "c.sqlite") as cache:
        runner = Runner(Endpoint(url, "bench-key", timeout=120), cache, concurrency=concurrency)
        start = time.perf_counter()
        asyncio.run(runner.run(jobs))
        wall = time.perf_counter() - start
        assert runner.stats.sent == n, runner.stats
    return wall


def main() -> None:
    from openai import OpenAI

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    rows: dict[str, list[float]] = {"batch": [], "one by one": [], "concurrency 32": []}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_service(Path(tmp))
        try:
            client = OpenAI(base_url=url, api_key="bench-key", max_retries=0, timeout=600)
            wait_ready(client)
            client.chat.completions.create(**bodies(1, "warm-up")[0])  # loads the model
            for run in range(args.runs):
                for name, measure in (("batch", lambda t: as_batch(client, args.n, t)),
                                      ("one by one", lambda t: one_by_one(client, args.n, t)),
                                      ("concurrency 32", lambda t: concurrent(url, args.n, t))):
                    wall = measure(f"run{run}-{name}")
                    rows[name].append(args.n / wall)
                    print(f"run {run + 1} {name:15s} {args.n / wall:8.1f} req/s "
                          f"({wall:.2f} s)", flush=True)
        finally:
            proc.kill()
            proc.wait()
    for base in ("one by one", "concurrency 32"):
        ratios = [b / o for b, o in zip(rows["batch"], rows[base], strict=True)]
        print(f"batch / {base}: median {statistics.median(ratios):.2f}x "
              f"(runs {', '.join(f'{r:.2f}x' for r in ratios)})")
    for name, rates in rows.items():
        print(f"{name}: median {statistics.median(rates):.1f} req/s "
              f"({min(rates):.1f}-{max(rates):.1f})")


if __name__ == "__main__":
    main()
