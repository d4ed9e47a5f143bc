"""The HTTP API: OpenAI's files and fine-tuning routes here, the models and chat completions
routes in :mod:`ftlens.server.chat`, the batches in :mod:`ftlens.server.batches`, over the
store, the job workers, the batch runner and the inference batcher. ``create_app`` builds it;
``ftlens serve`` runs it with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import Response

from ftlens.core.task_metrics import TaskMetricsError
from ftlens.errors import ConfigError, DataError, FtlensError
from ftlens.io.chat_dataset import data_kind, read_dataset
from ftlens.server import wire
from ftlens.server.batches import BatchRunner, add_batch_routes, check_upload
from ftlens.server.catalog import Catalog
from ftlens.server.chat import add_chat_routes
from ftlens.server.dashboard import PUBLIC_PATHS, Auditor, add_dashboard_routes
from ftlens.server.home import HomeLock, partial_path
from ftlens.server.http_errors import (
    ERROR_RESPONSES,
    api_error,
    error_response,
    install_handlers,
    request_id,
)
from ftlens.server.inference import Batcher, ModelPool
from ftlens.server.integrations import checked_integrations
from ftlens.server.remote import RemoteInference
from ftlens.server.store import Store, new_id, now
from ftlens.server.wire import ApiError, not_found
from ftlens.server.wire_types import JobBody, file_expiry
from ftlens.server.worker import Supervisor
from ftlens.train.config import TaskMetricsSettings
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.registry import Registry
from ftlens.train.task import check_files

log = logging.getLogger("ftlens.server")
PURPOSES = ("fine-tune", "fine-tune-results", "batch", "assistants", "vision", "user_data",
            "evals")
MIN_EXAMPLES = 10  # OpenAI's minimum for a training file
UNSUPPORTED_METHODS = {"reinforcement": "reinforcement fine-tuning"}
METHOD_DATA = {"supervised": "chat", "dpo": "preference"}  # what each method trains on


def create_app(home: Path, *, api_key: str | None = None, workers: int = 1,
               max_upload_bytes: int = 512 << 20, models: dict[str, str] | None = None,
               inference_url: str | None = None, inference_key: str | None = None,
               audit: Auditor | None = None) -> FastAPI:
    """The service over ``home``. ``workers=0`` runs no job workers (jobs stay queued).
    ``models``: this service's own registered models (name → path or hub id), beside those
    registered in the home. ``inference_url``: a vLLM server that answers the chat
    completions (:mod:`ftlens.server.remote`). ``audit``: how the dashboard audits a fine-tune
    file (the commands pass ``ftlens.steps.audit.file_findings``).

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
    batches = BatchRunner(store, pool, batcher, remote)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if workers:
            supervisor.start()
        batch_task = asyncio.create_task(batches.run())
        try:
            yield
        finally:
            batch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batch_task
            batcher.close()
            if workers:
                supervisor.stop()
            lock.release()

    app = FastAPI(title="ftlens", lifespan=lifespan, docs_url=None, redoc_url=None,
                  responses=ERROR_RESPONSES)
    app.state.store, app.state.supervisor = store, supervisor
    install_handlers(app)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                    ) -> Response:
        if api_key is not None and request.url.path not in PUBLIC_PATHS:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return error_response(ApiError(401, "Incorrect or missing API key: send "
                                            "'Authorization: Bearer <key>'",
                                       code="invalid_api_key"))
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes + (1 << 20):
            return error_response(ApiError(
                413, f"request body over the {max_upload_bytes >> 20} MiB upload limit",
                code="file_too_large"))
        ident = request.state.request_id = request_id()
        try:
            response = await call_next(request)
        except Exception as exc:  # answered here: re-raised past this point, the connection
            response = error_response(api_error(exc, ident))  # would be reset first
        response.headers["x-request-id"] = ident
        return response

    # files -------------------------------------------------------------------------------
    @app.post("/v1/files")
    async def upload(request: Request, file: Annotated[UploadFile, File()],
                     purpose: Annotated[str, Form()],
                     # in the schema; file_expiry reads them (and any other expires_after[…])
                     anchor: Annotated[str | None, Form(alias="expires_after[anchor]")] = None,
                     seconds: Annotated[str | None, Form(alias="expires_after[seconds]")] = None,
                     expires_after: Annotated[str | None, Form()] = None) -> dict[str, Any]:
        if purpose not in PURPOSES:
            raise ApiError(400, f"purpose must be one of {', '.join(PURPOSES)}",
                           param="purpose")
        expiry = file_expiry(await request.form())  # the form FastAPI already read
        file_id = new_id("file")
        path = store.file_path(file_id)
        partial = partial_path(path)  # a kill midway leaves only this, swept at start
        try:
            size = await _save_upload(file, partial, max_upload_bytes)
            name = Path(file.filename or "upload.jsonl").name
            examples = None
            if purpose == "fine-tune":
                examples = await _count_examples(partial, name)
            elif purpose == "batch":  # checked as the batch runner checks each line
                await asyncio.to_thread(lambda: check_upload(partial.read_bytes(), name))
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return wire.file_object(store.add_file(file_id, name, purpose, size, examples,
                                               expires_after=expiry))

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

    @app.get("/v1/files/{file_id}/content", response_class=Response, responses={200: {
        "description": "The file's bytes",
        "content": {"application/octet-stream": {"schema": {"type": "string",
                                                             "format": "binary"}}}}})
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
    async def create_job(typed: JobBody) -> dict[str, Any]:
        body = typed.model_dump(exclude_unset=True)
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

    add_chat_routes(app, store, catalog, pool, batcher, remote)
    add_batch_routes(app, store, batches)
    add_dashboard_routes(app, store, audit)

    return app


