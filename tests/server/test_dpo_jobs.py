"""Preference tuning (DPO) through the official openai SDK, as OpenAI's API takes it: the
preference JSONL uploaded, a job with ``method={"type": "dpo", ...}``, its events, checkpoints
and result file, and the fine-tuned model preferring the preferred answers more than the base
did; and the files and parameters that do not fit the method."""

from __future__ import annotations

import base64
import time
from typing import Any

import openai
import pytest
from openai import OpenAI
from tests.support.jobs import upload_rows
from tests.support.preference import mean_preference
from tests.support.service import KEY, Service
from tests.support.toy_chat import TOY, TOY_PREFERENCES, chat, write_jsonl

from ftlens.io.training_logs import read_run
from ftlens.train import models
from ftlens.train.artifacts import load_tuned

DPO = {"type": "dpo", "dpo": {"hyperparameters": {
    "beta": 0.2, "n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 10}}}


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0)


def _upload(client: OpenAI, rows: list[dict[str, Any]]) -> str:
    return upload_rows(client, rows, "pairs.jsonl")  # the name its errors show


def _wait(client: OpenAI, job_id: str, seconds: float = 300) -> Any:
    deadline = time.monotonic() + seconds
    job = client.fine_tuning.jobs.retrieve(job_id)
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job.status
        time.sleep(0.3)
        job = client.fine_tuning.jobs.retrieve(job_id)
    return job


def test_a_dpo_job_succeeds_and_its_model_prefers_the_preferred_answers(
        client: OpenAI, service: Service, tmp_path: Any) -> None:
    pairs = _upload(client, TOY_PREFERENCES)
    assert client.files.retrieve(pairs).purpose == "fine-tune"
    job = client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=pairs,
                                         validation_file=pairs, method=DPO, seed=3)
    assert job.method.type == "dpo" and job.method.dpo.hyperparameters.beta == 0.2
    job = _wait(client, job.id)
    assert job.status == "succeeded", job.error
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    metrics = [e.data for e in events if e.type == "metrics"]
    assert metrics and all("train_reward_margin" in m for m in metrics)
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert checkpoints and "train_reward_margin" in checkpoints[0].metrics.model_dump()
    csv = base64.b64decode(client.files.content(job.result_files[0]).read())
    result = tmp_path / "results.csv"
    result.write_bytes(csv)
    run = read_run(result)
    assert run.preference and run.train_loss.values[0] == pytest.approx(0.6931, abs=1e-3)
    # the fine-tuned model, measured on the training pairs against the base
    path = write_jsonl(tmp_path / "pairs.jsonl", TOY_PREFERENCES)
    base, tok = models.load_model(models.resolve("tiny-random-llama"))
    tuned, tuned_tok = load_tuned(service.home / "jobs" / job.id / "model")
    assert mean_preference(tuned, tuned_tok, path) > mean_preference(base, tok, path) + 1.0
    reply = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=3,
                                           messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content is not None


def test_a_preference_file_for_a_supervised_job_and_the_reverse_are_refused(
        client: OpenAI) -> None:
    pairs = _upload(client, TOY_PREFERENCES)
    chats = _upload(client, [chat(t, y) for t, y in TOY])
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=pairs)
    assert "preference pairs (DPO data)" in err.value.message and "supervised" in \
        err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=chats,
                                       method=DPO)
    assert "holds chat examples; a dpo job trains on preference pairs" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=pairs,
                                       validation_file=chats, method=DPO)
    assert err.value.param == "validation_file"


def test_beta_belongs_to_dpo_and_must_be_in_range(client: OpenAI) -> None:
    chats = _upload(client, [chat(t, y) for t, y in TOY])
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(
            model="tiny-random-llama", training_file=chats,
            method={"type": "supervised", "supervised": {"hyperparameters": {"beta": 0.1}}})
    assert "beta is a DPO hyperparameter" in err.value.message
    pairs = _upload(client, TOY_PREFERENCES)
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(
            model="tiny-random-llama", training_file=pairs,
            method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 5}}})
    assert "beta must be" in err.value.message


def test_a_bad_preference_line_is_refused_at_upload_naming_it(client: OpenAI) -> None:
    rows = [*TOY_PREFERENCES]
    broken = dict(rows[3])
    del broken["non_preferred_output"]
    rows[3] = broken
    with pytest.raises(openai.BadRequestError) as err:
        _upload(client, rows)
    assert "pairs.jsonl, line 4" in err.value.message
    assert 'no "non_preferred_output"' in err.value.message
    mixed = [*TOY_PREFERENCES, chat("hello", "ham")]
    with pytest.raises(openai.BadRequestError) as err:
        _upload(client, mixed)
    assert "line 13" in err.value.message and "chat example, not a preference pair" in \
        err.value.message


def test_supervised_then_dpo_from_the_fine_tuned_model(client: OpenAI, service: Service,
                                                      tmp_path: Any) -> None:
    """As on OpenAI: a job's model may be a fine-tuned model. The DPO job trains that model's
    adapter further, with the supervised model as its reference, and its model keeps the
    original base."""
    from ftlens.train.artifacts import read_meta

    sft = _wait(client, client.fine_tuning.jobs.create(
        model="tiny-random-llama", training_file=_upload(client, [chat(t, y) for t, y in TOY]),
        hyperparameters={"n_epochs": 2, "batch_size": 4}, seed=1).id)
    assert sft.status == "succeeded", sft.error
    dpo = _wait(client, client.fine_tuning.jobs.create(
        model=sft.fine_tuned_model, training_file=_upload(client, TOY_PREFERENCES),
        method=DPO, seed=2).id)
    assert dpo.status == "succeeded", dpo.error
    assert dpo.model == sft.fine_tuned_model
    assert dpo.fine_tuned_model.startswith("ft:tiny-random-llama:ftlens:")
    folder = service.home / "jobs" / dpo.id / "model"
    assert read_meta(folder)["base_model"] == "tiny-random-llama"
    first = [e.data for e in client.fine_tuning.jobs.list_events(dpo.id, limit=100)
             if e.type == "metrics"][-1]  # the list is newest first
    assert first["step"] == 1 and first["train_loss"] == pytest.approx(0.6931, abs=1e-3)
    path = write_jsonl(tmp_path / "pairs.jsonl", TOY_PREFERENCES)
    before = mean_preference(*load_tuned(service.home / "jobs" / sft.id / "model"), path)
    after = mean_preference(*load_tuned(folder), path)
    assert after > before + 1.0, (before, after)
    reply = client.chat.completions.create(model=dpo.fine_tuned_model, max_tokens=3,
                                           messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content is not None


def test_a_method_section_that_is_not_an_object_is_a_400(client: OpenAI) -> None:
    pairs = _upload(client, TOY_PREFERENCES)
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=pairs,
                                       method={"type": "dpo", "dpo": "beta=0.1"})
    assert err.value.param == "method.dpo" and "valid dictionary" in err.value.message
