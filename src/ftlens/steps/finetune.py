"""Fine-tuning jobs through the OpenAI API — on OpenAI itself or on ``ftlens serve`` — with the
official SDK: choose the endpoint, upload, create, follow the events, fetch the results.
``ftlens train`` and ``ftlens curves --follow`` are thin views over this."""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlens.client.endpoint import api_call, check_base_url
from ftlens.errors import ConfigError, MissingDependencyError
from ftlens.io.atomic import write_atomic

LOCAL_URL = "http://127.0.0.1:8000/v1"
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Connection:
    """A fine-tuning API to run jobs on (the sync SDK client)."""

    client: Any  # openai.OpenAI
    url: str
    embedded: bool  # a service started by this process, gone when it exits


@contextmanager
def connect(base_url: str | None = None, *, use_openai: bool = False,
            api_key_env: str = "OPENAI_API_KEY", embedded_ok: bool = True,
            home: Path | None = None, prefer_running: bool = True) -> Iterator[Connection]:
    """OpenAI (``use_openai``), the service at ``base_url``, or else a running local
    ``ftlens serve`` at :data:`LOCAL_URL` (unless not ``prefer_running``) or one started in
    this process on ``home`` (default: the ftlens home)."""
    try:
        import openai
    except ImportError:
        raise MissingDependencyError("openai", extra="serve") from None
    if use_openai and base_url:
        raise ConfigError("pass either --openai or --base-url, not both")
    if use_openai:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--openai needs an API key in ${api_key_env}",
                              hint=f"export {api_key_env}=sk-...")
        yield Connection(openai.OpenAI(api_key=key, max_retries=3), "https://api.openai.com/v1",
                       False)
        return
    if base_url:
        check_base_url(base_url)
    key = os.environ.get("FTLENS_API_KEY") or os.environ.get(api_key_env) or "ftlens"
    if base_url or (prefer_running and _reachable(LOCAL_URL, key)) or not embedded_ok:
        url = base_url or LOCAL_URL
        yield Connection(openai.OpenAI(base_url=url, api_key=key, max_retries=3), url, False)
        return
    from ftlens.server.embedded import embedded_service
    from ftlens.steps.audit import file_findings
    from ftlens.train.models import ftlens_home

    with ExitStack() as stack:
        url = stack.enter_context(embedded_service(home or ftlens_home(), audit=file_findings))
        yield Connection(openai.OpenAI(base_url=url, api_key="ftlens", max_retries=3), url, True)


def _reachable(url: str, key: str) -> bool:
    import openai

    try:
        openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=1.0).models.list()
    except openai.APIError:
        return False
    return True


def upload(endpoint: Connection, path: str | Path) -> str:
    from ftlens.io.chat_jsonl import open_checked

    p = open_checked(path)
    with p.open("rb") as f:
        created = api_call(f"uploading {p}", lambda: endpoint.client.files.create(
            file=(p.name, f), purpose="fine-tune"))
    return str(created.id)


def task_fields(positive: str | None = None, betas: Sequence[float] = ()) -> dict[str, Any]:
    """The job fields that ask ftlens for task metrics while training: those of OpenAI's
    legacy fine-tunes API, sent with the SDK's ``extra_body``."""
    fields: dict[str, Any] = {"compute_classification_metrics": True}
    if positive is not None:
        fields["classification_positive_class"] = positive
    if betas:
        fields["classification_betas"] = list(betas)
    return fields


def create_job(endpoint: Connection, *, model: str, training_file: str,
               validation_file: str | None, hyperparameters: dict[str, Any],
               suffix: str | None = None, seed: int | None = None,
               method: str = "supervised", extra: dict[str, Any] | None = None) -> Any:
    """``method``: ``supervised`` or ``dpo`` (OpenAI's method types); ``extra``: fields the
    SDK does not know (the legacy task-metric fields), sent as they are."""
    args: dict[str, Any] = {"model": model, "training_file": training_file,
                            "method": {"type": method,
                                       method: {"hyperparameters": hyperparameters}}}
    for key, value in (("validation_file", validation_file), ("suffix", suffix),
                       ("seed", seed)):
        if value is not None:
            args[key] = value
    if extra:
        args["extra_body"] = extra
    return api_call("creating the fine-tuning job",
                    lambda: endpoint.client.fine_tuning.jobs.create(**args))


def follow(endpoint: Connection, job_id: str, on_event: Callable[[Any], None],
           poll_s: float = 1.0) -> Any:
    """Call ``on_event`` with every event of the job, oldest first, until the job ends;
    returns the final job."""
    jobs = endpoint.client.fine_tuning.jobs
    seen: set[str] = set()
    while True:
        job = api_call("reading the job", lambda: jobs.retrieve(job_id))
        for event in api_call("reading the job's events",
                              lambda: _new_events(jobs, job_id, seen)):
            seen.add(event.id)
            on_event(event)
        if job.status in TERMINAL:
            return job
        time.sleep(poll_s)


def _new_events(jobs: Any, job_id: str, seen: set[str]) -> list[Any]:
    """Events not seen yet, oldest first (the API lists newest first; the SDK pages)."""
    fresh = []
    for event in jobs.list_events(job_id, limit=100):
        if event.id in seen:
            break
        fresh.append(event)
    return fresh[::-1]


def save_results(endpoint: Connection, job: Any, out_dir: Path) -> tuple[Path | None, Path]:
    """Write the job's result CSV (decoded from base64) and all its events as JSONL."""
    out_dir.mkdir(parents=True, exist_ok=True)
    events = list(api_call("reading the job's events", lambda: list(
        endpoint.client.fine_tuning.jobs.list_events(job.id, limit=100))))
    events_path = out_dir / f"{job.id}.events.jsonl"
    write_atomic(events_path, "".join(json.dumps(e.model_dump()) + "\n"
                                      for e in reversed(events)).encode())
    if not job.result_files:
        return None, events_path
    raw = api_call("downloading the result file",
                   lambda: endpoint.client.files.content(job.result_files[0]).read())
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        data = raw
    csv_path = out_dir / f"{job.id}.results.csv"
    write_atomic(csv_path, data)
    return csv_path, events_path
