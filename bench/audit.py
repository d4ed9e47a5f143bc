"""Benchmark: `ftlens audit` against a parse-only baseline (orjson over the same files).

Generates N synthetic chat examples (90 % train, 10 % test, about 250 bytes each, with planted
duplicates and leakage), then times in the same run:
  * baseline: read every line and orjson.loads it (nothing else);
  * ftlens audit --json on train + test, as a user runs it (a subprocess), with peak RSS of its
    whole process tree sampled from /proc.
Repeats at N/4 to show how time and memory grow with N. The host's speed drifts by up to 2x
from minute to minute (a shared virtual machine), so baseline and audit are timed alternately
``--repeat`` times and the medians are compared.

    python bench/audit.py [--n 1000000] [--out bench/out] [--repeat 3]

Targets (issue 2): audit wall <= 4 x parse-only, peak RSS <= 2 GiB, memory not quadratic in N.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

SYSTEM = "Classify this SMS as spam or ham. Answer with one word: spam or ham."
WORDS = (
    "hey", "are", "we", "still", "on", "for", "lunch", "tomorrow", "call", "me", "when", "you",
    "get", "this", "running", "late", "sorry", "free", "prize", "winner", "claim", "your",
    "reward", "now", "click", "the", "link", "to", "verify", "account", "bank", "parcel",
    "delivery", "fee", "pay", "today", "limited", "offer", "reply", "stop", "to", "opt", "out",
    "mum", "dad", "love", "you", "see", "you", "at", "the", "station", "meeting", "moved",
    "to", "three", "pm", "can", "you", "pick", "up", "milk", "bread", "eggs", "thanks", "mate",
)


def generate(n: int, out: Path, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    train, test = out / f"train-{n}.jsonl", out / f"test-{n}.jsonl"
    if train.exists() and test.exists():
        return train, test
    n_test = n // 10
    test_texts = []
    with test.open("wb") as ft:
        for i in range(n_test):
            text = _message(rng, i)
            test_texts.append(text)
            ft.write(_line(text, rng) + b"\n")
    with train.open("wb") as fr:
        for i in range(n - n_test):
            if i % 1000 == 7:  # 0.1 % leaked from test
                text = test_texts[rng.randrange(n_test)]
            elif i % 100 == 3 and i > 100:  # 1 % duplicates of an earlier example
                text = _message(rng, i - 100 + rng.randrange(90))
            else:
                text = _message(rng, n_test + i)
            fr.write(_line(text, rng) + b"\n")
    return train, test


def _message(rng: random.Random, i: int) -> str:
    k = rng.randint(8, 30)
    return " ".join(rng.choice(WORDS) for _ in range(k)) + f" #{i}"


def _line(text: str, rng: random.Random) -> bytes:
    label = "spam" if rng.random() < 0.15 else "ham"
    return orjson.dumps({"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": text},
        {"role": "assistant", "content": label},
    ]})


def parse_only(paths: list[Path]) -> float:
    start = time.perf_counter()
    loads = orjson.loads
    for p in paths:
        with p.open("rb") as f:
            for line in f:
                loads(line)
    return time.perf_counter() - start


def _tree_rss(pid: int) -> int:
    """RSS in bytes of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_audit(paths: list[Path], extra: list[str]) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-m", "ftlens", "audit", str(paths[0]), "--test", str(paths[1]),
           "--json", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    t.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, peak, orjson.loads(out)


def _times(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values) + " s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    ap.add_argument("--repeat", type=int, default=3,
                    help="alternate baseline and audit this many times; medians are compared")
    ap.add_argument("--full-near", action="store_true",
                    help="also time --near-dup-limit 0 (every example searched) at N/4")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    rows = []
    for n in (args.n // 4, args.n):
        paths = list(generate(n, args.out))
        size = sum(p.stat().st_size for p in paths) / 1e6
        bases, walls, peaks = [], [], []
        for _ in range(args.repeat):
            bases.append(parse_only(paths))
            wall, peak, report = run_audit(paths, [])
            walls.append(wall)
            peaks.append(peak)
        base, wall, peak = statistics.median(bases), statistics.median(walls), max(peaks)
        leak = next((f for f in report["findings"] if f["id"] == "leakage"), None)
        rows.append((n, size, base, wall, peak))
        print(f"N={n:>9,}  {size:7.1f} MB  parse-only {base:6.2f} s  audit {wall:6.2f} s  "
              f"ratio {wall / base:4.2f}x  peak RSS {peak / 2**20:7.0f} MiB  "
              f"leakage groups {leak['details']['count'] if leak else 0:,}")
        ratios = ", ".join(f"{w / b:.2f}x" for b, w in zip(bases, walls, strict=True))
        print(f"   runs: parse-only {_times(bases)}  audit {_times(walls)}  ({ratios})")
    (n1, _, _, w1, m1), (n2, _, _, w2, m2) = rows
    print(f"growth N x{n2 / n1:.0f}: time x{w2 / w1:.2f}, peak RSS x{m2 / m1:.2f}")
    if args.full_near:
        paths = list(generate(args.n // 4, args.out))
        wall, peak, _ = run_audit(paths, ["--near-dup-limit", "0"])
        print(f"N={args.n // 4:,} with every example searched for near-duplicates: "
              f"{wall:.1f} s, peak RSS {peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
