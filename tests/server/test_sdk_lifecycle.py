"""The official openai SDK against a real ftlens server on loopback: upload → job → events →
checkpoints → result file → chat with logprobs, a cancelled second job, error shapes,
pagination and 50 concurrent chat requests — all with the tiny model."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import time
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from tests.support.service import KEY, Service
from tests.support.toy_chat import TOY, chat

from ftlens.io.training_logs import read_run


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


TRAIN = _jsonl([chat(t, y) for t, y in TOY])
VALID = _jsonl([chat(t + " thanks", y) for t, y in TOY[:6]])


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0, timeout=120)


def _wait(client: OpenAI, job_id: str, statuses: tuple[str, ...], seconds: float = 300
          ) -> openai.types.fine_tuning.FineTuningJob:
    deadline = time.monotonic() + seconds
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert job.status not in ("failed", "cancelled") or job.status in statuses, job.error
        assert time.monotonic() < deadline, f"job stuck in {job.status}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def finished_job(client: OpenAI) -> openai.types.fine_tuning.FineTuningJob:
    train = client.files.create(file=("train.jsonl", io.BytesIO(TRAIN)), purpose="fine-tune")
    valid = client.files.create(file=("valid.jsonl", io.BytesIO(VALID)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="tiny-random-llama", training_file=train.id, validation_file=valid.id,
        suffix="spam", seed=3, metadata={"team": "risk"},
        method={"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 5}}})
    assert job.status == "validating_files" and job.fine_tuned_model is None
    assert job.hyperparameters.n_epochs == 3 and job.metadata == {"team": "risk"}
    return _wait(client, job.id, ("succeeded",))


def test_files_round_trip(client: OpenAI) -> None:
    up = client.files.create(file=("toy.jsonl", io.BytesIO(TRAIN)), purpose="fine-tune")
    assert up.id.startswith("file-") and up.bytes == len(TRAIN) and up.filename == "toy.jsonl"
    assert client.files.retrieve(up.id).purpose == "fine-tune"
    assert client.files.content(up.id).read() == TRAIN
    assert up.id in [f.id for f in client.files.list()]
    assert client.files.delete(up.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(up.id)


def test_a_bad_training_file_is_rejected_naming_its_line(client: OpenAI) -> None:
    lines = TRAIN.decode().splitlines()
    lines[6] = lines[6][:-5]  # truncated JSON on line 7
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("bad.jsonl", io.BytesIO("\n".join(lines).encode())),
                            purpose="fine-tune")
    body = err.value.body
    assert isinstance(body, dict) and body["param"] == "file"
    assert "bad.jsonl, line 7" in body["message"] and "JSON" in body["message"]
    rows = [json.loads(line) for line in TRAIN.decode().splitlines()]
    with pytest.raises(openai.BadRequestError) as err:  # a JSON array: said once
        client.files.create(file=("rows.json", io.BytesIO(json.dumps(rows, indent=2).encode())),
                            purpose="fine-tune")
    body = err.value.body
    assert isinstance(body, dict) and "a JSON array, not JSON lines" in body["message"]
    assert "jq -c" in body["message"] and "line 2" not in body["message"]
    few = client.files.create(file=("few.jsonl", io.BytesIO(_jsonl([chat("hi", "ham")]))),
                              purpose="fine-tune")  # fine as a validation file
    with pytest.raises(openai.BadRequestError, match="at least 10") as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=few.id)
    assert err.value.body["param"] == "training_file"  # type: ignore[index]


def test_the_job_runs_to_success_with_openai_shaped_results(
        client: OpenAI, finished_job: openai.types.fine_tuning.FineTuningJob) -> None:
    job = finished_job
    assert job.fine_tuned_model == f"ft:tiny-random-llama:ftlens:spam:{job.id[6:14]}"
    assert job.trained_tokens and job.trained_tokens > 0 and job.finished_at
    assert job.hyperparameters.batch_size == 4
    [result_id] = job.result_files
    result = client.files.retrieve(result_id)
    assert result.purpose == "fine-tune-results" and result.filename == "step_metrics.csv"
    csv_text = base64.b64decode(client.files.content(result_id).read()).decode()
    assert csv_text.splitlines()[0] == (
        "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy")
    assert len(csv_text.splitlines()) == 1 + 9  # 3 epochs of 3 steps


def test_events_are_newest_first_with_metrics(
        client: OpenAI, finished_job: openai.types.fine_tuning.FineTuningJob,
        tmp_path: Path) -> None:
    events = list(client.fine_tuning.jobs.list_events(finished_job.id, limit=100))
    assert events[0].message == "The job has successfully completed"
    assert [e.created_at for e in events] == sorted((e.created_at for e in events),
                                                    reverse=True)
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in metrics] == list(range(9, 0, -1))  # type: ignore[index]
    assert all({"train_loss", "train_mean_token_accuracy", "total_steps"} <= set(e.data)
               for e in metrics)  # type: ignore[arg-type]
    page = client.fine_tuning.jobs.list_events(finished_job.id, limit=4)
    assert len(page.data) == 4 and page.has_more
    second = client.fine_tuning.jobs.list_events(finished_job.id, limit=4,
                                                 after=page.data[-1].id)
    assert [e.id for e in page.data + second.data] == [e.id for e in events[:8]]
    # the curves reader takes the events as the SDK returns them
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"data": [e.model_dump() for e in events]}))
    assert len(read_run(path).train_loss) == 9


def test_checkpoints_are_listed_and_can_be_chatted_with(
        client: OpenAI, finished_job: openai.types.fine_tuning.FineTuningJob) -> None:
    checkpoints = client.fine_tuning.jobs.checkpoints.list(finished_job.id).data
    assert [c.step_number for c in checkpoints] == [9, 6, 3]
    first = checkpoints[0]
    assert first.fine_tuned_model_checkpoint == f"{finished_job.fine_tuned_model}:ckpt-step-9"
    assert first.metrics.full_valid_loss is not None and first.metrics.train_loss is not None
    reply = client.chat.completions.create(
        model=checkpoints[-1].fine_tuned_model_checkpoint,
        messages=[{"role": "user", "content": "hello"}], max_tokens=3, temperature=0)
    assert reply.choices[0].message.role == "assistant"


def test_chat_with_the_tuned_model_returns_logprobs(
        client: OpenAI, finished_job: openai.types.fine_tuning.FineTuningJob) -> None:
    model = finished_job.fine_tuned_model
    assert model in [m.id for m in client.models.list()]
    messages = chat(*TOY[0])["messages"][:-1]  # type: ignore[index]
    reply = client.chat.completions.create(model=model, messages=messages, temperature=0,
                                           max_tokens=5, logprobs=True, top_logprobs=3)
    choice = reply.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert choice.logprobs is not None and choice.logprobs.content
    first = choice.logprobs.content[0]
    assert len(first.top_logprobs) == 3 and first.top_logprobs[0].token == first.token
    assert reply.usage is not None and reply.usage.total_tokens == (
        reply.usage.prompt_tokens + reply.usage.completion_tokens)
    stream = client.chat.completions.create(model=model, messages=messages, temperature=0,
                                            max_tokens=5, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == (
        reply.usage.completion_tokens)


def test_sampling_parameters_are_honoured_and_the_rest_refused(
        client: OpenAI, finished_job: openai.types.fine_tuning.FineTuningJob) -> None:
    model = str(finished_job.fine_tuned_model)
    messages = chat(*TOY[0])["messages"][:-1]  # type: ignore[index]

    def ask(**extra: object) -> openai.types.chat.ChatCompletion:
        return client.chat.completions.create(  # type: ignore[call-overload, no-any-return]
            model=model, messages=messages, temperature=0, max_tokens=3, logprobs=True,
            **extra)

    plain = ask()
    assert plain.choices[0].logprobs is not None
    first = plain.choices[0].logprobs.content[0].token
    # ban the greedy first token: another one comes first
    banned = ask(logit_bias=_bias_against(first))
    assert banned.choices[0].logprobs is not None
    assert banned.choices[0].logprobs.content[0].token != first
    same = ask(top_p=0.5, frequency_penalty=0.0, presence_penalty=0.0)  # accepted, no change
    assert same.choices[0].message.content == plain.choices[0].message.content
    for extra, param in [({"response_format": {"type": "json_object"}}, "response_format"),
                         ({"tools": [{"type": "function", "function": {"name": "f"}}]},
                          "tools"),
                         ({"top_p": 2}, "top_p"), ({"presence_penalty": 3}, "presence_penalty"),
                         ({"logit_bias": {"x": 1}}, "logit_bias"),
                         ({"logit_bias": {"5": 101}}, "logit_bias")]:
        with pytest.raises(openai.BadRequestError) as err:
            ask(**extra)
        assert err.value.body["param"] == param, extra  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=model, messages=messages, stream=True,
                                       stream_options="x")  # type: ignore[arg-type]
    assert err.value.body["param"] == "stream_options"  # type: ignore[index]


def _bias_against(token: str) -> dict[str, int]:
    """-100 on the ids of ``token`` (found through the tokenizer ftlens serves with)."""
    from ftlens.train import models

    tok = models.load_tokenizer(models.resolve("tiny-random-llama"))
    return {str(i): -100 for i in tok(token, add_special_tokens=False)["input_ids"]}


def test_fifty_concurrent_chat_requests(client: OpenAI,
                                        finished_job: openai.types.fine_tuning.FineTuningJob
                                        ) -> None:
    model = finished_job.fine_tuned_model
    assert model is not None
    prompts = [chat(f"message number {i}", "ham")["messages"][:-1]  # type: ignore[index]
               for i in range(50)]

    def ask(messages: list[dict[str, str]]) -> str:
        reply = client.chat.completions.create(model=model, messages=messages, temperature=0,
                                               max_tokens=4, seed=1)
        return reply.choices[0].message.content or ""

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        together = list(pool.map(ask, prompts))
    assert len(together) == 50
    assert [ask(p) for p in prompts[:3]] == together[:3]  # batching changes no answer


def _training(client: OpenAI, data: bytes, hyperparameters: dict[str, int]
              ) -> openai.types.fine_tuning.FineTuningJob:
    """A tiny-model job that has logged its first training step."""
    train = client.files.create(file=("t.jsonl", io.BytesIO(data)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=train.id,
                                         hyperparameters=hyperparameters)
    _wait(client, job.id, ("running",))
    while not [e for e in client.fine_tuning.jobs.list_events(job.id) if e.type == "metrics"]:
        time.sleep(0.1)
    return job


def test_cancel_a_second_job(client: OpenAI) -> None:
    job = _training(client, TRAIN * 20, {"n_epochs": 5, "batch_size": 1})
    client.fine_tuning.jobs.cancel(job.id)
    done = _wait(client, job.id, ("cancelled",), seconds=60)
    assert done.fine_tuned_model is None
    assert client.fine_tuning.jobs.list_events(job.id).data[0].message == (
        "The job has been cancelled")
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)


def test_jobs_list_pages_and_filters_by_metadata(
        client: OpenAI, finished_job: openai.types.fine_tuning.FineTuningJob) -> None:
    jobs = list(client.fine_tuning.jobs.list(limit=1))  # the SDK follows the pages
    assert finished_job.id in [j.id for j in jobs] and len(jobs) >= 2
    tagged = client.fine_tuning.jobs.list(metadata={"team": "risk"}).data
    assert [j.id for j in tagged] == [finished_job.id]


def test_error_shapes(client: OpenAI, service: Service) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.fine_tuning.jobs.retrieve("ftjob-" + "0" * 24)
    assert err.value.body["param"] == "fine_tuning_job_id"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.jobs.create(model="gpt-4o", training_file="file-" + "0" * 24)
    assert bad.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="tiny-random-llama", messages=[
            {"role": "user", "content": "hi"}], top_logprobs=25, logprobs=True)
    assert bad.value.body["param"] == "top_logprobs"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user",
                                                                 "content": "hi"}])
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=service.url, api_key="wrong", max_retries=0).models.list()


def test_pause_and_resume_a_job(client: OpenAI) -> None:
    job = _training(client, TRAIN * 3, {"n_epochs": 2, "batch_size": 2})
    client.fine_tuning.jobs.pause(job.id)
    paused = _wait(client, job.id, ("paused", "succeeded"), seconds=60)
    assert paused.status == "paused", "the job ended before the pause took effect"
    steps_before = {e.data["step"] for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
                    if e.type == "metrics"}  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.pause(job.id)
    client.fine_tuning.jobs.resume(job.id)
    done = _wait(client, job.id, ("succeeded",))
    steps = [e.data["step"] for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
             if e.type == "metrics"]  # type: ignore[index]
    assert sorted(steps) == list(range(1, 37)) and max(steps_before) < 36  # none twice
    assert done.fine_tuned_model and done.trained_tokens
