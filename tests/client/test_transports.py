"""The lean aiohttp path of ``ftlens eval`` against the openai SDK it is held to: the same
bytes and headers on the wire, and the same parsed answers and logprobs from a real
``ftlens serve``. (Their error mapping is checked fault by fault in test_runner_faults.py,
which runs every test on both.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.client.test_runner_faults import KEY, make_jobs
from tests.support.fake_openai import FakeOpenAI
from tests.support.service import KEY as SERVICE_KEY
from tests.support.service import Service

from ftlens.client.endpoint import Endpoint
from ftlens.client.runner import Job, Runner
from ftlens.client.transport import TRANSPORTS
from ftlens.io.response_cache import ResponseCache

WIRE = ("authorization", "content-type")  # the headers that matter


def _run(endpoint: Endpoint, cache: Path, jobs: list[Job], transport: str,
         concurrency: int = 4) -> list[Any]:
    with ResponseCache(cache) as c:
        return asyncio.run(Runner(endpoint, c, concurrency=concurrency,
                                  transport=transport).run(jobs))


def test_both_paths_send_the_same_bytes_and_headers(tmp_path: Path) -> None:
    sent: dict[str, list[tuple[bytes, tuple[str, ...]]]] = {}
    for transport in TRANSPORTS:
        with FakeOpenAI() as server:
            _run(Endpoint(server.base_url, KEY), tmp_path / f"{transport}.db", make_jobs(20),
                 transport)
            sent[transport] = sorted((raw, tuple(h.get(k, "") for k in WIRE))
                                     for raw, h in server.received)
    assert len(sent["http"]) == 20
    assert sent["http"] == sent["sdk"]
    assert all(h == (f"Bearer {KEY}", "application/json") for _, h in sent["http"])


def test_both_paths_parse_the_same_answers_and_logprobs_from_ftlens_serve(
        service: Service, tmp_path: Path) -> None:
    endpoint = Endpoint(service.url, SERVICE_KEY, timeout=120)
    jobs = [Job({"model": "tiny-random-llama", "temperature": 0, "max_tokens": 4,
                 "logprobs": True, "top_logprobs": 3, "seed": 1,
                 "messages": [{"role": "user", "content": f"message {i}"}]}, line=i + 1)
            for i in range(6)]
    # one at a time: requests decoded together in one batch may differ in the last digits
    got = {t: _run(endpoint, tmp_path / f"{t}.db", jobs, t, concurrency=1) for t in TRANSPORTS}
    for http, sdk in zip(got["http"], got["sdk"], strict=True):
        assert http["choices"] == sdk["choices"]  # text, finish reason, logprobs
        assert http["usage"] == sdk["usage"]
        assert http["choices"][0]["logprobs"]["content"][0]["top_logprobs"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_key_reads_the_same_on_both_paths(service: Service, tmp_path: Path,
                                                  transport: str) -> None:
    from ftlens.errors import BackendError

    endpoint = Endpoint(service.url, "sk-wrong-key-123456")
    with pytest.raises(BackendError) as err:
        _run(endpoint, tmp_path / "c.db", make_jobs(2, model="tiny-random-llama"), transport)
    assert err.value.status_code == 401
    assert "refused the API key (401 Unauthorized)" in err.value.message
    assert "sk-wrong-key-123456" not in err.value.message
