"""``kill -9`` of the whole service (its process group) while a job trains, then a restart:
the job resumes from its latest resume point and finishes ``succeeded`` with each step once,
its losses those of an uninterrupted run of the same seed."""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from tests.support.service import KEY, start_service_process, stop_service_process
from tests.support.toy_chat import TOY, chat

from ftlens.server.store import Store, job_problems

ROWS = [chat(f"{t} ({i})", y) for i in range(4) for t, y in TOY]  # 48 examples


def _job(client: OpenAI) -> str:
    data = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    file = client.files.create(file=("t.jsonl", io.BytesIO(data)), purpose="fine-tune")
    return client.fine_tuning.jobs.create(  # 48 steps, a resume point every 2
        model="tiny-random-llama", training_file=file.id, seed=7,
        hyperparameters={"n_epochs": 1, "batch_size": 1}).id


def _until(check: Any, seconds: float = 240) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return value


def _steps(store: Store, job_id: str) -> list[int]:
    return [e["data"]["step"] for e in reversed(store.list_events(job_id))
            if e["type"] == "metrics"]


def _losses(client: OpenAI, job: Any) -> list[tuple[int, float]]:
    text = base64.b64decode(client.files.content(job.result_files[0]).read()).decode()
    return [(int(r["step"]), float(r["train_loss"])) for r in csv.DictReader(text.splitlines())]


def _killed_mid_job(home: Path, steps: int) -> str:
    """A service that ran a job for ``steps`` steps, then was killed (SIGKILL to its whole
    process group); returns the job id."""
    store = Store(home)
    svc = start_service_process(home)
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        job_id = _job(client)
        _until(lambda: len(_steps(store, job_id)) >= steps)
    finally:
        stop_service_process(svc)
    return job_id


def test_a_job_cut_by_kill_9_resumes_after_the_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    job_id = _killed_mid_job(home, 7)  # past a few resume points
    cut = _steps(store, job_id)
    assert 7 <= len(cut) < 48 and store.get_job(job_id)["status"] == "running"  # type: ignore[index]
    svc = start_service_process(home)
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        job = _until(lambda: (j := client.fine_tuning.jobs.retrieve(job_id)).status in (
            "succeeded", "failed", "cancelled") and j)
        assert job.status == "succeeded", job.error
        assert job.error is None
        assert _steps(store, job_id) == list(range(1, 49))  # each step once, in order
        messages = [e["message"] for e in store.list_events(job_id)]
        assert any("resumes from step" in m for m in messages)
        whole_id = _job(client)  # the same job, never interrupted
        whole = _until(lambda: (j := client.fine_tuning.jobs.retrieve(whole_id)).status ==
                       "succeeded" and j)
        got, want = _losses(client, job), _losses(client, whole)
        assert [s for s, _ in got] == list(range(1, 49))
        assert [loss for _, loss in got] == pytest.approx([loss for _, loss in want],
                                                          rel=1e-4)
        assert job.trained_tokens == whole.trained_tokens
    finally:
        stop_service_process(svc)
    assert all(job_problems(j) == [] for j in store.list_jobs())


def test_a_job_whose_files_went_away_fails_with_that_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    job_id = _killed_mid_job(home, 5)
    store.file_path(store.get_job(job_id)["training_file"]).unlink()  # type: ignore[index]
    svc = start_service_process(home)
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        job = _until(lambda: (j := client.fine_tuning.jobs.retrieve(job_id)).status in (
            "succeeded", "failed") and j)
        assert job.status == "failed" and job.error is not None
        assert "no such file" in job.error.message
        assert str(home) not in job.error.message  # no server path reaches a client
    finally:
        stop_service_process(svc)
    assert all(job_problems(j) == [] for j in store.list_jobs())
