"""The service fuzzed from its own OpenAPI schema (schemathesis): no request, however
malformed, is a server error, and every answer is what the schema says it is.

Counts (schemathesis 4.32.5): 23 operations, 1821 cases a run, each operation's coverage
cases and 40 random ones: POST /v1/chat/completions 479, POST /v1/fine_tuning/jobs 263,
POST /v1/batches 87, the 20 others 10 to 63 each. Found and fixed, each with a plain test
(tests/server/test_wire_validation.py, tests/train/test_registry.py): a model named
``~someone`` was a 500 (the model routes, chat completions, job creation) and a 405 had no
``Allow`` header.

The schema is the one the service serves at ``/openapi.json``: the typed request models of
:mod:`ftlens.server.wire_types` make it describe every body, the multipart upload included,
and every error is documented as OpenAI's error body. Every operation is fuzzed against a
real uvicorn server on loopback, with the API key and no job workers (a fuzzed job is
queued, never trained): schemathesis' coverage phase (each field's edge cases and wrong
types, missing fields, undeclared methods), then 40 random cases, positive and negative,
derandomized so that every run sends the same ones (``FTLENS_FUZZ_SEED=N`` and
``FTLENS_FUZZ_EXAMPLES=N`` explore further).

Random ids alone would only meet 404s, so before each operation the test uploads a fine-tune
file and a batch file and creates a job and a batch, and the random cases often get those
ids (and a known model, purpose, endpoint and completion window) in place of the generated
ones: the handlers then get past their lookups to the checks behind them (a chat completion
keeps its generated model: see ``NOT_SWAPPED``).

Checked on every answer: schemathesis' response checks (no 5xx, a status, content type,
headers and body as the schema documents them, a schema-invalid request refused with a 4xx,
a 405 with ``Allow``), except ``positive_data_acceptance``: a schema-valid request may still
name nothing that exists or ask for what ftlens refuses by name (``tools``), a 4xx as on
OpenAI."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from openai import OpenAI
from schemathesis.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from tests.support.service import KEY, serve
from tests.support.toy_chat import TOY, chat

from ftlens.server.app import create_app
from ftlens.server.embedded import embedded_service

AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLES = int(os.environ.get("FTLENS_FUZZ_EXAMPLES", "40"))  # random cases per operation
SEED = os.environ.get("FTLENS_FUZZ_SEED")  # unset: derandomized
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, negative_data_rejection,
          missing_required_header, unsupported_method]
MODEL = "tiny-random-llama"


def _served_schema() -> schemathesis.BaseSchema:
    """The schema as a service serves it (its routes do not depend on its home)."""
    config = schemathesis.Config.from_dict({
        "generation": {"max-examples": EXAMPLES, "deterministic": SEED is None},
        **({"seed": int(SEED)} if SEED else {})})
    with tempfile.TemporaryDirectory() as home, embedded_service(
            Path(home), api_key=KEY, workers=0) as url:
        return schemathesis.openapi.from_url(url.removesuffix("/v1") + "/openapi.json",
                                             config=config, headers=AUTH)


schema = _served_schema()
KNOWN: dict[str, list[Any]] = {}  # a parameter's name -> values that name seeded objects
ANSWERS: defaultdict[str, Counter[int]] = defaultdict(Counter)  # operation -> statuses


# a chat completion with a known model is decoded: the model's load and seconds a case, more
# than this test's budget; everything before the model's lookup is fuzzed all the same
NOT_SWAPPED = {("POST /v1/chat/completions", "model")}


def _sometimes_known(context: schemathesis.HookContext, container: Any
                     ) -> st.SearchStrategy[Any]:
    """The generated parameters or body, each value as generated or one of ``KNOWN``."""
    if not isinstance(container, dict) or not container:
        return st.just(container)
    label = context.operation.label if context.operation else ""
    return st.fixed_dictionaries({
        key: st.one_of(st.just(value), st.sampled_from(KNOWN[key]))
        if KNOWN.get(key) and (label, key) not in NOT_SWAPPED else st.just(value)
        for key, value in container.items()})


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: Any
                            ) -> st.SearchStrategy[Any]:
    return _sometimes_known(context, path_parameters)


@schema.hook
def flatmap_query(context: schemathesis.HookContext, query: Any) -> st.SearchStrategy[Any]:
    return _sometimes_known(context, query)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    return _sometimes_known(context, body)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for svc in serve(tmp_path_factory.mktemp("fuzz"), api_key=KEY, workers=0):
        yield svc.url.removesuffix("/v1")


@pytest.fixture
def seeded(root: str) -> Iterator[None]:
    """Fresh objects for one operation's cases (those of the last may be deleted or
    cancelled). The batch's request names no model here, so that running it loads none."""
    client = OpenAI(base_url=root + "/v1", api_key=KEY, max_retries=0)
    rows = "".join(json.dumps(chat(text, label)) + "\n" for text, label in TOY).encode()
    tuning = client.files.create(file=("train.jsonl", io.BytesIO(rows)), purpose="fine-tune")
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}}
    requests = client.files.create(file=("batch.jsonl", io.BytesIO(json.dumps(line).encode())),
                                   purpose="batch")
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=tuning.id)
    batch = client.batches.create(input_file_id=requests.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    files = [tuning.id, requests.id]
    KNOWN.update({
        "file_id": files, "training_file": files, "validation_file": files,
        "input_file_id": files, "job_id": [job.id], "batch_id": [batch.id],
        "after": [*files, job.id, batch.id], "model": [MODEL, "smollm2-135m-instruct"],
        "purpose": ["fine-tune", "batch"], "expires_after[anchor]": ["created_at"],
        "order": ["asc"], "endpoint": ["/v1/chat/completions"], "completion_window": ["24h"]})
    yield
    KNOWN.clear()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_request_is_a_server_error_or_answered_off_schema(
        case: schemathesis.Case, root: str, seeded: None) -> None:
    response = case.call(base_url=root, headers=AUTH, timeout=120)
    ANSWERS[case.operation.label][response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=AUTH)


def test_every_operation_was_fuzzed(tmp_path: Path) -> None:
    """Every route of the API is in the schema, and every operation of the schema was fuzzed
    (this test runs after the fuzz test, as pytest keeps a module's order)."""
    app = create_app(tmp_path, workers=0)  # the routes, not served
    routes = {f"{m} {r.path.replace(':path', '')}" for r in app.routes
              if isinstance(r, APIRoute) and r.path.startswith("/v1/") for m in r.methods}
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert operations == routes and set(ANSWERS) == operations
    for label, statuses in ANSWERS.items():
        assert 401 not in statuses and not any(s >= 500 for s in statuses), (label, statuses)
        if "{" in label:  # some cases found the seeded object (not only 404s)
            assert set(statuses) - {404, 405}, (label, statuses)