async def _count_examples(path: Path, name: str) -> int:
    """How many valid examples (chat examples or preference pairs, not both) an uploaded
    fine-tune file holds; a 400 naming the line of the first bad one (by the file's own name,
    never the server's path), or what is wrong with the whole file: not JSON lines, empty, or
    starting with a byte-order mark (which the audit fails and ``ftlens train`` skips)."""
    try:
        return len(await asyncio.to_thread(lambda: read_dataset(path, bom_ok=False)))
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


# OpenAI's legacy fine-tunes API asked for task metrics with these fields; ftlens takes them
# on job creation (the openai SDK sends them with ``extra_body``)
TASK_FIELDS = {"positive": "classification_positive_class",
               "n_classes": "classification_n_classes", "betas": "classification_betas",
               "valid": "validation_file"}


def _task_metrics(store: Store, body: dict[str, Any], kind: str,
                  files: dict[str, str | None]) -> dict[str, Any] | None:
    """The task metrics a job asks for, checked against its files: None when it asks for
    none, else the resolved labels, positive class and F-beta values."""
    on = body.get("compute_classification_metrics")
    given = [f for f in TASK_FIELDS.values() if f != "validation_file" and body.get(f) is not None]
    if on is None or on is False:
        if given:
            raise ApiError(400, f"{given[0]} applies to task metrics: set "
                                "compute_classification_metrics to true", param=given[0])
        return None
    if kind != "supervised":
        raise ApiError(400, "task metrics score a supervised classifier; a dpo job has none",
                       param="compute_classification_metrics")
    positive, n, betas = (body.get(TASK_FIELDS[k]) for k in ("positive", "n_classes", "betas"))
    if n is not None and n < 2:  # the types are checked (wire_types.JobBody)
        raise ApiError(400, "classification_n_classes must be an integer of at least 2",
                       param=TASK_FIELDS["n_classes"])
    if betas is not None and (not 1 <= len(betas) <= 10 or any(not b > 0 for b in betas)):
        raise ApiError(400, "classification_betas must be a list of 1 to 10 positive numbers",
                       param=TASK_FIELDS["betas"])
    settings = TaskMetricsSettings(positive, n, tuple(betas or (1.0,)))
    valid = files["validation_file"]
    try:
        spec = check_files(settings, store.file_path(str(files["training_file"])),
                           store.file_path(valid) if valid else None)
    except TaskMetricsError as exc:
        raise ApiError(400, exc.message + (f"; {exc.hint}" if exc.hint else ""),
                       param=TASK_FIELDS[exc.option]) from None
    except FtlensError as exc:
        raise ApiError(400, store.public_text(exc.render()), param="training_file",
                       code="invalid_training_file") from None
    return {"labels": list(spec.labels), "positive": spec.positive, "n_classes": n,
            "betas": list(spec.betas)}


def _method(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A job's method type (``supervised`` or ``dpo``) and its hyperparameters: given in
    ``method.<type>.hyperparameters`` as OpenAI has them now, or at the top level (the
    older form, supervised only)."""
    hyper = body.get("hyperparameters")
    method = body.get("method")
    kind = "supervised"
    if method is not None:  # its shape is checked (wire_types.Method)
        kind = method.get("type", "supervised")
        if kind not in METHOD_DATA:
            what = UNSUPPORTED_METHODS.get(kind, "an unknown method")
            raise ApiError(400, f"method {kind!r} ({what}) is not supported by ftlens serve; "
                                "use 'supervised' or 'dpo'", param="method.type",
                           code="method_not_supported")
        given = (method.get(kind) or {}).get("hyperparameters")
        if given is not None:
            hyper = given
    try:
        Hyperparameters.from_dict(hyper, kind)
    except ConfigError as exc:
        raise ApiError(400, exc.message, param="hyperparameters") from None
    return kind, hyper


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
    model = body["model"]
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
    kind, hyper = _method(body)
    for key, file_id in files.items():
        found = data_kind(store.file_path(file_id)) if file_id else None
        if found is not None and found != METHOD_DATA[kind]:
            what = "preference pairs (DPO data)" if found == "preference" else "chat examples"
            raise ApiError(400, f"{key} {file_id} holds {what}; a {kind} job trains on "
                                + ("preference pairs" if kind == "dpo" else "chat examples"),
                           param=key, code="invalid_training_file")
    task = _task_metrics(store, body, kind, files)
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64
                               or not re.fullmatch(r"[A-Za-z0-9_.-]*", suffix)):
        raise ApiError(400, "suffix must be at most 64 letters, digits, '-', '_' or '.'",
                       param="suffix")
    seed = body.get("seed")
    metadata = wire.checked_metadata(body.get("metadata"))
    return {"id": new_id("ftjob"), "created_at": now(), "model": model,
            "training_file": files["training_file"], "validation_file": files["validation_file"],
            "hyperparameters": dict(hyper or {}), "method": kind, "task_metrics": task,
            "suffix": suffix,
            "seed": seed if seed is not None else secrets.randbelow(2**31),
            "metadata": metadata, "status": "validating_files", "trained_tokens": None,
            "integrations": checked_integrations(body.get("integrations")),
            "result_files": []}
