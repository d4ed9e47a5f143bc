"""Jobs run in worker processes, one job at a time each, so the API stays responsive.

A worker claims the oldest queued job, runs the local engine on it, and writes its events,
checkpoints, result file and outcome to the store. The supervisor (in the API process) starts
the workers, restarts one that dies, and marks the job it was running ``failed``; when the
service stops, and at start-up for jobs a killed service left running, it queues each
interrupted job again to resume from its latest resume point (weights, optimiser, schedule and
random state, saved every few steps), or fails it when it saved none yet.

Workers die with their service. Each holds the read end of a pipe whose only write end the
supervisor keeps; when the service process ends, however it ends (``kill -9`` included), the
kernel closes that end, the worker's read returns end-of-file and the worker kills itself. It
also claims and finishes jobs only under its service's owner token (see ``store``), so even in
the moment before it notices, a new service's decisions stand.
"""

from __future__ import annotations

import base64
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ftlens.errors import FtlensError
from ftlens.server.integrations import Trackers
from ftlens.server.store import Store, new_id, now
from ftlens.train.config import Event, TaskMetricsSettings

POLL_SECONDS = 0.5


def fine_tuned_name(job: dict[str, Any]) -> str:
    """``ft:<base>:ftlens:<suffix>:<id>``, like OpenAI's ``ft:<base>:<org>:<suffix>:<id>``
    (a job that tuned a fine-tuned model further names that model's base)."""
    base = job["model"].split(":")[1] if job["model"].startswith("ft:") else job["model"]
    return f"ft:{base}:ftlens:{job.get('suffix') or ''}:{job['id'][6:14]}"


_WORKER_PID = 0  # set in the worker process itself


def worker_main(home: str, owner: str, lifeline: Any = None,
                models: dict[str, str] | None = None) -> None:
    """A worker process: run queued jobs until stopped. ``lifeline``: the read end of the
    supervisor's pipe (see the module docstring); ``models``: the service's own registered
    models (``serve --model NAME=PATH``)."""
    # The supervisor stops a worker with SIGTERM. Leaving through SystemExit (exit code 143)
    # runs multiprocessing's finalizers, which release the semaphores that tqdm and torch
    # created; killed outright, they were reported as leaked when the service exited.
    global _WORKER_PID
    _WORKER_PID = os.getpid()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if lifeline is not None:
        threading.Thread(target=_die_with_service, args=(lifeline,), name="ftlens-lifeline",
                         daemon=True).start()
    store = Store(Path(home))
    while True:
        job = store.claim_next_job(os.getpid(), owner)
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        run_job(store, job, owner, models)


def base_location(store: Store, name: str, models: dict[str, str] | None) -> str:
    """What the engine loads for a job's base model: a built-in name as it is, a fine-tuned
    model or checkpoint as its folder, a registered model or cached hub id as its path
    (resolved now: the job keeps its model even if the name is registered again later)."""
    from ftlens.train import models as known
    from ftlens.train.registry import Registry

    tuned = store.find_model(name)  # a fine-tuned model or checkpoint: tuned further
    if tuned is not None:
        return str(tuned)
    registry = Registry(store.home, models)
    source = known.resolve(name, registry=registry, paths=False)
    if source.kind == "tiny" or source.name == known.SMOLLM2:
        return source.name
    if source.kind == "hub":  # the engine finds it in the cache; an export names the hub id
        found = registry.lookup(name)
        return found.source if found else name
    return source.location


def _die_with_service(lifeline: Any) -> None:
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv()  # nothing is ever sent: this returns when the service is gone
    os.kill(os.getpid(), signal.SIGKILL)  # at once, even inside a long native call


def _exit_on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    if os.getpid() != _WORKER_PID:  # a process forked by a job inherited the handler
        os.kill(os.getpid(), signum)
        return
    sys.exit(128 + signum)


