"""The Batch API with the official openai SDK against a real ``ftlens serve``: upload, create,
poll, download the output and error files; refusals; cancel; and ``kill -9`` mid-batch, then a
restart that finishes it with every request answered once."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion
from tests.support.service import KEY, Service, start_service_process, stop_service_process

from ftlens.server.store import Store, new_id

MODEL = "tiny-random-llama"


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[OpenAI]:
    with OpenAI(base_url=service.url, api_key=KEY, max_retries=0) as c:
        yield c


def request(custom_id: str, text: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": MODEL, "temperature": 0, "max_tokens": 3,
                     "messages": [{"role": "user", "content": text}], **body}}


def upload(client: OpenAI, lines: list[str], purpose: Any = "batch") -> str:
    data = ("\n".join(lines) + "\n").encode()
    return client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose=purpose).id


def register_unchecked(service: Service, lines: list[str]) -> str:
    """A batch file put straight into the store, as one uploaded before uploads were
    checked: the runner's own line checks still answer it."""
    store = Store(service.home)
    file_id, data = new_id("file"), ("\n".join(lines) + "\n").encode()
    store.write_file(file_id, data)
    store.add_file(file_id, "requests.jsonl", "batch", len(data))
    return file_id


def until(check: Callable[[], Any], seconds: float = 240) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def finished(client: OpenAI, batch_id: str) -> Any:
    return until(lambda: (b := client.batches.retrieve(batch_id)).status in (
        "completed", "failed", "cancelled", "expired") and b)


def read_lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()]


def test_a_batch_answers_every_good_line_and_names_every_bad_one(
        client: OpenAI, service: Service) -> None:
    good = [request(f"q{i}", f"message {i}", logprobs=True, top_logprobs=2)
            for i in range(12)]
    lines = [json.dumps(r) for r in good]
    bad = {  # inserted at these 1-based lines of the file
        3: ('{"custom_id": "cut", "method": "POST"', None, "invalid_json_line"),
        6: (json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {}}), None,
            "missing_custom_id"),
        8: (json.dumps({**request("q0", "again")}), "q0", "duplicate_custom_id"),
        10: (json.dumps({**request("url", "x"), "url": "/v1/embeddings"}), "url", "invalid_url"),
        12: (json.dumps(request("model", "x", model="no-such-model")), "model",
             "model_not_found"),
        14: (json.dumps(request("temp", "x", temperature=7)), "temp", None),
        16: ("[1, 2]", None, "invalid_request"),
    }
    for number in sorted(bad):
        lines.insert(number - 1, bad[number][0])
    file_id = register_unchecked(service, lines)  # an upload now refuses the file
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"run": "nightly"})
    assert batch.id.startswith("batch_") and batch.status == "validating"
    assert batch.metadata == {"run": "nightly"}
    done = finished(client, batch.id)
    assert done.status == "completed", done.errors
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed,
            done.request_counts.failed) == (19, 12, 7)
    assert done.model == MODEL and done.in_progress_at and done.completed_at

    out = read_lines(client, done.output_file_id)
    assert [x["custom_id"] for x in out] == [r["custom_id"] for r in good]  # input order
    for x in out:
        assert x["error"] is None and x["response"]["status_code"] == 200
        assert x["id"].startswith("batch_req_") and x["response"]["request_id"]
        completion = ChatCompletion.model_validate(x["response"]["body"])
        assert completion.choices[0].logprobs is not None
        assert len(completion.choices[0].logprobs.content or []) >= 1
        assert all(len(t.top_logprobs) == 2 for t in completion.choices[0].logprobs.content
                   or [])
        assert completion.usage is not None and completion.usage.completion_tokens <= 3

    errors = read_lines(client, done.error_file_id)
    assert len(errors) == len(bad)
    for x, number in zip(errors, sorted(bad), strict=True):
        _, custom_id, code = bad[number]
        assert x["custom_id"] == custom_id
        if code is not None:
            assert x["error"]["code"] == code
        if x["response"] is None:  # not a request at all: the message names the line
            assert x["error"]["message"].startswith(f"line {number}: ")
        else:  # a request the endpoint refuses: its status and OpenAI's error body
            assert x["response"]["status_code"] in (400, 404)
            assert x["response"]["body"]["error"]["message"] == x["error"]["message"]
    temp = next(x for x in errors if x["custom_id"] == "temp")
    assert temp["response"]["body"]["error"]["param"] == "temperature"

    assert client.batches.retrieve(batch.id).output_file_id == done.output_file_id
    listed = [b.id for b in client.batches.list(limit=100)]
    assert batch.id in listed
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"


