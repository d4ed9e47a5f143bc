"""The HTTP API: OpenAI's files, fine-tuning, models and chat completions routes, over the
store, the job workers and the inference batcher. ``create_app`` builds it; ``ftlens serve``
runs it with uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from ftlens.errors import ConfigError, DataError
from ftlens.io.chat_dataset import read_conversations
from ftlens.server import wire
from ftlens.server.catalog import Catalog
from ftlens.server.home import HomeLock, partial_path
from ftlens.server.inference import Batcher, ModelPool
from ftlens.server.remote import RemoteInference
from ftlens.server.store import Store, new_id, now
from ftlens.server.wire import ApiError, not_found
from ftlens.server.worker import Supervisor
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.infer import MAX_TOP_LOGPROBS, Completion, GenerationRequest
from ftlens.train.registry import Registry

log = logging.getLogger("ftlens.server")
PURPOSES = ("fine-tune", "fine-tune-results", "batch", "assistants", "vision", "user_data",
            "evals")
MIN_EXAMPLES = 10  # OpenAI's minimum for a training file
UNSUPPORTED_METHODS = {"reinforcement": "reinforcement fine-tuning",
                       "dpo": "preference fine-tuning, not built yet"}


def create_app(home: Path, *, api_key: str | None = None, workers: int = 1,
               max_upload_bytes: int = 512 << 20, models: dict[str, str] | None = None,
               inference_url: str | None = None, inference_key: str | None = None
               ) -> FastAPI:
    """The service over ``home``. ``workers=0`` runs no job workers (jobs stay queued).
    ``models``: this service's own registered models (name → path or hub id), beside those
    registered in the home. ``inference_url``: a vLLM server that answers the chat
    completions (:mod:`ftlens.server.remote`).

    The app owns ``home`` from here until its lifespan ends: a second service on the same home
    raises :class:`~ftlens.errors.ConfigError` before it changes anything."""
    lock = HomeLock(home)
    lock.acquire()
    store = Store(home)
    swept = store.sweep_files()
    if swept:
        log.warning("removed %d file(s) a killed upload or job left half-written: %s",
                    len(swept), ", ".join(swept[:5]))
    catalog = Catalog(store, Registry(home, models))
    pool = ModelPool(catalog)
    batcher = Batcher(pool)
    remote = RemoteInference(inference_url, store, inference_key) if inference_url else None
    supervisor = Supervisor(store, workers, models)
    supervisor.owner = store.take_ownership()  # with or without workers: older ones stop here

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if workers:
            supervisor.start()
        try:
            yield
        finally:
            batcher.close()
            if workers:
                supervisor.stop()
            lock.release()

    app = FastAPI(title="ftlens", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store, app.state.supervisor = store, supervisor
    _errors(app, store)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                    ) -> Response:
        if api_key is not None:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return _error(ApiError(401, "Incorrect or missing API key: send "
                                            "'Authorization: Bearer <key>'",
                                       code="invalid_api_key"))
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes + (1 << 20):
            return _error(ApiError(413, f"request body over the {max_upload_bytes >> 20} MiB "
                                        "upload limit", code="file_too_large"))
        try:
            return await call_next(request)
        except Exception as exc:  # answered here: re-raised past this point, the connection
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return _error(_api_error(exc, store))  # would be reset before the client reads

    # files -------------------------------------------------------------------------------
    @app.post("/v1/files")
    async def upload(file: Annotated[UploadFile, File()], purpose: Annotated[str, Form()]
                     ) -> dict[str, Any]:
        if purpose not in PURPOSES:
            raise ApiError(400, f"purpose must be one of {', '.join(PURPOSES)}",
                           param="purpose")
        file_id = new_id("file")
        path = store.file_path(file_id)
        partial = partial_path(path)  # a kill midway leaves only this, swept at start
        try:
            size = await _save_upload(file, partial, max_upload_bytes)
            name = Path(file.filename or "upload.jsonl").name
            examples = None
            if purpose == "fine-tune":
                examples = await _count_examples(partial, name)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return wire.file_object(store.add_file(file_id, name, purpose, size, examples))

    @app.get("/v1/files")
    def list_files(purpose: str | None = None, after: str | None = None, limit: int = 100,
                   order: str = "desc") -> dict[str, Any]:
        rows = store.list_files(purpose)
        if order == "asc":
            rows.reverse()
        return wire.page(rows, wire.file_object, after, min(limit, 100))

    @app.get("/v1/files/{file_id}")
    def get_file(file_id: str) -> dict[str, Any]:
        return wire.file_object(_file(store, file_id))

    @app.get("/v1/files/{file_id}/content")
    def file_content(file_id: str) -> Response:
        _file(store, file_id)
        return Response(store.file_path(file_id).read_bytes(),
                        media_type="application/octet-stream")

    @app.delete("/v1/files/{file_id}")
    def delete_file(file_id: str) -> dict[str, Any]:
        _file(store, file_id)
        store.delete_file(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    # fine-tuning jobs --------------------------------------------------------------------
    @app.post("/v1/fine_tuning/jobs")
    async def create_job(request: Request) -> dict[str, Any]:
        body = await _json(request)
        # checks that read files and the model's template: off the event loop
        job = await asyncio.to_thread(_new_job, store, body, catalog)
        store.add_job(job)
        store.add_event(job["id"], f"Validating training file: {job['training_file']}")
        created = wire.job_object(_job(store, job["id"]))
        store.queue_job(job["id"])
        store.add_event(job["id"], "Files validated, moving job to queued state")
        return created

    @app.get("/v1/fine_tuning/jobs")
    def list_jobs(request: Request, after: str | None = None, limit: int = 20
                  ) -> dict[str, Any]:
        wanted = {m.group(1): v for k, v in request.query_params.items()
                  if (m := re.fullmatch(r"metadata\[(.+)\]", k))}
        rows = [r for r in store.list_jobs()
                if all((r["metadata"] or {}).get(k) == v for k, v in wanted.items())]
        return wire.page(rows, wire.job_object, after, limit)

    @app.get("/v1/fine_tuning/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return wire.job_object(_job(store, job_id))

    @app.post("/v1/fine_tuning/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict[str, Any]:
        job = _job(store, job_id)
        if store.cancel_idle_job(job_id):
            store.add_event(job_id, "The job has been cancelled")
        elif not store.set_control(job_id, "cancel", when=("running",)):
            raise ApiError(400, f"the job is {job['status']} and cannot be cancelled",
                           param="fine_tuning_job_id")
        return wire.job_object(_job(store, job_id))

    @app.post("/v1/fine_tuning/jobs/{job_id}/pause")
    def pause_job(job_id: str) -> dict[str, Any]:
        job = _job(store, job_id)
        if not store.set_control(job_id, "pause", when=("running",)):
            raise ApiError(400, f"only a running job can be paused; this one is "
                                f"{job['status']}", param="fine_tuning_job_id")
        store.add_event(job_id, "Pausing the job at the next step")
        return wire.job_object(_job(store, job_id))

    @app.post("/v1/fine_tuning/jobs/{job_id}/resume")
    def resume_job(job_id: str) -> dict[str, Any]:
        job = _job(store, job_id)
        if job["status"] != "paused" or not store.queue_job(job_id):
            raise ApiError(400, f"only a paused job can be resumed; this one is "
                                f"{job['status']}", param="fine_tuning_job_id")
        store.add_event(job_id, "The job has been resumed and queued")
        return wire.job_object(_job(store, job_id))

    @app.get("/v1/fine_tuning/jobs/{job_id}/events")
    def list_events(job_id: str, after: str | None = None, limit: int = 20
                    ) -> dict[str, Any]:
        _job(store, job_id)
        return wire.page(store.list_events(job_id), wire.event_object, after, limit)

    @app.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
    def list_checkpoints(job_id: str, after: str | None = None, limit: int = 10
                         ) -> dict[str, Any]:
        _job(store, job_id)
        return wire.page(store.list_checkpoints(job_id), wire.checkpoint_object, after, limit)

    # models and chat ---------------------------------------------------------------------
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
                raise ApiError(403, f"{model} is not a fine-tuned model: only those can be "
                                    "deleted", param="model", code="model_not_deletable")
            raise not_found("model", model, param="model")
        pool.forget(model)
        if remote is not None:
            await remote.forget(model)
        return {"id": model, "object": "model", "deleted": True}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> dict[str, Any] | Response:
        body = await _json(request)
        model, req, logprobs, stream, include_usage = _chat_request(body)
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

    return app


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
            yield sse(_api_error(exc, store).body())  # raises it as APIError)
            return
        for item in end:
            yield sse(item)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _errors(app: FastAPI, store: Store) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path")]
        param = ".".join(loc) or None
        return _error(ApiError(400, f"{param or 'request'}: {first.get('msg', 'invalid')}",
                               param=param))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(ApiError(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        return _error(_api_error(exc, store))


def _api_error(exc: Exception, store: Store) -> ApiError:
    """``exc`` as answered to the client: itself if it is an ApiError, else a server error
    (without the server's paths)."""
    if isinstance(exc, ApiError):
        return exc
    return ApiError(500, store.public_text(f"internal error: {type(exc).__name__}: {exc}"),
                    type="server_error")


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


async def _count_examples(path: Path, name: str) -> int:
    """How many valid chat examples an uploaded fine-tune file holds; a 400 naming the line of
    the first bad one (by the file's own name, never the server's path)."""
    try:
        return len(await asyncio.to_thread(read_conversations, path))
    except DataError as exc:
        where = f"{name}, line {exc.line}: " if exc.line else f"{name}: "
        hint = (exc.hint or "").replace(str(path), name)
        raise ApiError(400, where + exc.message + (f" (how to fix: {hint})" if hint else ""),
                       param="file", code="invalid_file") from None


async def _save_upload(file: UploadFile, path: Path, limit: int) -> int:
    size = 0
    with path.open("wb") as out:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the file is over the {limit >> 20} MiB upload limit",
                               param="file", code="file_too_large")
            out.write(chunk)
    return size