def run_job(store: Store, job: dict[str, Any], owner: str,
            models: dict[str, str] | None = None) -> None:
    from ftlens.train.config import TrainConfig
    from ftlens.train.engine import train
    from ftlens.train.hyperparams import Hyperparameters

    job_id = job["id"]
    store.add_event(job_id, "Fine-tuning job started")
    trackers = Trackers(job)
    follow = _Follow(store, job, trackers)
    try:
        _open_trackers(store, trackers)
        config = TrainConfig(
            model=base_location(store, job["model"], models),
            training_file=str(store.file_path(job["training_file"])),
            validation_file=(str(store.file_path(job["validation_file"]))
                             if job["validation_file"] else None),
            out_dir=str(store.jobs_dir / job_id),
            objective=job.get("method") or "supervised",
            hyperparameters=Hyperparameters.from_dict(job["hyperparameters"],
                                                      job.get("method") or "supervised"),
            seed=job["seed"] or 0, resume_from=job["resume_from"], model_label=job["model"],
            task_metrics=_task_settings(job.get("task_metrics")))
        result = train(config, callbacks=[follow], should_stop=follow.control)
    except FtlensError as exc:
        trackers.close(exit_code=1)
        _fail(store, job_id, "invalid_request", exc.render(), owner=owner)
        return
    except Exception as exc:  # the job fails, the worker lives on
        trackers.close(exit_code=1)
        _fail(store, job_id, "internal_error", f"{type(exc).__name__}: {exc}",
              detail=traceback.format_exc(), owner=owner)
        return
    trackers.close()
    def finish(status: str, message: str, **values: Any) -> None:
        if store.finish_job(job_id, status, worker=os.getpid(), owner=owner,
                            trained_tokens=result.trained_tokens, **values):
            store.add_event(job_id, message)

    if result.status == "succeeded":
        results = _result_file(store, Path(result.out_dir) / "results.csv")
        finish("succeeded", "The job has successfully completed",
               fine_tuned_model=fine_tuned_name(job), result_files=[results])
    elif result.status == "paused":
        last = result.checkpoints[-1]["path"] if result.checkpoints else None
        finish("paused", "The job has been paused", resume_from=last)
    else:
        finish("cancelled", "The job has been cancelled")


def _open_trackers(store: Store, trackers: Trackers) -> None:
    """Start the job's integrations (a wandb run); one that cannot start fails the job."""
    job = trackers.job
    if not job.get("integrations"):
        return
    try:
        trackers.open({"model": job["model"], "method": job.get("method") or "supervised",
                       "hyperparameters": job["hyperparameters"], "seed": job["seed"]})
    except Exception as exc:
        raise FtlensError(f"integrations: the wandb run could not start: "
                          f"{type(exc).__name__}: {exc}") from None
    store.add_event(job["id"], "Logging the training metrics to Weights & Biases")


class _Follow:
    """The engine's event stream into the store (and the job's integrations), and the job's
    stop requests back."""

    def __init__(self, store: Store, job: dict[str, Any], trackers: Trackers | None = None
                 ) -> None:
        self.store, self.job, self.trackers = store, job, trackers
        self.started = time.monotonic()
        self.first_step: int | None = None

    def __call__(self, event: Event) -> None:
        store, job_id = self.store, self.job["id"]
        data = event.data or {}
        if event.type == "metrics":
            step, total = int(data["step"]), int(data["total_steps"])
            if self.first_step is None:
                self.first_step, self.started = step - 1, time.monotonic()
            per_step = (time.monotonic() - self.started) / max(1, step - self.first_step)
            store.update_job(job_id, estimated_finish=now() + round(per_step * (total - step)))
            store.add_event(job_id, event.message, type="metrics", data=data)
            if self.trackers is not None:
                self.trackers.metrics(data)
        elif event.type == "checkpoint":
            name = f"{fine_tuned_name(self.job)}:ckpt-step-{data['step']}"
            store.add_checkpoint(job_id, int(data["step"]), name, data["metrics"],
                                 data["path"])
            store.add_event(job_id, f"Checkpoint created at step {data['step']}")
        else:
            if "hyperparameters" in data:  # the values used: the job shows them from now on
                store.update_job(job_id, resolved_hyperparameters=data["hyperparameters"])
            store.add_event(job_id, event.message, level=event.level)

    def control(self) -> str | None:
        job = self.store.get_job(self.job["id"])
        return None if job is None else job["control"]


def _result_file(store: Store, csv_path: Path) -> str:
    """Register the result CSV as a ``fine-tune-results`` file, base64-encoded like OpenAI's."""
    file_id = new_id("file")
    data = base64.b64encode(csv_path.read_bytes())
    store.write_file(file_id, data)
    store.add_file(file_id, "step_metrics.csv", "fine-tune-results", len(data))
    return file_id


