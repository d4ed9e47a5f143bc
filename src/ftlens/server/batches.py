"""The Batch API: ``/v1/batches`` as OpenAI has it, answered by the service's own models.

A batch's input file (purpose ``batch``) holds one request per line, ``{"custom_id", "method":
"POST", "url": "/v1/chat/completions", "body": {...}}``. The :class:`BatchRunner` (one asyncio
task of the service) takes the open batches oldest first and answers their requests in large
batches through the inference thread (:meth:`Batcher.complete_many`), never one by one. The
result lines of every chunk are committed together with the batch's request counts, so a
service killed mid-batch goes on after its restart with the lines not answered yet.

Status flow as OpenAI's: ``validating`` → ``in_progress`` → ``finalizing`` → ``completed``
(the output file holds the answered lines, the error file the others, each in input order);
``cancelling`` → ``cancelled`` (output files with what was done); ``failed`` only when the
input file cannot be read at all. A malformed line is an error-file line naming it, never a
failed batch."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from ftlens.server import wire
from ftlens.server.chat import chat_request
from ftlens.server.http_errors import api_error
from ftlens.server.inference import Batcher, ModelPool
from ftlens.server.remote import RemoteInference
from ftlens.server.store import Store, new_id, now
from ftlens.server.wire import ApiError, not_found
from ftlens.server.wire_types import BatchBody
from ftlens.train.infer import GenerationRequest, Refused

log = logging.getLogger("ftlens.server")
ENDPOINTS = ("/v1/chat/completions",)
WINDOW_S = 24 * 3600  # the only completion window OpenAI offers: "24h"
CHUNK = 256  # requests answered, then committed, together
OPEN = ("validating", "in_progress")  # a batch that can still be cancelled
REMOTE_CONCURRENCY = 32


def add_batch_routes(app: FastAPI, store: Store, runner: BatchRunner) -> None:
    @app.post("/v1/batches")
    async def create_batch(typed: BatchBody) -> dict[str, Any]:
        body = typed.model_dump(exclude_unset=True)
        file_id = body.get("input_file_id")
        row = store.get_file(file_id) if isinstance(file_id, str) else None
        if row is None:
            raise ApiError(400, f"input_file_id: no such file {file_id!r}",
                           param="input_file_id")
        if row["purpose"] != "batch":
            raise ApiError(400, f"input file {file_id} has purpose {row['purpose']!r}; upload "
                                "the requests with purpose 'batch'", param="input_file_id")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise ApiError(400, f"endpoint {endpoint!r} is not supported by ftlens serve; use "
                                f"{' or '.join(ENDPOINTS)}", param="endpoint")
        if body.get("completion_window") != "24h":
            raise ApiError(400, "completion_window must be '24h'", param="completion_window")
        if body.get("output_expires_after") is not None:
            raise ApiError(400, "output_expires_after is not supported by ftlens serve: the "
                                "output files are kept until deleted",
                           param="output_expires_after")
        created = now()
        batch = {"id": new_id("batch"), "created_at": created, "input_file_id": file_id,
                 "endpoint": endpoint, "completion_window": "24h",
                 "metadata": wire.checked_metadata(body.get("metadata")),
                 "status": "validating", "expires_at": created + WINDOW_S,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0}}
        store.add_batch(batch)
        runner.wake()
        return wire.batch_object(_batch(store, batch["id"]))

    @app.get("/v1/batches")
    def list_batches(after: str | None = None, limit: int = 20) -> dict[str, Any]:
        return wire.page(store.list_batches(), wire.batch_object, after, limit)

    @app.get("/v1/batches/{batch_id}")
    def get_batch(batch_id: str) -> dict[str, Any]:
        return wire.batch_object(_batch(store, batch_id))

    @app.post("/v1/batches/{batch_id}/cancel")
    def cancel_batch(batch_id: str) -> dict[str, Any]:
        batch = _batch(store, batch_id)
        if not store.update_batch(batch_id, when=OPEN, status="cancelling",
                                  cancelling_at=now()) and batch["status"] not in (
                                      "cancelling", "cancelled"):
            raise ApiError(400, f"the batch is {batch['status']} and cannot be cancelled",
                               param="batch_id")
        runner.wake()
        return wire.batch_object(_batch(store, batch_id))


def _batch(store: Store, batch_id: str) -> dict[str, Any]:
    row = store.get_batch(batch_id)
    if row is None:
        raise not_found("batch", batch_id, param="batch_id")
    return row


@dataclass(frozen=True)
class Line:
    """One input line: a request to answer, or what is wrong with it."""

    number: int  # 1-based line in the input file
    custom_id: str | None
    body: dict[str, Any] | None = None
    model: str = ""
    request: GenerationRequest | None = None
    logprobs: bool = False
    error: ApiError | None = None  # with status 0: the line is not a request at all


def parse_input(data: bytes, endpoint: str, exists: Callable[[str], bool]) -> list[Line]:
    """Every non-blank line of an input file, checked as OpenAI checks batch lines.
    ``exists(model)`` says whether a model can answer here."""
    lines: list[Line] = []
    seen: set[str] = set()
    exists = functools.cache(exists)  # a batch names one model or a few, on every line
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        lines.append(_line(number, raw, endpoint, exists, seen))
    return lines


class BadLine(Exception):
    """A line that is not a batch request at all (see :func:`envelope`)."""

    def __init__(self, code: str, message: str, custom_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.custom_id = code, message, custom_id


def envelope(raw: bytes, endpoint: str | None, seen: set[str]) -> tuple[str, dict[str, Any]]:
    """The custom_id and body of one input line, checked as OpenAI checks a batch line (one
    JSON object; a custom_id not in ``seen``, which it joins; method POST; url ``endpoint``,
    or with None any endpoint batches here; body an object), else :class:`BadLine`. The
    upload of a ``batch`` file and the batch runner both check lines with this."""
    try:
        item = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadLine("invalid_json_line", f"not valid JSON ({exc}); each line must be one "
                                           "JSON object") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise BadLine("invalid_json_line", "not valid JSON (nested too deeply); each line "
                                           "must be one JSON object") from None
    if not isinstance(item, dict):
        raise BadLine("invalid_request", f"a JSON {type(item).__name__}, not an object with "
                                         "custom_id, method, url and body")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise BadLine("missing_custom_id", "custom_id must be a non-empty string")
    if custom_id in seen:
        raise BadLine("duplicate_custom_id", f"custom_id {custom_id!r} is used by an earlier "
                                             "line; each request needs its own", custom_id)
    seen.add(custom_id)
    if item.get("method") != "POST":
        raise BadLine("invalid_method", f"method must be 'POST', not {item.get('method')!r}",
                      custom_id)
    url = item.get("url")
    if endpoint is not None and url != endpoint:
        raise BadLine("invalid_url", f"url {url!r} is not the batch's endpoint {endpoint!r}",
                      custom_id)
    if endpoint is None and url not in ENDPOINTS:
        raise BadLine("invalid_url", f"url {url!r} is not an endpoint ftlens serve batches; "
                                     f"use {' or '.join(ENDPOINTS)}", custom_id)
    body = item.get("body")
    if not isinstance(body, dict):
        raise BadLine("invalid_body", "body must be the request as a JSON object", custom_id)
    return custom_id, body


def check_upload(data: bytes, name: str) -> int:
    """How many requests an uploaded ``batch`` file holds; a 400 naming the file (by its own
    name) and the line of the first that is not a request, or saying it holds none."""
    seen: set[str] = set()
    for number, raw in enumerate(data.split(b"\n"), 1):
        if raw.strip():
            try:
                envelope(raw, None, seen)
            except BadLine as exc:
                raise ApiError(400, f"{name}, line {number}: {exc.message}", param="file",
                               code="invalid_file") from None
    if not seen:
        raise ApiError(400, f"{name} holds no requests: each line must be one JSON object "
                            "with custom_id, method, url and body", param="file",
                       code="invalid_file")
    return len(seen)


def _line(number: int, raw: bytes, endpoint: str, exists: Callable[[str], bool],
          seen: set[str]) -> Line:
    try:
        custom_id, body = envelope(raw, endpoint, seen)
    except BadLine as exc:
        return Line(number, exc.custom_id, error=ApiError(0, f"line {number}: {exc.message}",
                                                          code=exc.code))
    try:
        model, request, logprobs, stream, _ = chat_request(body)
        if stream:
            raise ApiError(400, "stream is not available in a batch", param="stream")
        if not exists(model):
            raise ApiError(404, f"The model {model!r} does not exist", param="model",
                           code="model_not_found")
    except ApiError as exc:
        return Line(number, custom_id, body=body, error=exc)
    return Line(number, custom_id, body, model, request, logprobs)


def _result(line: Line, status: int, body: dict[str, Any] | None,
            error: dict[str, Any] | None) -> bytes:
    response = None if status == 0 else {"status_code": status,
                                          "request_id": "req_" + secrets.token_hex(12),
                                          "body": body}
    return json.dumps({"id": new_id("batch_req"), "custom_id": line.custom_id,
                       "response": response, "error": error}).encode()


def _failure(line: Line, exc: ApiError) -> tuple[int, bool, bytes]:
    error = {"code": exc.code or exc.type, "message": exc.message}
    return line.number, False, _result(line, exc.status, exc.body() if exc.status else None,
                                       error)


class BatchRunner:
    """Runs the open batches, one at a time, oldest first (see the module docstring)."""

    def __init__(self, store: Store, pool: ModelPool, batcher: Batcher,
                 remote: RemoteInference | None) -> None:
        self.store, self.pool, self.batcher, self.remote = store, pool, batcher, remote
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while True:
            self._wake.clear()
            for batch in self.store.open_batches():
                try:
                    await self.advance(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the batch fails with the reason; the service lives
                    log.exception("batch %s failed", batch["id"])
                    self._fail(batch["id"], "batch_failed",
                               api_error(exc).message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)

    async def advance(self, batch: dict[str, Any]) -> None:
        """Take ``batch`` as far as it goes: validated, answered, finalized (or cancelled)."""
        ident = batch["id"]
        if batch["status"] == "cancelling":  # cancelled while waiting, or before a restart
            return await self._finish(ident, "cancelled")
        path = self.store.file_path(batch["input_file_id"])
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return self._fail(ident, "input_file_missing",
                              f"the input file {batch['input_file_id']} was deleted")
        lines = await asyncio.to_thread(parse_input, data, batch["endpoint"], self.pool.exists)
        if batch["status"] == "validating":
            if not lines:
                return self._fail(ident, "empty_file", "the input file holds no requests")
            model = next((x.model for x in lines if x.model), None)
            if not self.store.update_batch(ident, when=("validating",), status="in_progress",
                                           in_progress_at=now(), model=model, request_counts={
                                               "total": len(lines), "completed": 0,
                                               "failed": 0}):
                return  # cancelled meanwhile: the next turn ends it
        done = self.store.batch_lines_done(ident)
        todo = [x for x in lines if x.number not in done]
        invalid = [_failure(x, x.error) for x in todo if x.error is not None]
        if invalid:
            self.store.add_batch_lines(ident, invalid)
        by_model: dict[str, list[Line]] = {}
        for x in todo:
            if x.error is None:
                by_model.setdefault(x.model, []).append(x)
        for model, group in by_model.items():
            for start in range(0, len(group), CHUNK):
                if self._status(ident) != "in_progress":
                    break
                chunk = group[start:start + CHUNK]
                self.store.add_batch_lines(ident, await self._answer(model, chunk))
        if self._status(ident) == "cancelling":
            return await self._finish(ident, "cancelled")
        if self.store.update_batch(ident, when=("in_progress", "finalizing"),
                                   status="finalizing", finalizing_at=now()):
            await self._finish(ident, "completed")

    async def _answer(self, model: str, lines: Sequence[Line]) -> list[tuple[int, bool, bytes]]:
        created = int(time.time())
        try:
            if self.remote is not None:
                return await self._answer_remote(model, lines)
            completions = await self.batcher.complete_many(
                model, [x.request for x in lines if x.request is not None])
        except Exception as exc:  # every request of the chunk gets the error
            error = api_error(exc)
            return [_failure(x, error) for x in lines]
        return [_failure(x, api_error(c)) if isinstance(c, Refused) else
                (x.number, True, _result(x, 200, wire.completion_object(
                    "chatcmpl-" + secrets.token_hex(12), created, model, c, x.logprobs), None))
                for x, c in zip(lines, completions, strict=True)]

    async def _answer_remote(self, model: str, lines: Sequence[Line]
                             ) -> list[tuple[int, bool, bytes]]:
        """The requests sent to the vLLM server (its own batching), a few dozen at a time."""
        assert self.remote is not None
        remote = self.remote
        await remote.ensure(model)
        gate = asyncio.Semaphore(REMOTE_CONCURRENCY)

        async def one(x: Line) -> tuple[int, bool, bytes]:
            async with gate:
                status, answer = await remote.complete(dict(x.body or {}))
            if status == 200:
                return x.number, True, _result(x, 200, answer, None)
            error = (answer or {}).get("error") if isinstance(answer, dict) else None
            message = (error or {}).get("message", f"status {status}")
            return x.number, False, _result(x, status, answer, {
                "code": (error or {}).get("code") or "inference_error", "message": message})

        return list(await asyncio.gather(*(one(x) for x in lines)))

    def _status(self, ident: str) -> str | None:
        row = self.store.get_batch(ident)
        return None if row is None else row["status"]

    async def _finish(self, ident: str, status: str) -> None:
        """Write the output and error files (only those with lines) and end the batch."""
        files = {}
        for ok, key, name in ((True, "output_file_id", "output"),
                              (False, "error_file_id", "error")):
            lines = self.store.batch_lines(ident, ok)
            if lines:
                data = b"\n".join(lines) + b"\n"
                file_id = new_id("file")
                await asyncio.to_thread(self.store.write_file, file_id, data)
                self.store.add_file(file_id, f"{ident}_{name}.jsonl", "batch_output", len(data))
                files[key] = file_id
        when = ("cancelling",) if status == "cancelled" else ("finalizing",)
        self.store.update_batch(ident, when=when, status=status, **{f"{status}_at": now()},
                                **files)

    def _fail(self, ident: str, code: str, message: str) -> None:
        self.store.update_batch(
            ident, when=("validating", "in_progress", "finalizing", "cancelling"),
            status="failed", failed_at=now(),
            errors={"object": "list", "data": [{"code": code, "message": message,
                                                "param": None, "line": None}]})
