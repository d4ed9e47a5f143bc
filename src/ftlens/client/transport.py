"""How one chat-completion request goes out: straight over aiohttp (the default, lean path)
or through the official openai SDK (the reference the lean path is tested against).

Both send the same bytes (the request's canonical JSON) with the same headers that matter
(bearer key, JSON content type), and both
report a failure the same way: :class:`Retryable` for what a retry may fix (429, 408, 409,
5xx, timeouts, refused, reset or dropped connections, a response cut short), or the
:func:`~ftlens.client.endpoint.status_error` of any other HTTP error. The retry policy and the
response cache are the runner's, shared by both. The lean path exists for speed: the SDK's
per-request work (its client machinery and httpx response objects) costs about twice the CPU
of the request itself, which caps a 2-core machine below the rate 32 concurrent requests
allow (bench/eval_throughput.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ftlens.client.endpoint import Endpoint, status_error
from ftlens.client.retry import retry_after, retryable_status

TRANSPORTS = ("http", "sdk")


class Retryable(Exception):
    """A failed attempt that a retry may fix: ``cause`` (``rate_limit``, ``http_503``,
    ``timeout``, ``connection``), what happened, and the wait the server asked for."""

    def __init__(self, cause: str, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.cause, self.detail, self.wait = cause, detail, wait


class Transport(Protocol):
    async def send(self, payload: bytes, model: str, line: int) -> bytes:
        """The response body of one request (``model`` and ``line`` name it in errors)."""

    async def close(self) -> None: ...


def open_transport(kind: str, endpoint: Endpoint, concurrency: int) -> Transport:
    if kind == "sdk":
        return SdkTransport(endpoint)
    if kind == "http":
        return HttpTransport(endpoint, concurrency)
    raise ValueError(f"unknown transport {kind!r}; use one of {', '.join(TRANSPORTS)}")


def _http_failure(endpoint: Endpoint, status: int, exc: Any, headers: Mapping[str, str],
                  model: str, line: int) -> Exception:
    """The error of an HTTP error status: Retryable, or the status error that ends the run."""
    if not retryable_status(status):
        return status_error(endpoint, status, exc, model=model, line=line)
    cause = "rate_limit" if status == 429 else f"http_{status}"
    return Retryable(cause, f"HTTP {status}", retry_after(headers, time.time()))


@dataclass
class _StatusBody:
    """An error reply as the SDK's ``APIStatusError`` holds it (``body``: the JSON's
    ``error`` object, else the JSON or the text), so both paths word it alike."""

    body: Any
    message: str


class HttpTransport:
    """aiohttp, one session and connection pool for the run."""

    def __init__(self, endpoint: Endpoint, concurrency: int) -> None:
        import aiohttp

        self.endpoint = endpoint
        self.url = endpoint.base_url.rstrip("/") + "/chat/completions"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(100, concurrency)),
            timeout=aiohttp.ClientTimeout(total=endpoint.timeout),
            headers={"Authorization": f"Bearer {endpoint.api_key}",
                     "Content-Type": "application/json", "Accept": "application/json"})

    async def send(self, payload: bytes, model: str, line: int) -> bytes:
        import aiohttp

        try:
            async with self.session.post(self.url, data=payload) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
            raise Retryable("timeout", "timed out") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise Retryable("connection", str(exc) or type(exc).__name__) from None
        if status >= 400:
            raise _http_failure(self.endpoint, status, _status_body(status, body), headers,
                                model, line)
        return body

    async def close(self) -> None:
        await self.session.close()


def _status_body(status: int, raw: bytes) -> _StatusBody:
    import orjson

    text = raw.decode("utf-8", "replace").strip()
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = text
    if isinstance(data, Mapping):
        data = data.get("error", data)
    return _StatusBody(data, f"Error code: {status} - {data}")


class SdkTransport:
    """``AsyncOpenAI``'s own ``post``: auth, base URL and error types are the SDK's. The
    ready JSON goes out as it is (its typed-params transform adds nothing to a body that is
    already plain JSON)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint, self.client = endpoint, endpoint.client()

    async def send(self, payload: bytes, model: str, line: int) -> bytes:
        import openai

        try:
            options: Any = {"headers": {"Content-Type": "application/json"}}
            response = await self.client.post("/chat/completions", content=payload,
                                              options=options, cast_to=_http().Response)
            return bytes(response.content)
        except openai.APITimeoutError as exc:
            if _refused(exc):  # the aiohttp transport reports a refused connection so
                raise Retryable("connection", _cause(exc)) from None
            raise Retryable("timeout", "timed out") from None
        except openai.APIConnectionError as exc:
            raise Retryable("connection", _cause(exc)) from None
        except openai.APIStatusError as exc:
            raise _http_failure(self.endpoint, exc.status_code, exc, exc.response.headers,
                                model, line) from None

    async def close(self) -> None:
        await self.client.close()


def _http() -> Any:
    try:
        import httpx2  # what openai>=3 is built on

        return httpx2
    except ImportError:  # pragma: no cover - older SDKs use httpx
        import httpx

        return httpx


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    text = str(inner) if inner is not None and str(inner) else str(exc)
    return text or type(inner or exc).__name__


def _refused(exc: BaseException) -> bool:
    """Whether a connection error (not a timeout) is behind ``exc``."""
    seen: BaseException | None = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