def _interrupted(store: Store, job: dict[str, Any]) -> None:
    """A job the service stopped under: queued again to resume from its newest resume point
    (the run's own, or the checkpoint it was resumed from after a pause); failed when it
    has none."""
    from ftlens.errors import ConfigError
    from ftlens.train.artifacts import read_meta, resume_point

    found = []
    for folder in (resume_point(store.jobs_dir / job["id"]), job["resume_from"]):
        try:
            if folder is not None:
                found.append((int(read_meta(folder)["step"]), str(folder)))
        except (ConfigError, KeyError, ValueError):
            continue  # not whole: the other one, if any
    if not found:
        _fail(store, job["id"], "interrupted", "the service stopped before the job saved its "
              "first resume point; create it again")
        return
    step, folder = max(found)
    if store.requeue_interrupted(job["id"], folder, step):
        store.add_event(job["id"], f"The service stopped while the job was running; it "
                                   f"resumes from step {step}")


def _task_settings(task: dict[str, Any] | None) -> TaskMetricsSettings | None:
    """What the job asked for (its create request, as checked then)."""
    if not task:
        return None
    return TaskMetricsSettings(task.get("positive"), task.get("n_classes"),
                               tuple(task.get("betas") or (1.0,)))


def _fail(store: Store, job_id: str, code: str, message: str, detail: str = "",
          owner: str | None = None) -> None:
    """Fail a running job: from its worker (with ``owner``) or from the service."""
    error = {"code": code, "message": store.public_text(message), "param": None}
    worker = os.getpid() if owner is not None else None
    if not store.finish_job(job_id, "failed", error=error, worker=worker, owner=owner):
        return  # no longer running (or no longer this worker's): its state stands
    store.add_event(job_id, f"Fine-tuning job failed: {error['message']}", level="error")
    if detail:
        (store.jobs_dir / job_id).mkdir(parents=True, exist_ok=True)
        (store.jobs_dir / job_id / "error.txt").write_text(detail, encoding="utf-8")


class Supervisor:
    """Starts ``n`` worker processes and keeps them alive (see the module docstring)."""

    stop_timeout_s = 10.0  # how long stop() waits for a worker to leave after SIGTERM

    def __init__(self, store: Store, n: int = 1, models: dict[str, str] | None = None
                 ) -> None:
        self.store, self.n, self.models = store, n, dict(models or {})
        self.owner = ""  # set by the service that owns the home before start()
        self.procs: list[Any] = []
        self._lifelines: dict[Any, Any] = {}  # worker process -> its pipe's write end
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def recover(self) -> None:
        """After a restart: interrupted jobs resume from their latest resume point (or fail
        when they saved none), queued ones wait for a worker."""
        for job in self.store.list_jobs():
            if job["status"] == "running":
                _interrupted(self.store, job)
            elif job["status"] == "validating_files":
                self.store.queue_job(job["id"])

    def start(self) -> None:
        """Recover and start the workers; ``owner`` is this service's token (see ``store``)."""
        self.recover()
        self.procs = [self._spawn() for _ in range(self.n)]
        self._thread = threading.Thread(target=self._watch, name="ftlens-supervisor",
                                        daemon=True)
        self._thread.start()

    def _spawn(self) -> Any:
        ctx = multiprocessing.get_context("spawn")
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker_main,
                           args=(str(self.store.home), self.owner, reader, self.models),
                           name="ftlens-worker", daemon=True)
        proc.start()
        reader.close()  # the worker's copy is the only read end left
        self._lifelines[proc] = writer
        (self.store.home / "worker.pid").write_text(str(proc.pid))
        return proc

    def _cut_lifeline(self, proc: Any) -> None:
        writer = self._lifelines.pop(proc, None)
        if writer is not None:
            writer.close()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            for i, proc in enumerate(self.procs):
                if proc.is_alive():
                    continue
                how = ("was stopped by SIGTERM from outside the service"
                       if proc.exitcode in (-signal.SIGTERM, 128 + signal.SIGTERM)
                       else f"exited unexpectedly (exit code {proc.exitcode})")
                for job in self.store.list_jobs():
                    if job["status"] == "running" and job["worker"] == proc.pid:
                        _fail(self.store, job["id"], "worker_crashed",
                              f"the training worker {how}")
                self._cut_lifeline(proc)
                self.procs[i] = self._spawn()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # it no longer replaces workers, nor reads their exit codes
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(timeout=self.stop_timeout_s)  # SIGTERM lands between Python steps
            if proc.is_alive():  # stuck in a long native call (a model load, a step)
                proc.kill()
                proc.join()
            self._cut_lifeline(proc)  # after the join: SIGTERM's orderly exit comes first
        for job in self.store.list_jobs():
            if job["status"] == "running":
                _interrupted(self.store, job)

