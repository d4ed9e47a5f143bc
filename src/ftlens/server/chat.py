"""The models and chat completions routes: ``/v1/models`` and ``/v1/chat/completions``, answered
by the local inference batcher (streamed token by token) or by a vLLM server."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ftlens.server import wire
from ftlens.server.catalog import Catalog
from ftlens.server.http_errors import api_error
from ftlens.server.inference import Batcher, ModelPool
from ftlens.server.remote import RemoteInference
from ftlens.server.store import Store
from ftlens.server.wire import ApiError, not_found
from ftlens.server.wire_types import ChatCompletionBody, TextPart, validated
from ftlens.train.infer import MAX_TOP_LOGPROBS, Completion, GenerationRequest


def add_chat_routes(app: FastAPI, store: Store, catalog: Catalog, pool: ModelPool,
                    batcher: Batcher, remote: RemoteInference | None) -> None:
    """``/v1/models`` (list, retrieve, delete) and ``/v1/chat/completions`` (answered here, in
    batches, or by a vLLM server)."""

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": catalog.listed()}

    @app.get("/v1/models/{model:path}")
    def get_model(model: str) -> dict[str, Any]:
        for item in catalog.listed():
            if item["id"] == model:
                return item
        raise not_found("model", model, param="model")

    @app.delete("/v1/models/{model:path}")
    async def delete_model(model: str) -> dict[str, Any]:
        if not catalog.delete(model):
            if catalog.exists(model):
                why = ("is a checkpoint: it goes when its fine-tuned model is deleted"
                       if ":ckpt-step-" in model else
                       "is not a fine-tuned model: only those can be deleted")
                raise ApiError(403, f"{model} {why}", param="model",
                               code="model_not_deletable")
            raise not_found("model", model, param="model")
        pool.forget(model)
        if remote is not None:
            await remote.forget(model)
        return {"id": model, "object": "model", "deleted": True}

    @app.post("/v1/chat/completions", response_model=None, responses={200: {
        "description": "The completion; with stream, its chunks as server-sent events",
        "content": {"application/json": {"schema": {"type": "object"}},
                    "text/event-stream": {"schema": {"type": "string"}}}}})
    async def chat(typed: ChatCompletionBody, request: Request) -> dict[str, Any] | Response:
        model, req, logprobs, stream, include_usage = chat_request(typed)
        body = typed.model_dump(exclude_unset=True)  # what a vLLM server is sent
        if not pool.exists(model):
            raise ApiError(404, f"The model {model!r} does not exist", param="model",
                           code="model_not_found")
        if remote is not None:  # vLLM answers, with its own batching
            await remote.ensure(model)  # before the stream starts: its errors get a status
            if stream:
                status, error, events = await remote.stream(body)
                if events is None:
                    return JSONResponse(error, status_code=status)
                return StreamingResponse(events, media_type="text/event-stream")
            status, answer = await remote.complete(body)
            return JSONResponse(answer, status_code=status)
        ident, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
        if not stream:
            completion = await batcher.complete(model, req)
            return wire.completion_object(ident, created, model, completion, logprobs)
        return await _stream(batcher, model, req,
                             wire.ChunkStream(ident, created, model, logprobs, req.stop),
                             include_usage, request.state.request_id)


async def _stream(batcher: Batcher, model: str, req: GenerationRequest,
                  chunks: wire.ChunkStream, include_usage: bool, ident: str
                  ) -> StreamingResponse:
    """Server-sent events that carry each token as soon as it is final. A request that fails
    before its first token still gets an error status, as without streaming."""
    loop = asyncio.get_running_loop()
    steps: asyncio.Queue[tuple[str, list[Any]] | None] = asyncio.Queue()

    def tell(text: str, tokens: list[Any]) -> None:  # from the inference thread
        loop.call_soon_threadsafe(steps.put_nowait, (text, tokens))

    def done(task: asyncio.Task[Completion]) -> None:  # after every step's news
        if not task.cancelled():
            task.exception()  # seen, even if the client has gone and nobody asks again
        steps.put_nowait(None)

    task = loop.create_task(batcher.complete(model, req, tell))
    task.add_done_callback(done)
    first = await steps.get()
    if first is None:
        task.result()  # raises the error

    def sse(item: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(item).encode() + b"\n\n"

    async def events() -> AsyncIterator[bytes]:
        yield sse(chunks.start())
        try:
            step = first
            while step is not None:
                for item in chunks.advance(*step):
                    yield sse(item)
                step = await steps.get()
            end = chunks.end(task.result(), include_usage)
        except Exception as exc:  # the status is sent: the error goes as an event (the SDK
            yield sse(api_error(exc, ident).body())  # raises it as APIError)
            return
        for item in end:
            yield sse(item)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def chat_request(body: dict[str, Any] | ChatCompletionBody
                 ) -> tuple[str, GenerationRequest, bool, bool, bool]:
    """A chat completions body (typed first, if it is not yet) as the model's name, the
    generation request, and whether logprobs, streaming and a usage chunk are wanted."""
    b = body if isinstance(body, ChatCompletionBody) else validated(ChatCompletionBody, body)
    _refuse_unsupported(b)
    plain = []
    for i, msg in enumerate(b.messages):
        content = msg.content
        if isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, TextPart):
                    raise ApiError(400, f"messages[{i}].content[{j}]: {part.type} parts are "
                                        "not supported by ftlens serve (text only)",
                                   param=f"messages[{i}].content[{j}]",
                                   code="unsupported_parameter")
            content = "".join(p.text for p in content if isinstance(p, TextPart))
        if msg.role in ("tool", "function") or msg.tool_calls or msg.function_call:
            raise ApiError(400, f"messages[{i}]: function calling is not supported by ftlens "
                                "serve", param=f"messages[{i}]", code="unsupported_parameter")
        if content is None:
            raise ApiError(400, f"messages[{i}].content: a {msg.role} message needs content",
                           param=f"messages[{i}].content")
        plain.append({"role": "system" if msg.role == "developer" else msg.role,
                      "content": content})
    if b.n not in (None, 1):
        raise ApiError(400, "only n=1 is supported", param="n")
    limit = b.max_completion_tokens if b.max_completion_tokens is not None else b.max_tokens
    top = int(_number(b.top_logprobs, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS))
    if top and not b.logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
    stops = (b.stop,) if isinstance(b.stop, str) else tuple(b.stop or ())
    if len(stops) > 4:
        raise ApiError(400, "stop must be a string or up to 4 strings", param="stop")
    request = GenerationRequest(
        plain, max_tokens=int(_number(limit, "max_tokens", 256, 1, 8192)),
        temperature=_number(b.temperature, "temperature", 1.0, 0.0, 2.0),
        top_logprobs=top, stop=stops, seed=b.seed,
        top_p=_number(b.top_p, "top_p", 1.0, 0.0, 1.0),
        frequency_penalty=_number(b.frequency_penalty, "frequency_penalty", 0.0, -2.0, 2.0),
        presence_penalty=_number(b.presence_penalty, "presence_penalty", 0.0, -2.0, 2.0),
        logit_bias=_logit_bias(b.logit_bias))
    include_usage = bool(b.stream_options and b.stream_options.include_usage)
    return b.model, request, bool(b.logprobs), bool(b.stream), include_usage


# what ftlens serve cannot do yet: refused, never silently ignored
UNSUPPORTED = {"tools": "function calling", "tool_choice": "function calling",
               "functions": "function calling", "function_call": "function calling",
               "parallel_tool_calls": "function calling", "audio": "audio output",
               "modalities": "audio output", "prediction": "predicted outputs",
               "reasoning_effort": "reasoning models", "verbosity": "reasoning models",
               "web_search_options": "web search", "prompt_cache_retention": "prompt caching"}


def _refuse_unsupported(b: ChatCompletionBody) -> None:
    for key, what in UNSUPPORTED.items():
        if getattr(b, key) is not None:
            raise ApiError(400, f"{key}: {what} is not supported by ftlens serve",
                           param=key, code="unsupported_parameter")
    fmt = b.response_format
    if fmt is not None and fmt.get("type") != "text":
        raise ApiError(400, "response_format: only {\"type\": \"text\"} is supported by "
                            "ftlens serve (no JSON mode or structured outputs)",
                       param="response_format", code="unsupported_parameter")
    if b.store:
        raise ApiError(400, "store: stored completions are not supported by ftlens serve",
                       param="store", code="unsupported_parameter")


def _logit_bias(value: dict[str, float] | None) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``{"<token id>": bias from -100 to 100}``."""
    if value is None:
        return ()
    if len(value) > 1024:
        raise ApiError(400, "logit_bias maps at most 1024 token ids", param="logit_bias")
    for key, bias in value.items():
        if not (key.isascii() and key.isdigit()) or not -100 <= bias <= 100:
            raise ApiError(400, f"logit_bias: {key!r} must be a token id mapped to a number "
                                "from -100 to 100", param="logit_bias")
    return tuple((int(k), float(v)) for k, v in value.items())


def _number(value: float | None, key: str, default: float, low: float, high: float) -> float:
    if value is None:
        return default
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be a number from {low:g} to {high:g}", param=key)
    return float(value)
