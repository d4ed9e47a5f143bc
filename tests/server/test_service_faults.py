"""Security by default and surviving faults: the API key on every route, file ids that cannot
escape the files directory, no key in anything written, a killed worker, a restarted service."""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import openai
import pytest
from fastapi.routing import APIRoute
from openai import OpenAI
from tests.server.test_sdk_lifecycle import TRAIN
from tests.support.service import KEY, Service, serve

from ftlens.server import worker
from ftlens.server.app import create_app
from ftlens.server.dashboard import PUBLIC_PATHS
from ftlens.server.store import Store
from ftlens.server.worker import Supervisor


def test_every_route_needs_the_key(service: Service) -> None:
    """Every route but the dashboard's page and its bundled assets, which hold no data."""
    app = create_app(service.home / "routes-only", workers=0)  # the same routes
    routes = [(m, r.path) for r in app.routes if isinstance(r, APIRoute) for m in r.methods]
    assert len(routes) >= 15
    with httpx.Client(base_url=service.url.removesuffix("/v1")) as http:
        for path in PUBLIC_PATHS:
            reply = http.get(path)
            assert reply.status_code == 200 and "ftjob-" not in reply.text
        for method, path in [*routes, ("GET", "/v1/nowhere"), ("GET", "/dashboard/x.js")]:
            if path in PUBLIC_PATHS:
                continue
            url = path.replace("{file_id}", "file-" + "0" * 24).replace(
                "{job_id}", "ftjob-" + "0" * 24).replace("{model:path}", "x").replace(
                "{batch_id}", "batch_" + "0" * 24)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
                reply = http.request(method, url, headers=headers)
                assert reply.status_code == 401, (method, url, headers)
                assert reply.json()["error"]["code"] == "invalid_api_key"
        ok = http.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200


def test_file_ids_cannot_escape_the_files_directory(service: Service) -> None:
    secret = service.home / "outside.txt"
    secret.write_text("not yours")
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=service.url) as http:
        for bad in ("..%2Foutside.txt", "..%2F..%2Fetc%2Fpasswd", "file-..%2F..%2Foutside.txt",
                    "%2Fetc%2Fpasswd", "file-" + "0" * 24):
            for suffix in ("", "/content"):
                reply = http.get(f"/files/{bad}{suffix}", headers=auth)
                assert reply.status_code == 404, (bad, suffix)
                assert "not yours" not in reply.text
            assert http.delete(f"/files/{bad}", headers=auth).status_code == 404
        up = http.post("/files", headers=auth, data={"purpose": "fine-tune"},
                       files={"file": ("../../escape.jsonl", TRAIN)})
        assert up.status_code == 200 and up.json()["filename"] == "escape.jsonl"
    assert not (service.home.parent / "escape.jsonl").exists()
    stored = [p.name for p in (service.home / "files").iterdir()]
    assert up.json()["id"] in stored and all(n.startswith("file-") for n in stored)