def _file(store: Store, file_id: str) -> dict[str, Any]:
    row = store.get_file(file_id)
    if row is None:
        raise not_found("file", file_id, param="file_id")
    return row


def _job(store: Store, job_id: str) -> dict[str, Any]:
    row = store.get_job(job_id)
    if row is None:
        raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
    return row


def _new_job(store: Store, body: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    model = body.get("model")
    if not isinstance(model, str):
        raise ApiError(400, "model is required", param="model")
    problem = catalog.base_problem(model)
    if problem is not None:
        problem = store.public_text(problem)  # no operator path reaches a client
        raise ApiError(400, f"model {model!r} cannot be fine-tuned here: {problem}; use one "
                            f"of {', '.join(catalog.base_names())}", param="model",
                       code="model_not_available")
    files: dict[str, str | None] = {}
    for key in ("training_file", "validation_file"):
        value = body.get(key)
        if value is None and key == "validation_file":
            files[key] = None
            continue
        row = store.get_file(value) if isinstance(value, str) else None
        if row is None:
            raise ApiError(400, f"{key}: no such file {value!r}", param=key)
        if row["purpose"] != "fine-tune":
            raise ApiError(400, f"{key} {value} has purpose {row['purpose']!r}, not "
                                "'fine-tune'", param=key)
        if key == "training_file" and (row["examples"] or 0) < MIN_EXAMPLES:
            raise ApiError(400, f"training file {value} has {row['examples']} examples; at "
                                f"least {MIN_EXAMPLES} are needed", param=key,
                           code="invalid_training_file")
        files[key] = value
    problem = catalog.tool_problem(model, [(f, store.file_path(f)) for f in files.values()
                                           if f is not None])
    if problem is not None:
        raise ApiError(400, problem, param="training_file", code="invalid_training_file")
    hyper = body.get("hyperparameters")
    method = body.get("method")
    if isinstance(method, dict):
        kind = method.get("type", "supervised")
        if kind != "supervised":
            what = UNSUPPORTED_METHODS.get(kind, "an unknown method")
            raise ApiError(400, f"method {kind!r} ({what}) is not supported by ftlens serve; "
                                "use 'supervised'", param="method.type",
                           code="method_not_supported")
        hyper = (method.get("supervised") or {}).get("hyperparameters", hyper)
    try:
        Hyperparameters.from_dict(hyper)
    except ConfigError as exc:
        raise ApiError(400, exc.message, param="hyperparameters") from None
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64
                               or not re.fullmatch(r"[A-Za-z0-9_.-]*", suffix)):
        raise ApiError(400, "suffix must be at most 64 letters, digits, '-', '_' or '.'",
                       param="suffix")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ApiError(400, "seed must be an integer", param="seed")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise ApiError(400, "metadata must map at most 16 string keys to string values",
                       param="metadata")
    return {"id": new_id("ftjob"), "created_at": now(), "model": model,
            "training_file": files["training_file"], "validation_file": files["validation_file"],
            "hyperparameters": dict(hyper or {}), "suffix": suffix,
            "seed": seed if seed is not None else secrets.randbelow(2**31),
            "metadata": metadata, "status": "validating_files", "trained_tokens": None,
            "result_files": []}


def _chat_request(body: dict[str, Any]) -> tuple[str, GenerationRequest, bool, bool, bool]:
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
    request = GenerationRequest(plain, max_tokens=max_tokens, temperature=temperature,
                                top_logprobs=top, stop=stops, seed=seed)
    return model, request, logprobs, bool(body.get("stream")), bool(
        options.get("include_usage"))


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not (
            low <= value <= high):
        raise ApiError(400, f"{key} must be a number from {low:g} to {high:g}", param=key)
    return float(value)