@pytest.mark.parametrize(("line", "says"), [
    ('{"custom_id": "cut", "method": "POST"', "not valid JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    (json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {}}), "custom_id"),
    (json.dumps(request("q0", "again")), "custom_id 'q0' is used by an earlier line"),
    (json.dumps({**request("g", "x"), "method": "GET"}), "method must be 'POST'"),
    (json.dumps({**request("u", "x"), "url": "/v1/embeddings"}), "url '/v1/embeddings'"),
    (json.dumps({**request("b", "x"), "body": "hi"}), "body must be"),
])
def test_a_batch_file_that_is_not_requests_is_refused_at_upload_naming_its_line(
        client: OpenAI, service: Service, line: str, says: str) -> None:
    lines = [json.dumps(request("q0", "first")), json.dumps(request("q1", "second")), line]
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, lines)
    body = err.value.body
    assert isinstance(body, dict) and body["param"] == "file"
    assert body["message"].startswith("requests.jsonl, line 3: ") and says in body["message"]
    assert str(service.home) not in body["message"]
    # the request-level checks (model, sampling values) stay the batch's: such a file uploads
    upload(client, [json.dumps(request("m", "x", model="no-such-model", temperature=7))])


def test_an_empty_batch_file_is_refused_at_upload(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="holds no requests") as err:
        upload(client, ["", "  "])
    assert err.value.body["param"] == "file"  # type: ignore[index]


@pytest.mark.parametrize(("change", "param"), [
    ({"endpoint": "/v1/embeddings"}, "endpoint"),
    ({"completion_window": "1h"}, "completion_window"),
    ({"input_file_id": "file-000000000000000000000000"}, "input_file_id"),
    ({"metadata": {"k": 1}}, "metadata"),
])
def test_a_batch_that_cannot_run_is_refused_naming_the_parameter(
        client: OpenAI, change: dict[str, Any], param: str) -> None:
    file_id = upload(client, [json.dumps(request("a", "b"))])
    args: dict[str, Any] = {"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                            "completion_window": "24h", **change}
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(**args)
    assert err.value.body["param"] == param  # type: ignore[index]


def test_the_input_file_must_have_purpose_batch(client: OpenAI) -> None:
    rows = [{"messages": [{"role": "user", "content": "hi"},
                          {"role": "assistant", "content": "ham"}]}] * 10
    file_id = upload(client, [json.dumps(r) for r in rows], purpose="fine-tune")
    with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                              completion_window="24h")


def test_unknown_batch_ids_are_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_" + "0" * 24)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("../../etc/passwd")


def test_a_cancelled_batch_keeps_what_it_answered(client: OpenAI) -> None:
    lines = [json.dumps(request(f"c{i}", f"text {i}", max_tokens=8)) for i in range(2000)]
    batch = client.batches.create(input_file_id=upload(client, lines),
                                  endpoint="/v1/chat/completions", completion_window="24h")
    until(lambda: (client.batches.retrieve(batch.id).request_counts.completed or 0) > 0)
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at and done.cancelling_at
    assert done.request_counts is not None
    assert 0 < done.request_counts.completed < 2000
    out = read_lines(client, done.output_file_id)
    assert len(out) == done.request_counts.completed
    assert len({x["custom_id"] for x in out}) == len(out)
    with pytest.raises(openai.BadRequestError, match="cancelled"):
        completed = client.batches.create(input_file_id=upload(client, lines[:1]),
                                          endpoint="/v1/chat/completions",
                                          completion_window="24h")
        finished(client, completed.id)
        client.batches.cancel(completed.id)  # a completed batch cannot be cancelled


def test_a_batch_cut_by_kill_9_finishes_after_the_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    n = 3000
    lines = [json.dumps(request(f"r{i}", f"restart {i}", max_tokens=6)) for i in range(n)]
    svc = start_service_process(home, "--workers", "0")
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        batch_id = client.batches.create(input_file_id=upload(client, lines),
                                         endpoint="/v1/chat/completions",
                                         completion_window="24h").id
        until(lambda: ((store.get_batch(batch_id) or {}).get("request_counts") or {}).get(
            "completed", 0) > 0)
    finally:
        stop_service_process(svc)
    cut = store.get_batch(batch_id)
    assert cut is not None and cut["status"] == "in_progress"
    assert 0 < cut["request_counts"]["completed"] < n
    svc = start_service_process(home, "--workers", "0")
    try:
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        done = finished(client, batch_id)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (n, 0)
        out = read_lines(client, done.output_file_id)
        assert [x["custom_id"] for x in out] == [f"r{i}" for i in range(n)]  # each once
        assert done.error_file_id is None
    finally:
        stop_service_process(svc)
