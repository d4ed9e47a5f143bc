"""Every request body is checked against its typed model before a handler runs: a wrong type
or range is a 400 naming the parameter, an unexpected failure a 500 that says only "internal
error" and the request's id, a prompt over the model's context OpenAI's
``context_length_exceeded`` (issue 19)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx2 as httpx
import openai
import pytest
from openai import OpenAI
from tests.support.service import KEY, Service

from ftlens.server.inference import Batcher

CHAT = {"model": "tiny-random-llama", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2, "temperature": 0}
JOB = {"model": "tiny-random-llama", "training_file": "file-x"}


def _post(service: Service, path: str, body: Any, raw: bool = False) -> httpx.Response:
    content = body if raw else json.dumps(body)
    return httpx.post(service.url + path, content=content, timeout=60,
                      headers={"Authorization": f"Bearer {KEY}",
                               "Content-Type": "application/json"})


@pytest.mark.parametrize(("path", "body", "param", "words"), [
    # the cases that answered 500 with the exception's text
    ("/chat/completions", {**CHAT, "stream_options": "x"}, "stream_options", "dictionary"),
    ("/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [
        {"type": "text", "text": 5}]}]}, "messages[0].content[0].text", "string"),
    ("/chat/completions", {**CHAT, "stop": 5}, "stop", "string"),
    ("/chat/completions", {**CHAT, "seed": 2**80}, "seed", "less than or equal"),
    ("/fine_tuning/jobs", {**JOB, "method": {"type": "supervised", "supervised": "x"}},
     "method.supervised", "dictionary"),
    ("/fine_tuning/jobs", {**JOB, "hyperparameters": [1, 2]}, "hyperparameters", "dictionary"),
    # more of the same kind
    ("/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [
        {"type": "text"}]}]}, "messages[0].content[0].text", "field required"),
    ("/chat/completions", {**CHAT, "messages": [{"role": "robot", "content": "x"}]},
     "messages[0].role", "'user'"),
    ("/chat/completions", {**CHAT, "messages": []}, "messages", "at least 1"),
    ("/chat/completions", {**CHAT, "temperature": "0.5"}, "temperature", "number"),
    ("/chat/completions", {**CHAT, "max_tokens": 2.5}, "max_tokens", "integer"),
    ("/chat/completions", {**CHAT, "logprobs": 1}, "logprobs", "boolean"),
    ("/chat/completions", {**CHAT, "logit_bias": {"5": "x"}}, "logit_bias", "number"),
    ("/chat/completions", {**CHAT, "temperature": 7}, "temperature", "from 0 to 2"),
    ("/chat/completions", {**CHAT, "wibble": 1}, "wibble", "Unrecognized request argument"),
    ("/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "x",
                                                 "colour": "red"}]},
     "messages[0].colour", "Unrecognized"),
    ("/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages[0].content[0]", "image_url parts are not supported"),
    ("/chat/completions", {**CHAT, "messages": [{"role": "tool", "content": "x",
                                                 "tool_call_id": "c1"}]},
     "messages[0]", "function calling"),
    ("/chat/completions", {**CHAT, "reasoning_effort": "high"}, "reasoning_effort",
     "not supported"),
    ("/chat/completions", {**CHAT, "store": True}, "store", "not supported"),
    ("/chat/completions", {**CHAT, "model": None}, "model", "string"),
    ("/fine_tuning/jobs", {**JOB, "seed": -1}, "seed", "greater than or equal"),
    ("/fine_tuning/jobs", {**JOB, "suffix": 5}, "suffix", "string"),
    ("/fine_tuning/jobs", {**JOB, "compute_classification_metrics": "yes"},
     "compute_classification_metrics", "boolean"),
    ("/fine_tuning/jobs", {"training_file": "file-x"}, "model", "field required"),
    ("/batches", {"input_file_id": 5, "endpoint": "/v1/chat/completions",
                  "completion_window": "24h"}, "input_file_id", "string"),
])
def test_a_wrong_type_or_range_is_a_400_naming_the_parameter(
        service: Service, path: str, body: dict[str, Any], param: str, words: str) -> None:
    response = _post(service, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"], error
    assert "Error" not in error["message"]  # no Python exception names


@pytest.mark.parametrize(("raw", "words"), [
    ('{"model": "tiny-random-llama", "messages": [', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(service: Service, raw: str,
                                                     words: str) -> None:
    for path in ("/chat/completions", "/fine_tuning/jobs", "/batches"):
        response = _post(service, path, raw, raw=True)
        assert response.status_code == 400 and words in response.json()["error"]["message"]


def test_the_sdk_sees_a_bad_parameter_as_bad_request(service: Service) -> None:
    client = OpenAI(base_url=service.url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny-random-llama", stop=5,  # type: ignore[arg-type]
                                       messages=[{"role": "user", "content": "x"}])
    assert err.value.param == "stop"
    answer = client.chat.completions.create(  # developer messages are system messages
        model="tiny-random-llama", max_tokens=2, temperature=0,
        messages=[{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    assert answer.choices[0].finish_reason in ("stop", "length")


def test_an_unexpected_failure_says_only_internal_error_with_the_request_id(
        service: Service, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: Any) -> Any:  # a fault the real model does not make on demand
        raise RuntimeError("cuda lost at /srv/secret/weights.bin")

    monkeypatch.setattr(Batcher, "_run", broken)
    with caplog.at_level(logging.ERROR, logger="ftlens.server"):
        response = _post(service, "/chat/completions", CHAT)
    assert response.status_code == 500
    ident = response.headers["x-request-id"]
    assert ident.startswith("req_")
    assert response.json()["error"] == {"message": f"internal error (request id {ident})",
                                        "type": "server_error", "param": None, "code": None}
    logged = [r for r in caplog.records if ident in r.getMessage()]
    assert logged and "cuda lost" in str(logged[0].exc_info[1])  # the log alone has it


def test_every_answer_carries_a_request_id(service: Service) -> None:
    ok = httpx.get(service.url + "/models", headers={"Authorization": f"Bearer {KEY}"})
    bad = _post(service, "/chat/completions", {**CHAT, "stop": 5})
    ids = {ok.headers["x-request-id"], bad.headers["x-request-id"]}
    assert len(ids) == 2 and all(i.startswith("req_") for i in ids)


def test_a_prompt_over_the_context_is_refused_at_once(service: Service) -> None:
    client = OpenAI(base_url=service.url, api_key=KEY, max_retries=0)
    long = "hi " * 3000  # the tiny model's context is 2048
    start = time.monotonic()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="tiny-random-llama", max_tokens=200,
                                       messages=[{"role": "user", "content": long}])
    assert err.value.code == "context_length_exceeded" and err.value.param == "messages"
    assert "maximum context length is 2048 tokens" in err.value.message
    assert time.monotonic() - start < 20  # not decoded (200 steps over 3000 tokens)
    for stream in (False, True):  # streaming too: the status comes before any chunk
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="tiny-random-llama", stream=stream,
                                           messages=[{"role": "user", "content": long}])


def test_an_answer_stops_where_the_context_ends(service: Service) -> None:
    client = OpenAI(base_url=service.url, api_key=KEY, max_retries=0)
    words = "hi " * 1990
    probe = client.chat.completions.create(model="tiny-random-llama", max_tokens=1,
                                           messages=[{"role": "user", "content": words}])
    n_prompt = probe.usage.prompt_tokens  # type: ignore[union-attr]
    assert 1900 < n_prompt < 2040
    answer = client.chat.completions.create(
        model="tiny-random-llama", max_tokens=4000, temperature=1.0, seed=1,
        logit_bias={"0": -100, "1": -100, "2": -100},  # SmolLM2's end tokens: keep talking
        messages=[{"role": "user", "content": words}])
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 2048 - n_prompt  # type: ignore[union-attr]


def test_a_bias_on_a_token_the_model_lacks_is_a_400(service: Service) -> None:
    response = _post(service, "/chat/completions", {**CHAT, "logit_bias": {"99999999": 5}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "logit_bias" and "vocabulary" in error["message"]


def test_a_model_named_like_an_unknown_users_home_is_not_found(service: Service) -> None:
    """``~someone`` cannot be expanded when there is no such user: the model is not known,
    on every route that names one (it was a 500; found by the API fuzz test)."""
    name = "~ftlens-no-such-user"
    headers = {"Authorization": f"Bearer {KEY}"}
    for method in ("GET", "DELETE"):
        response = httpx.request(method, f"{service.url}/models/{name}", headers=headers)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["param"] == "model"
    response = _post(service, "/chat/completions", {**CHAT, "model": name})
    assert response.status_code == 404 and response.json()["error"]["code"] == (
        "model_not_found")
    response = _post(service, "/fine_tuning/jobs", {**JOB, "model": name + "/x"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "model" and "is not known here" in error["message"]


def test_the_schema_documents_the_answers_as_they_are_given(service: Service) -> None:
    """The OpenAPI schema (which the fuzz test generates requests from and checks answers
    against) says what the service answers: errors in OpenAI's shape, never FastAPI's 422,
    a file's content as bytes and a streamed completion as server-sent events."""
    doc = httpx.get(service.url.removesuffix("/v1") + "/openapi.json",
                    headers={"Authorization": f"Bearer {KEY}"}).json()
    operations = [op for path in doc["paths"].values() for op in path.values()]
    assert len(operations) >= 20
    for op in operations:
        assert "422" not in op["responses"], op["operationId"]  # a refused body is a 400
        error = op["responses"]["default"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorBody"}, op["operationId"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    detail = doc["components"]["schemas"]["ErrorDetail"]
    bad = _post(service, "/chat/completions", {**CHAT, "stop": 5}).json()
    assert set(bad) == {"error"} and set(bad["error"]) == set(detail["required"]) == set(
        detail["properties"])
    answers = {path: doc["paths"][path][method]["responses"]["200"]["content"] for path, method
               in (("/v1/files/{file_id}/content", "get"), ("/v1/chat/completions", "post"))}
    assert list(answers["/v1/files/{file_id}/content"]) == ["application/octet-stream"]
    assert set(answers["/v1/chat/completions"]) == {"application/json", "text/event-stream"}


def test_a_method_the_path_lacks_is_a_405_naming_every_method_it_has(service: Service) -> None:
    """RFC 9110's ``Allow`` header, with the methods of every route of the path (a file has
    GET and DELETE, on two routes); it was missing (found by the API fuzz test)."""
    headers = {"Authorization": f"Bearer {KEY}"}
    for method, path, allowed in (("PUT", "/files/file-x", {"GET", "DELETE"}),
                                  ("PATCH", "/models", {"GET"}),
                                  ("GET", "/chat/completions", {"POST"})):
        response = httpx.request(method, service.url + path, headers=headers)
        assert response.status_code == 405, response.text
        assert set(response.headers["allow"].split(", ")) == allowed, path
        assert response.json()["error"]["message"] == "Method Not Allowed"


def test_json_nested_thousands_deep_is_a_400_not_a_500(service: Service) -> None:
    """Python's json gives up on such nesting with RecursionError, not ValueError: a file's
    JSON ``expires_after`` and a ``batch`` file's line were 500s (found by hand, beside the
    API fuzz test); a body and a fine-tune file's line were 400s already."""
    deep = "[" * 100_000
    headers = {"Authorization": f"Bearer {KEY}"}
    deep_line = ('{"custom_id": "a", "body": ' + "[" * 50_000 + "]" * 50_000 + "}\n").encode()
    for purpose, data, param, words in (
            ("fine-tune", {"expires_after": deep}, "expires_after", "expires_after must be"),
            ("batch", {}, "file", "line 1: not valid JSON (nested too deeply)"),
            ("fine-tune", {}, "file", "line 1: not valid JSON")):
        response = httpx.post(service.url + "/files", headers=headers, timeout=60,
                              files={"file": ("a.jsonl", deep_line)},
                              data={"purpose": purpose, **data})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param and words in error["message"], error
    for path in ("/chat/completions", "/fine_tuning/jobs", "/batches"):
        assert _post(service, path, deep, raw=True).status_code == 400
