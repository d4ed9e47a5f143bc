"""The dashboard at ``/``: one page (bundled HTML, CSS and JavaScript, no CDN) over the same
``/v1`` API the SDK uses, polled every two seconds: jobs, one job (hyperparameters, files,
events, live loss and accuracy curves with ftlens's curve diagnosis, checkpoints, the result
CSV), files and batches; create, cancel, pause and resume jobs.

The page itself holds no data, so it is served without the key; with ``--api-key`` it asks
for the key and sends it as the bearer header on every API call (never a cookie, so no other
site can act for the user). Every user string is put in the page as text, never as markup.
``/v1/dashboard/jobs/{id}/diagnosis`` (an ftlens extension) diagnoses the metrics that have
arrived, with the words of ``ftlens curves``; ``/v1/dashboard/files/{id}/audit`` gives a
fine-tune file's audit, with the words of ``ftlens audit``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from ftlens.errors import DataError, FtlensError
from ftlens.server.store import Store
from ftlens.server.wire import event_object, not_found

ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
PUBLIC_PATHS = ("/", *(f"/dashboard/{name}" for name in ASSETS))  # no key needed: no data
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                      "style-src 'self'; script-src 'self'",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def _asset(name: str) -> bytes:
    return files("ftlens.server").joinpath("dashboard", name).read_bytes()


Auditor = Callable[[Path], dict[str, Any]]  # a fine-tune file's audit: verdict, findings


def add_dashboard_routes(app: FastAPI, store: Store, audit: Auditor | None) -> None:
    audits: dict[str, dict[str, Any]] = {}  # files never change: each is audited once
    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return Response(_asset("index.html"), media_type="text/html", headers=HEADERS)

    @app.get("/dashboard/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:  # only the bundled files, never a path from the client
            raise not_found("dashboard file", name)
        return Response(_asset(name), media_type=ASSETS[name], headers=HEADERS)

    @app.get("/v1/dashboard/files/{file_id}/audit")
    async def file_audit(file_id: str) -> dict[str, Any]:
        row = store.get_file(file_id)
        if row is None:
            raise not_found("file", file_id, param="file_id")
        known = {"examples": row["examples"]}  # valid examples, counted at upload
        if row["purpose"] != "fine-tune" or audit is None:
            return {**known, "verdict": None, "findings": [], "reason": (
                "only fine-tune files are audited" if audit is not None
                else "this service was started without the audit")}
        if file_id not in audits:
            try:
                audits[file_id] = await asyncio.to_thread(audit, store.file_path(file_id))
            except FtlensError as exc:
                return {**known, "verdict": None, "findings": [],
                        "reason": store.public_text(exc.message)}
        return {**known, **audits[file_id]}

    @app.get("/v1/dashboard/jobs/{job_id}/diagnosis")
    def diagnosis(job_id: str) -> dict[str, Any]:
        if store.get_job(job_id) is None:
            raise not_found("fine-tuning job", job_id, param="fine_tuning_job_id")
        return diagnose_events([event_object(e) for e in store.list_events(job_id)])


def diagnose_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The curve diagnosis of a job's metrics events so far (``findings`` empty, with a
    ``reason``, while there is too little to judge)."""
    from ftlens.core.curves import diagnose
    from ftlens.core.curves_json import diagnosis_to_dict
    from ftlens.io.training_logs_formats import events_run
    from ftlens.io.training_logs_records import Records

    try:
        run = events_run(Records(Path("events"), events))
        return diagnosis_to_dict(diagnose(run))
    except (DataError, ValueError) as exc:
        return {"verdict": None, "findings": [], "reason": str(exc)}
