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
from ftlens.server.http_errors import api_error, read_json
from ftlens.server.inference import Batcher, ModelPool
from ftlens.server.remote import RemoteInference
from ftlens.server.store import Store
from ftlens.server.wire import ApiError, not_found
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

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> dict[str, Any] | Response:
        body = await read_json(request)
        model, req, logprobs, stream, include_usage = chat_request(body)
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
                             include_usage, store)


async def _stream(batcher: Batcher, model: str, req: GenerationRequest,
                  chunks: wire.ChunkStream, include_usage: bool, store: Store
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
            yield sse(api_error(exc, store).body())  # raises it as APIError)
            return
        for item in end:
            yield sse(item)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def chat_request(body: dict[str, Any]) -> tuple[str, GenerationRequest, bool, bool, bool]:
    model = body.get("model")
    if not isinstance(model, str):
        raise ApiError(400, "model is required", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list", param="messages")
    plain = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise ApiError(400, f"messages[{i}] must be an object with a role",
                           param=f"messages[{i}]")
        content = msg.get("content")
        if isinstance(content, list):  # text parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{i}].content must be a string",
                           param=f"messages[{i}].content")
        plain.append({"role": msg["role"], "content": content})
    if body.get("n", 1) != 1:
        raise ApiError(400, "only n=1 is supported", param="n")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = int(_number({"max_tokens": limit}, "max_tokens", 256, 1, 8192))
    logprobs = bool(body.get("logprobs") or False)
    top = int(_number(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS))
    if top and not logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "stop must be a string or up to 4 strings", param="stop")
    seed = body.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ApiError(400, "seed must be an integer", param="seed")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object like {\"include_usage\": true}",
                       param="stream_options")
    _refuse_unsupported(body)
    request = GenerationRequest(
        plain, max_tokens=max_tokens, temperature=temperature, top_logprobs=top, stop=stops,
        seed=seed, top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        frequency_penalty=_number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        presence_penalty=_number(body, "presence_penalty", 0.0, -2.0, 2.0),
        logit_bias=_logit_bias(body.get("logit_bias")))
    return model, request, logprobs, bool(body.get("stream")), bool(
        options.get("include_usage"))


# what ftlens serve cannot do yet: refused, never silently ignored
UNSUPPORTED = {"tools": "function calling", "tool_choice": "function calling",
               "functions": "function calling", "function_call": "function calling",
               "parallel_tool_calls": "function calling", "audio": "audio output",
               "modalities": "audio output", "prediction": "predicted outputs"}


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for key, what in UNSUPPORTED.items():
        if body.get(key) is not None:
            raise ApiError(400, f"{key}: {what} is not supported by ftlens serve",
                           param=key, code="unsupported_parameter")
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise ApiError(400, "response_format: only {\"type\": \"text\"} is supported by "
                            "ftlens serve (no JSON mode or structured outputs)",
                       param="response_format", code="unsupported_parameter")


def _logit_bias(value: Any) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``{"<token id>": bias from -100 to 100}``."""
    if value is None:
        return ()
    if not isinstance(value, dict) or len(value) > 1024:
        raise ApiError(400, "logit_bias must map token ids to numbers (at most 1024)",
                       param="logit_bias")
    out = []
    for key, bias in value.items():
        if not (isinstance(key, str) and key.isdigit()) or isinstance(bias, bool) or not (
                isinstance(bias, int | float) and -100 <= bias <= 100):
            raise ApiError(400, f"logit_bias: {key!r} must be a token id mapped to a number "
                                "from -100 to 100", param="logit_bias")
        out.append((int(key), float(bias)))
    return tuple(out)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not (
            low <= value <= high):
        raise ApiError(400, f"{key} must be a number from {low:g} to {high:g}", param=key)
    return float(value)

