"""A job's parameters as the official openai SDK reads them back from a real ``ftlens serve``:
``"auto"`` hyperparameters replaced by the values used once the job starts, the cancel reply
(``cancelled`` for an idle job, ``cancelling`` for a running one), and checkpoints as models
under ``/v1/models`` that go with their fine-tuned model."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from openai import OpenAI
from tests.support.jobs import upload_rows
from tests.support.service import KEY, Service
from tests.support.toy_chat import TOY, TOY_PREFERENCES, chat

from ftlens.train.hyperparams import Hyperparameters

MODEL = "tiny-random-llama"
ROWS = [chat(t, y) for t, y in TOY]


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0, timeout=120)


def _wait(client: OpenAI, job_id: str, statuses: tuple[str, ...], seconds: float = 300
          ) -> Any:
    deadline = time.monotonic() + seconds
    while (job := client.fine_tuning.jobs.retrieve(job_id)).status not in statuses:
        assert job.status != "failed", job.error
        assert time.monotonic() < deadline, f"job stuck in {job.status}"
        time.sleep(0.2)
    return job


@pytest.fixture(scope="module")
def auto_job(client: OpenAI) -> Any:
    """A supervised job with every hyperparameter left to ``"auto"``, finished."""
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=upload_rows(client, ROWS),
                                         seed=2)
    assert job.status == "validating_files"  # not started: "auto" as asked
    assert job.hyperparameters.model_dump() == {
        "n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    assert job.method is not None and job.method.supervised is not None
    assert job.method.supervised.hyperparameters.n_epochs == "auto"
    return _wait(client, job.id, ("succeeded",))


def test_auto_hyperparameters_show_the_values_used_once_the_job_started(
        client: OpenAI, auto_job: Any) -> None:
    used = Hyperparameters().resolve(len(ROWS)).as_dict()
    assert used["n_epochs"] == 8  # OpenAI's rule for 12 examples: 100 // 12
    assert auto_job.hyperparameters.model_dump() == used
    assert auto_job.method.supervised.hyperparameters.model_dump() == used
    listed = next(j for j in client.fine_tuning.jobs.list(limit=100) if j.id == auto_job.id)
    assert listed.hyperparameters.n_epochs == 8
    steps = [e.data["step"] for e in client.fine_tuning.jobs.list_events(auto_job.id, limit=100)
             if e.type == "metrics"]  # type: ignore[index]
    assert max(steps) == 8 * len(ROWS) // used["batch_size"]  # the numbers are the ones used


def test_a_dpo_job_shows_the_beta_it_used(client: OpenAI) -> None:
    job = client.fine_tuning.jobs.create(
        model=MODEL, training_file=upload_rows(client, TOY_PREFERENCES),
        method={"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 1}}})
    assert job.method is not None and job.method.dpo is not None
    assert job.method.dpo.hyperparameters.beta == "auto"
    assert job.method.dpo.hyperparameters.n_epochs == 1
    done = _wait(client, job.id, ("succeeded",))
    shown = done.method.dpo.hyperparameters
    assert (shown.n_epochs, shown.batch_size, shown.learning_rate_multiplier, shown.beta) == (
        1, 1, 1.0, 0.1)
    assert done.hyperparameters.n_epochs == 1 and done.hyperparameters.batch_size == 1


def test_cancel_says_cancelled_for_an_idle_job_and_cancelling_for_a_running_one(
        client: OpenAI) -> None:
    long = client.fine_tuning.jobs.create(
        model=MODEL, training_file=upload_rows(client, ROWS * 20),
        hyperparameters={"n_epochs": 5, "batch_size": 1})
    _wait(client, long.id, ("running",))
    queued = client.fine_tuning.jobs.create(model=MODEL,
                                            training_file=upload_rows(client, ROWS))
    _wait(client, queued.id, ("queued",))  # the one worker is busy with the long job
    reply = client.fine_tuning.jobs.cancel(queued.id)
    assert reply.status == "cancelled" and reply.finished_at
    reply = client.fine_tuning.jobs.cancel(long.id)
    assert reply.status == "cancelling" and reply.finished_at is None
    done = _wait(client, long.id, ("cancelled",), seconds=60)
    assert done.fine_tuned_model is None
    with pytest.raises(openai.BadRequestError, match="cancelled"):
        client.fine_tuning.jobs.cancel(long.id)


def test_checkpoints_are_models_and_go_with_their_fine_tuned_model(
        client: OpenAI, auto_job: Any) -> None:
    names = [c.fine_tuned_model_checkpoint
             for c in client.fine_tuning.jobs.checkpoints.list(auto_job.id)]
    assert names and all(n.startswith(f"{auto_job.fine_tuned_model}:ckpt-step-")
                         for n in names)
    listed = {m.id: m for m in client.models.list()}
    assert auto_job.fine_tuned_model in listed and set(names) <= set(listed)
    got = client.models.retrieve(names[-1])
    assert got.id == names[-1] and got.object == "model" and got.created > 0
    with pytest.raises(openai.PermissionDeniedError, match="checkpoint"):
        client.models.delete(names[-1])
    assert client.models.delete(auto_job.fine_tuned_model).deleted
    left = {m.id for m in client.models.list()}
    assert auto_job.fine_tuned_model not in left and not set(names) & left
    for name in (names[-1], auto_job.fine_tuned_model):
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(name)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model=name, max_tokens=1,
                                           messages=[{"role": "user", "content": "hi"}])
    assert client.fine_tuning.jobs.checkpoints.list(auto_job.id).data == []
