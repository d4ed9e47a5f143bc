"""A job's Weights & Biases integration through the official openai SDK against a real
``ftlens serve``, with wandb in its offline mode (no network, no API key): the job shows its
integrations as given, the worker logs the training metrics to a wandb run (read back from
the run's ``.wandb`` file), and what cannot be honoured is a 400 naming ``integrations``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from tests.support.jobs import upload_rows
from tests.support.service import KEY, Service, serve
from tests.support.toy_chat import TOY, chat
from tests.support.wandb_log import history, run_info

from ftlens.server import integrations

SECRET = "wandb-key-0123456789abcdef0123456789abcdef"
WANDB = {"project": "spam-filter", "name": "toy-run", "entity": "risk-team",
         "tags": ["toy", "ci"]}


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wandb")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, wandb_dir: Path) -> Iterator[Service]:
    """The service with wandb offline; its worker inherits this environment."""
    with pytest.MonkeyPatch.context() as env:
        for key, folder in (("WANDB_DIR", ""), ("WANDB_CONFIG_DIR", "config"),
                            ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
            (wandb_dir / folder).mkdir(exist_ok=True)
            env.setenv(key, str(wandb_dir / folder))
        env.setenv("WANDB_MODE", "offline")
        env.setenv("WANDB_SILENT", "true")
        env.setenv("WANDB_API_KEY", SECRET)  # the service's own key: never shown anywhere
        yield from serve(tmp_path_factory.mktemp("service"), api_key=KEY, workers=1)


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0, timeout=120)


def _create(client: OpenAI, **extra: Any) -> Any:
    return client.fine_tuning.jobs.create(
        model="tiny-random-llama",
        training_file=upload_rows(client, [chat(t, y) for t, y in TOY]),
        validation_file=upload_rows(client, [chat(t + " ok", y) for t, y in TOY[:4]]),
        hyperparameters={"n_epochs": 2, "batch_size": 4}, **extra)


def test_the_training_metrics_go_to_a_wandb_run(client: OpenAI, service: Service,
                                                wandb_dir: Path) -> None:
    job = _create(client, integrations=[{"type": "wandb", "wandb": WANDB}])
    assert [i.model_dump() for i in job.integrations or []] == [
        {"type": "wandb", "wandb": WANDB}]
    deadline = time.monotonic() + 300
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in (
            "succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job.status
        time.sleep(0.3)
    assert job.status == "succeeded", job.error
    assert job.integrations is not None and job.integrations[0].wandb.project == "spam-filter"
    [run_file] = (wandb_dir / "wandb").glob("offline-run-*/run-*.wandb")
    run = run_info(run_file)
    assert (run.project, run.display_name, run.entity, list(run.tags)) == (
        "spam-filter", "toy-run", "risk-team", ["toy", "ci"])
    rows = history(run_file)
    events = {e.data["step"]: e.data  # type: ignore[index]
              for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
              if e.type == "metrics"}
    assert [r["_step"] for r in rows] == sorted(events) == list(range(1, 7))
    for row in rows:
        sent = events[row["_step"]]
        assert row["step"] == row["_step"]
        assert row["train_loss"] == pytest.approx(sent["train_loss"])
        if "valid_loss" in sent:
            assert row["valid_loss"] == pytest.approx(sent["valid_loss"])
    assert any("valid_loss" in r for r in rows)
    # the key the service runs with reaches neither the job, its events, nor any file
    shown = job.model_dump_json() + "".join(
        e.model_dump_json() for e in client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert SECRET not in shown
    for folder in (service.home, wandb_dir):  # the store, the job's files, wandb's logs
        assert not [p for p in folder.rglob("*") if p.is_file()
                    and SECRET.encode() in p.read_bytes()]


@pytest.mark.parametrize(("value", "param"), [
    ([{"type": "mlflow", "mlflow": {"project": "x"}}], "integrations[0].type"),
    ([{"type": "wandb"}], "integrations[0].wandb"),
    ([{"type": "wandb", "wandb": {"project": ""}}], "integrations[0].wandb.project"),
    ([{"type": "wandb", "wandb": {"project": "x", "api_key": SECRET}}],
     "integrations[0].wandb.api_key"),
    ([{"type": "wandb", "wandb": {"project": "x", "tags": "one"}}],
     "integrations[0].wandb.tags"),
    ({"type": "wandb"}, "integrations"),
])
def test_integrations_that_cannot_be_honoured_are_refused(client: OpenAI, value: Any,
                                                          param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        _create(client, integrations=value)
    body = err.value.body
    assert isinstance(body, dict) and body["param"] == param
    assert SECRET not in body["message"]
    if param.endswith("api_key"):  # where the key goes instead
        assert "WANDB_API_KEY" in body["message"]


def test_without_wandb_on_the_service_the_integration_is_refused_with_the_install_hint(
        client: OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integrations, "wandb_available", lambda: False)
    with pytest.raises(openai.BadRequestError, match=r"ftlens\[wandb\]") as err:
        _create(client, integrations=[{"type": "wandb", "wandb": {"project": "x"}}])
    assert err.value.body["param"] == "integrations"  # type: ignore[index]
    assert _create(client).integrations == []  # a job without one is unaffected
