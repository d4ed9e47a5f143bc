"""One service owns a home, and its workers die with it: ``kill -9`` of the service process
alone, a second service on the same home, leftovers of a killed upload, job rows that never
contradict themselves, and no server path in what a client reads."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import openai
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from openai import OpenAI
from tests.server.test_sdk_lifecycle import TRAIN
from tests.support.service import (
    KEY,
    process_gone,
    serve,
    start_service_process,
    stop_service_process,
)

from ftlens.errors import ConfigError
from ftlens.server.app import create_app
from ftlens.server.home import HomeLock
from ftlens.server.store import Store, job_problems, new_id, now
from ftlens.server.worker import Supervisor


def _until(check: Any, seconds: float = 180, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def _long_job(client: OpenAI) -> str:
    train = client.files.create(file=("t.jsonl", io.BytesIO(TRAIN * 20)), purpose="fine-tune")
    return client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=train.id,
                                          hyperparameters={"batch_size": 1}).id


def _running(store: Store) -> list[dict[str, Any]]:
    return [j for j in store.list_jobs() if j["status"] == "running"]


def test_killing_the_service_alone_kills_its_worker_and_no_job_runs_twice(
        tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    home = tmp_path / "home"
    svc = start_service_process(home, "--api-key-file", str(key_file), env_key="not-this-one")
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        first, second = _long_job(client), _long_job(client)
        store = Store(home)
        _until(lambda: store.get_job(first)["status"] == "running")  # type: ignore[index]
        orphan = svc.worker_pid()
        os.kill(svc.proc.pid, signal.SIGKILL)  # the service process alone, not its group
        svc.proc.wait(30)
        _until(lambda: process_gone(orphan), 30, "the worker outlived its service")
    finally:
        stop_service_process(svc)
    assert store.get_job(first)["status"] == "running"  # type: ignore[index]  # as it was cut
    assert store.get_job(second)["status"] == "queued"  # type: ignore[index]  # never claimed

    svc = start_service_process(home, "--api-key-file", str(key_file))
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        job = client.fine_tuning.jobs.retrieve(first)
        # it resumes from its latest resume point, or fails when it had saved none yet
        resumed = job.status in ("queued", "running")
        assert resumed or (job.error is not None and job.error.code == "interrupted")
        now_running = first if resumed else second  # the oldest queued job goes first
        _until(lambda: store.get_job(now_running)["status"] == "running")  # type: ignore[index]
        for _ in range(20):  # under --workers 1, one job at a time, by the new worker
            assert [j["id"] for j in _running(store)] == [now_running]
            assert store.get_job(now_running)["worker"] == svc.worker_pid()  # type: ignore[index]
            time.sleep(0.1)
        for job_id in (first, second):
            if store.get_job(job_id)["status"] != "failed":  # type: ignore[index]
                client.fine_tuning.jobs.cancel(job_id)
                _until(lambda j=job_id: store.get_job(j)["status"] == "cancelled")  # type: ignore[index]
    finally:
        stop_service_process(svc)
    assert all(job_problems(j) == [] for j in store.list_jobs())


def test_a_second_service_on_the_same_home_refuses_and_changes_nothing(tmp_path: Path) -> None:
    with contextlib.contextmanager(serve)(tmp_path, workers=1) as first:
        client = OpenAI(base_url=first.url, api_key="x", max_retries=0)
        job = _long_job(client)
        store = Store(tmp_path)
        _until(lambda: store.get_job(job)["status"] == "running")  # type: ignore[index]
        second = subprocess.run(
            [sys.executable, "-m", "ftlens", "serve", "--home", str(tmp_path), "--port",
             first.url.split(":")[2].split("/")[0]],  # the port too: the home is checked first
            capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"another ftlens service (pid {os.getpid()}) is already using the home" in (
            second.stderr)
        assert "how to fix:" in second.stderr and "Traceback" not in second.stderr
        assert store.get_job(job)["status"] == "running"  # type: ignore[index]
        with pytest.raises(ConfigError, match="already using the home"):
            create_app(tmp_path, workers=0)  # the same refusal inside one process
        client.fine_tuning.jobs.cancel(job)
        _until(lambda: store.get_job(job)["status"] == "cancelled")  # type: ignore[index]
    lock = HomeLock(tmp_path)  # released when the first service stopped
    lock.acquire()
    lock.release()


def test_leftovers_of_a_killed_upload_are_swept_at_start(tmp_path: Path) -> None:
    with contextlib.contextmanager(serve)(tmp_path, workers=0) as svc:
        kept = OpenAI(base_url=svc.url, api_key="x").files.create(
            file=("t.jsonl", io.BytesIO(TRAIN)), purpose="fine-tune")
    files = tmp_path / "files"
    (files / f".{new_id('file')}.part").write_bytes(b"x" * 4096)  # cut off while writing
    (files / new_id("file")).write_bytes(b"y" * 4096)  # renamed, never registered
    with contextlib.contextmanager(serve)(tmp_path, workers=0) as svc:
        client = OpenAI(base_url=svc.url, api_key="x")
        assert [f.id for f in client.files.list()] == [kept.id]
        assert [p.name for p in files.iterdir()] == [kept.id]
        assert client.files.content(kept.id).content == TRAIN


def test_errors_a_client_reads_carry_no_server_path(tmp_path: Path) -> None:
    with contextlib.contextmanager(serve)(tmp_path, workers=1) as svc:
        client = OpenAI(base_url=svc.url, api_key="x", max_retries=0)
        train = client.files.create(file=("t.jsonl", io.BytesIO(TRAIN)), purpose="fine-tune")
        (tmp_path / "files" / train.id).unlink()  # the bytes went missing on the server
        with pytest.raises(openai.InternalServerError) as err:
            client.files.content(train.id)
        message = str(err.value.body)  # the exception (and its path) goes to the log alone
        assert str(tmp_path) not in message and "internal error (request id req_" in message
        job = client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=train.id)
        store = Store(tmp_path)
        _until(lambda: store.get_job(job.id)["status"] == "failed")  # type: ignore[index]
        failed = client.fine_tuning.jobs.retrieve(job.id)
        assert failed.error and str(tmp_path) not in failed.error.message
        assert "$FTLENS_HOME/files/" in failed.error.message
        events = client.fine_tuning.jobs.list_events(job.id).data
        assert all(str(tmp_path) not in e.message for e in events)


def test_job_problems_names_each_contradiction() -> None:
    base = {"status": "succeeded", "error": None, "finished_at": 1, "fine_tuned_model": "ft:m",
            "control": None, "worker": 7}
    assert job_problems(base) == []
    assert job_problems({**base, "error": {"message": "create it again"}}) == [
        "succeeded with error {'message': 'create it again'}"]
    assert job_problems({**base, "status": "running", "control": "cancel"}) == [
        "running with finished_at 1", "running with fine_tuned_model 'ft:m'"]
    assert job_problems({**base, "status": "queued", "fine_tuned_model": None,
                         "finished_at": None, "control": "pause"}) == [
        "queued with a pending 'pause'"]
    assert job_problems({**base, "status": "failed", "fine_tuned_model": None}) == [
        "failed with error None"]


class JobStates(RuleBasedStateMachine):
    """Every transition the API, the workers and a restarted service make, in any order, with
    stale workers of an older owner among them: no row ever contradicts itself, and a stale
    worker changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.store = Store(Path(self._dir.name))
        self.supervisor = Supervisor(self.store, n=0)
        self.owner = self.store.take_ownership()
        self.old_owners: list[str] = []
        self.jobs: list[str] = []
        self.workers = iter(range(100, 10**6))

    def teardown(self) -> None:
        self._dir.cleanup()

    @rule()
    def create(self) -> None:
        job_id = new_id("ftjob")
        self.store.add_job({"id": job_id, "created_at": now(), "model": "m",
                            "training_file": "file-x", "status": "validating_files"})
        self.jobs.append(job_id)

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 50))
    def queue_or_resume(self, i: int) -> None:
        self.store.queue_job(self.jobs[i % len(self.jobs)])

    @rule(stale=st.booleans())
    def claim(self, stale: bool) -> None:
        owner = self.old_owners[-1] if stale and self.old_owners else self.owner
        job = self.store.claim_next_job(next(self.workers), owner)
        assert job is None or owner == self.owner

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 50), control=st.sampled_from(["cancel", "pause"]))
    def ask_to_stop(self, i: int, control: str) -> None:
        self.store.set_control(self.jobs[i % len(self.jobs)], control, when=("running",))

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 50))
    def cancel_idle(self, i: int) -> None:
        self.store.cancel_idle_job(self.jobs[i % len(self.jobs)])

    @precondition(lambda self: self.jobs)
    @rule(i=st.integers(0, 50), status=st.sampled_from(["succeeded", "failed", "cancelled",
                                                         "paused"]),
          who=st.sampled_from(["its worker", "another worker", "a stale owner", "service"]))
    def finish(self, i: int, status: str, who: str) -> None:
        job_id = self.jobs[i % len(self.jobs)]
        before = self.store.get_job(job_id)
        assert before is not None
        worker, owner = before["worker"], self.owner
        if who == "another worker":
            worker = next(self.workers)
        elif who == "a stale owner":
            owner = self.old_owners[-1] if self.old_owners else "never-owned"
        elif who == "service":
            worker = owner = None
        extra: dict[str, Any] = {"fine_tuned_model": "ft:m"} if status == "succeeded" else {}
        error = {"code": "x", "message": "m", "param": None} if status == "failed" else None
        done = self.store.finish_job(job_id, status, worker=worker, owner=owner, error=error,
                                     **extra)
        mine = who in ("its worker", "service") and before["status"] == "running"
        assert done == mine
        if not done:
            assert self.store.get_job(job_id) == before

    @rule()
    def restart(self) -> None:
        self.old_owners.append(self.owner)
        self.owner = self.store.take_ownership()
        self.supervisor.recover()

    @invariant()
    def rows_agree_with_themselves(self) -> None:
        for job in self.store.list_jobs():
            assert job_problems(job) == [], job


TestJobStates = JobStates.TestCase
TestJobStates.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
