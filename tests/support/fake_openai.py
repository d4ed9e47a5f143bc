"""A loopback OpenAI-compatible ``/v1/chat/completions`` endpoint for tests and benchmarks.

Plain asyncio HTTP/1.1 with keep-alive (cheap: it shares two cores with the client under test).
Answers are deterministic per prompt: the user message carries its truth as ``[label]``
(``"SMS 12 [spam] win a prize"``) and :func:`default_oracle` answers it, sometimes wrongly,
in several spellings, with ``top_logprobs`` for the first token. Faults are injected per
request by ``plan(body, attempt) -> fault | None`` where ``attempt`` counts this request's
arrivals (1 = first) and fault is one of ``"429"`` (with ``Retry-After``), ``"500"``,
``"503"``, ``"timeout"`` (held past the client's timeout, then closed unanswered), ``"drop"``
(connection closed before any response), ``"cut"`` (headers and part of the body, then
closed) or ``"garbage"`` (a 200 whose body is not JSON).

The server counts, per request key (sha256 of the canonical request body), every arrival and
every complete 200 answer, so tests can assert that no request succeeded twice.

Run standalone (for benchmarks): ``python -m tests.support.fake_openai --latency 0.05``
prints ``PORT <n>`` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson

Plan = Callable[[Mapping[str, Any], int], str | None]
Oracle = Callable[[Mapping[str, Any]], str]
_TRUTH = re.compile(r"\[([^\]]+)\]")


def body_key(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def default_oracle(body: Mapping[str, Any]) -> str:
    """The truth written in the last user message, right for most prompts; a model whose name
    contains "base" is right less often. Some answers are sentences or unparseable."""
    user = str(body["messages"][-1]["content"])
    m = _TRUTH.search(user)
    truth = m.group(1) if m else "ham"
    h = _h(user + "|" + str(body["model"]))
    wrong_rate = 35 if "base" in str(body["model"]) else 10
    if h % 100 < 4:
        return "I am not sure."
    answer = ("ham" if truth == "spam" else "spam") if h % 97 < wrong_rate else truth
    style = h % 5
    return {0: answer, 1: answer.capitalize(), 2: f"{answer}.", 3: f" {answer.upper()}",
            4: f"This message is {answer}."}[style]


def completion(body: Mapping[str, Any], answer: str) -> bytes:
    top_n = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
    tokens = re.findall(r"\s*\S+", answer) or [""]
    logprobs = None
    if top_n:
        h = _h(answer + str(body["messages"][-1]["content"]))
        p = 0.55 + 0.44 * ((h % 1000) / 1000)
        first = tokens[0]
        other = "ham" if "spam" in first.lower() else "spam"
        alts = [(first, math.log(p)), (other, math.log((1 - p) * 0.8)),
                ("The", math.log((1 - p) * 0.1))]
        alts += [(f"tok{i}", math.log((1 - p) * 0.1 / 2 ** (i + 1))) for i in range(top_n)]
        content = [{"token": t, "logprob": alts[0][1] if i == 0 else -0.01, "bytes": None,
                    "top_logprobs": [{"token": a, "logprob": lp, "bytes": None}
                                     for a, lp in alts[:top_n]] if i == 0 else []}
                   for i, t in enumerate(tokens)]
        logprobs = {"content": content}
    return orjson.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                     "message": {"role": "assistant", "content": answer}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": len(tokens), "total_tokens": 11},
    })


def _response(status: int, body: bytes, extra: Mapping[str, str] | None = None) -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json",
            f"content-length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _error(status: int, message: str, code: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": "invalid_request_error",
                                   "code": code, "param": None}})


class FakeOpenAI:
    def __init__(self, *, latency: float = 0.0, plan: Plan | None = None,
                 oracle: Oracle = default_oracle, api_key: str | None = None,
                 models: set[str] | None = None, hold: float = 5.0,
                 retry_after: str = "0.05") -> None:
        self.latency, self.plan, self.oracle = latency, plan, oracle
        self.api_key, self.models, self.hold = api_key, models, hold
        self.retry_after = retry_after
        self.arrivals: Counter[str] = Counter()  # request key -> times it arrived
        self.ok: Counter[str] = Counter()  # request key -> complete 200 answers sent
        self.events: list[tuple[float, str, str]] = []  # (time, key, what)
        self.received: list[tuple[bytes, dict[str, str]]] = []  # (body, headers) as they came
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- serving ---------------------------------------------------------------------------

    async def serve(self, port: int = 0) -> asyncio.Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    def start(self) -> FakeOpenAI:
        """Serve from a background thread with its own event loop."""
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.serve())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one connection --------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                size = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(size) if size else b""
                if not await self._answer(line.decode("latin-1"), headers, raw, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, request_line: str, headers: Mapping[str, str], raw: bytes,
                      writer: asyncio.StreamWriter) -> bool:
        """Write one response; False to close the connection."""
        arrived = time.monotonic()
        if not request_line.startswith("POST") or "/chat/completions" not in request_line:
            writer.write(_response(404, _error(404, "no such route", "not_found")))
            await writer.drain()
            return True
        self.received.append((raw, dict(headers)))
        body = orjson.loads(raw)
        key = body_key(body)
        self.arrivals[key] += 1
        attempt = self.arrivals[key]
        self.events.append((time.monotonic(), key, f"arrival {attempt}"))
        given = headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and given != self.api_key:
            msg = f"Incorrect API key provided: {given}."  # echoes it, like a careless server
            writer.write(_response(401, _error(401, msg, "invalid_api_key")))
            await writer.drain()
            return True
        if self.models is not None and body.get("model") not in self.models:
            msg = f"The model `{body.get('model')}` does not exist or you do not have access."
            writer.write(_response(404, _error(404, msg, "model_not_found")))
            await writer.drain()
            return True
        fault = self.plan(body, attempt) if self.plan else None
        if fault is not None:
            self.events.append((time.monotonic(), key, fault))
            return await self._fault(fault, writer)
        answer = _response(200, completion(body, self.oracle(body)))
        if self.latency:  # the answer leaves ``latency`` after the request came in
            await asyncio.sleep(self.latency - (time.monotonic() - arrived))
        writer.write(answer)
        await writer.drain()
        self.ok[key] += 1
        return True

    async def _fault(self, fault: str, writer: asyncio.StreamWriter) -> bool:
        if fault in ("429", "500", "503"):
            status = int(fault)
            extra = {"retry-after": self.retry_after} if status in (429, 503) else {}
            writer.write(_response(status, _error(status, f"fault {fault}", fault), extra))
            await writer.drain()
            return True
        if fault == "timeout":
            await asyncio.sleep(self.hold)
            return False
        if fault == "garbage":
            writer.write(_response(200, b"<html>502 Bad Gateway</html>"))
            await writer.drain()
            return True
        if fault == "cut":
            whole = _response(200, b'{"id": "chatcmpl-cut", "choices": [{"index": 0, "message"')
            writer.write(whole[: len(whole) - 10])
            await writer.drain()
            return False
        return False  # "drop": close without a word


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    async def run() -> None:
        server = FakeOpenAI(latency=args.latency)
        await server.serve(args.port)
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    _main()