def test_uploads_over_the_limit_are_refused(tmp_path: Path) -> None:
    with contextlib.contextmanager(serve)(tmp_path, workers=0,
                                          max_upload_bytes=1000) as svc:
        client = OpenAI(base_url=svc.url, api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            client.files.create(file=("big.jsonl", io.BytesIO(TRAIN * 3)), purpose="fine-tune")
        assert err.value.status_code == 413
    assert list((tmp_path / "files").iterdir()) == []


def test_the_key_never_reaches_disk_or_logs(service: Service,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = OpenAI(base_url=service.url, api_key=KEY, max_retries=0)
    client.files.create(file=("k.jsonl", io.BytesIO(TRAIN)), purpose="fine-tune")
    with pytest.raises(openai.AuthenticationError) as err:
        OpenAI(base_url=service.url, api_key=KEY + "x", max_retries=0).models.list()
    assert KEY not in str(err.value.body)
    assert KEY not in caplog.text
    for path in service.home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def _wait(store: Store, job_id: str, status: str, seconds: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while (job := store.get_job(job_id)) is None or job["status"] != status:
        assert time.monotonic() < deadline, (job or {}).get("status")
        time.sleep(0.2)
    return job


def test_a_killed_worker_fails_its_job_and_is_replaced(tmp_path: Path) -> None:
    with contextlib.contextmanager(serve)(tmp_path, workers=1) as svc:
        client = OpenAI(base_url=svc.url, api_key="x", max_retries=0)
        train = client.files.create(file=("t.jsonl", io.BytesIO(TRAIN * 20)),
                                    purpose="fine-tune")
        first = client.fine_tuning.jobs.create(model="tiny-random-llama",
                                               training_file=train.id,
                                               hyperparameters={"batch_size": 1})
        second = client.fine_tuning.jobs.create(model="tiny-random-llama",
                                                training_file=train.id,
                                                hyperparameters={"batch_size": 1})
        store = Store(tmp_path)
        _wait(store, first.id, "running")
        os.kill(int((tmp_path / "worker.pid").read_text()), signal.SIGKILL)
        failed = _wait(store, first.id, "failed")
        assert "worker exited unexpectedly" in failed["error"]["message"]  # type: ignore[index]
        assert client.fine_tuning.jobs.retrieve(first.id).error.code == "worker_crashed"
        _wait(store, second.id, "running", seconds=180)  # a new worker took the queue on
        client.fine_tuning.jobs.cancel(second.id)
        _wait(store, second.id, "cancelled")


def test_a_restarted_service_keeps_files_and_jobs(tmp_path: Path) -> None:
    with contextlib.contextmanager(serve)(tmp_path, workers=0) as svc:
        client = OpenAI(base_url=svc.url, api_key="x", max_retries=0)
        train = client.files.create(file=("t.jsonl", io.BytesIO(TRAIN)), purpose="fine-tune")
        interrupted = client.fine_tuning.jobs.create(model="tiny-random-llama",
                                                     training_file=train.id)
        queued = client.fine_tuning.jobs.create(model="tiny-random-llama",
                                                training_file=train.id,
                                                hyperparameters={"n_epochs": 1})
    store = Store(tmp_path)  # as if a worker was cut off while running the first job
    assert store.claim_next_job(4242, store.take_ownership())["id"] == interrupted.id  # type: ignore[index]
    with contextlib.contextmanager(serve)(tmp_path, workers=1) as svc:
        client = OpenAI(base_url=svc.url, api_key="x", max_retries=0)
        assert client.files.retrieve(train.id).filename == "t.jsonl"
        store = Store(tmp_path)
        done = _wait(store, queued.id, "succeeded")
        assert done["fine_tuned_model"]
        job = client.fine_tuning.jobs.retrieve(interrupted.id)
        assert job.status == "failed" and job.error is not None
        assert job.error.code == "interrupted"


_STOPPED_WORKER = '''
import multiprocessing, sys, time
from pathlib import Path
from ftlens.server.worker import worker_main

def holding_a_semaphore(home):
    lock = multiprocessing.get_context("spawn").RLock()  # as tqdm's lock in a training job
    worker_main(home, "owner-token")

if __name__ == "__main__":
    home = Path(sys.argv[1])
    proc = multiprocessing.get_context("spawn").Process(
        target=holding_a_semaphore, args=(str(home),), daemon=True)
    proc.start()
    deadline = time.monotonic() + 60
    while not (home / "ftlens.db").exists():  # the worker is polling for jobs
        assert time.monotonic() < deadline and proc.is_alive()
        time.sleep(0.05)
    proc.terminate()  # what Supervisor.stop does
    proc.join(30)
    print("exit code", proc.exitcode)
'''


def test_a_stopped_worker_releases_what_it_holds(tmp_path: Path) -> None:
    """Stopping the service ends each worker through SIGTERM's handler, so the semaphores a job
    created (tqdm's lock, torch's) are released, not reported as leaked at exit."""
    script = tmp_path / "stop_worker.py"
    script.write_text(_STOPPED_WORKER)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "home")], cwd=root,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert done.returncode == 0, done.stderr
    assert "exit code 143" in done.stdout  # 128 + SIGTERM: left through SystemExit
    assert "leaked" not in done.stderr, done.stderr


def _ignore_sigterm(ready: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as if stuck in a long native call
    ready.set()
    while True:
        time.sleep(0.1)


def test_stop_kills_a_worker_that_does_not_leave(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    stuck = ctx.Process(target=_ignore_sigterm, args=(ready,), daemon=True)
    stuck.start()
    assert ready.wait(30)
    supervisor = Supervisor(Store(tmp_path), n=0)
    supervisor.stop_timeout_s = 0.5
    supervisor.procs = [stuck]
    supervisor.stop()
    assert not stuck.is_alive() and stuck.exitcode == -signal.SIGKILL


def _sigterm_self(worker_pid_is_mine: bool) -> None:
    worker._WORKER_PID = os.getpid() if worker_pid_is_mine else os.getppid()
    signal.signal(signal.SIGTERM, worker._exit_on_sigterm)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)


@pytest.mark.parametrize(("mine", "code"), [(True, 128 + signal.SIGTERM),
                                            (False, -signal.SIGTERM)])
def test_the_sigterm_handler_acts_only_in_the_worker_itself(mine: bool, code: int) -> None:
    """A worker leaves through SystemExit; a process that a job forked from it (and that
    inherited the handler) dies of the signal as usual."""
    proc = multiprocessing.get_context("fork").Process(target=_sigterm_self, args=(mine,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == code
