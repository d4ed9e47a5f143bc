"""``ftlens eval --batch`` against a real ``ftlens serve`` on the bundled test set: the same
answers and metrics as without ``--batch``; a client interrupted while it waits follows the
same batch when run again and sends nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai import OpenAI
from tests.support import cli_run
from tests.support.service import KEY, Service, serve

from ftlens.client.batch import fill_cache_by_batches
from ftlens.client.endpoint import Endpoint
from ftlens.client.runner import Job
from ftlens.io.response_cache import ResponseCache

MODEL = "tiny-random-llama"
invoke, as_json, run_main = cli_run.helpers("eval")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from serve(tmp_path_factory.mktemp("batch-eval"), api_key=KEY, workers=0)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTLENS_TEST_KEY", KEY)


def evaluate(service: Service, data: Path, out: Path, *extra: str) -> dict[str, Any]:
    return as_json("--model", MODEL, "--data", str(data), "--base-url", service.url,
                   "--api-key-env", "FTLENS_TEST_KEY", "--max-tokens", "4",
                   "--cache", str(out.with_suffix(".sqlite")), "--out", str(out), *extra)


def predictions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_batched_and_direct_give_the_same_answers_and_metrics(
        service: Service, examples_dir: Path, tmp_path: Path) -> None:
    data = examples_dir / "spam" / "test.jsonl"
    direct = evaluate(service, data, tmp_path / "direct.jsonl")
    batched = evaluate(service, data, tmp_path / "batched.jsonl", "--batch")
    assert batched["run"]["batches"]["answered"] == 100
    assert batched["run"]["batches"]["failed"] == 0
    assert batched["run"]["requests"]["sent"] == 0  # every answer came from the batch
    assert direct["run"]["batches"] is None
    one, two = predictions(tmp_path / "direct.jsonl"), predictions(tmp_path / "batched.jsonl")
    assert [(r["id"], r["answer"], r["prediction"]) for r in one] == [
        (r["id"], r["answer"], r["prediction"]) for r in two]
    for a, b in zip(one, two, strict=True):  # the same up to float rounding in the kernels
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()),
                                   atol=1e-4)
    assert direct["metrics"] == batched["metrics"]
    assert direct["verdict"] == batched["verdict"]


def test_an_interrupted_client_follows_its_batch_when_run_again(
        service: Service, examples_dir: Path, tmp_path: Path) -> None:
    client = OpenAI(base_url=service.url, api_key=KEY, max_retries=0)
    before = len(client.batches.list(limit=100).data)
    jobs = [Job({"model": MODEL, "temperature": 0, "max_tokens": 2,
                 "messages": [{"role": "user", "content": f"resume {i}"}]}, i + 1)
            for i in range(40)]
    endpoint = Endpoint(service.url, KEY)

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    with ResponseCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C while it waits for the batch
            fill_cache_by_batches(endpoint, cache, jobs, poll_s=0.0, sleep=interrupt)
        assert len(cache) == 0
        (batch_id,) = cache.open_batches(endpoint.public, MODEL)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        stats = fill_cache_by_batches(endpoint, cache, jobs, poll_s=0.05)
        assert stats.batches == [batch_id] and stats.answered == 40
        assert len(cache) == 40 and cache.open_batches(endpoint.public, MODEL) == []
        again = fill_cache_by_batches(endpoint, cache, jobs)  # all cached: nothing sent
        assert again.batches == [] and again.answered == 0
    assert len(client.batches.list(limit=100).data) == before + 1  # one batch, never two
    client.close()


def test_an_endpoint_without_the_batch_api_says_so(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.fake_openai import FakeOpenAI  # chat completions only

    data = tmp_path / "t.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "ham"}]}) + "\n")
    with FakeOpenAI() as server:
        code, _, err = run_main(["--model", "m", "--data", str(data), "--base-url", server.base_url,
                                 "--batch", "--cache", str(tmp_path / "c.sqlite")], capsys)
    assert code == 2
    assert "failed (404)" in err and "no Batch API" in err and "without --batch" in err
