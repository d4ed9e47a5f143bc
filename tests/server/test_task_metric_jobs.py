"""Task metrics asked for through the official openai SDK with the legacy fine-tunes API's
fields (``extra_body``): the job shows them, its metrics events, checkpoints and result file
carry ``classification/*``; a job that cannot have them is a 400 naming the field."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from tests.support.jobs import upload_rows
from tests.support.service import KEY, Service
from tests.support.toy_chat import TOY, TOY_PREFERENCES, chat, distinct

from ftlens.io.training_logs import read_run

HYPER = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 10}


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def spam_files(client: OpenAI) -> tuple[str, str]:
    return (upload_rows(client, [chat(t, y) for t, y in TOY]),
            upload_rows(client, distinct(12, seed=3)))


def test_a_job_with_task_metrics_reports_them_where_openai_did(
        client: OpenAI, spam_files: tuple[str, str], tmp_path: Path) -> None:
    train, valid = spam_files
    job = client.fine_tuning.jobs.create(
        model="tiny-random-llama", training_file=train, validation_file=valid, seed=2,
        hyperparameters=HYPER, extra_body={"compute_classification_metrics": True,
                                           "classification_positive_class": "Spam",
                                           "classification_betas": [0.5, 2]})
    extra = job.model_dump()
    assert extra["compute_classification_metrics"] is True
    assert extra["classification_positive_class"] == "spam"  # matched as labels are
    assert extra["classification_n_classes"] == 2
    assert extra["classification_betas"] == [0.5, 2.0]
    deadline = time.monotonic() + 300
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    events = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
              if e.type == "metrics"]
    scored = [e.data for e in events if "classification/rows" in (e.data or {})]
    assert scored and all("classification/f0.5" in d and "classification/f2.0" in d
                          and "classification/recall/spam" in d for d in scored)
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    last = checkpoints[0].metrics.model_dump()
    assert last["classification/rows"] == 12  # the epoch end: every validation row
    csv = base64.b64decode(client.files.content(job.result_files[0]).read()).decode()
    assert "classification/auroc" in csv.splitlines()[0]
    (tmp_path / "results.csv").write_text(csv, encoding="utf-8")
    run = read_run(tmp_path / "results.csv")
    final = run.task_metrics["classification/accuracy"]
    assert final.values[-1] == pytest.approx(last["classification/accuracy"], rel=1e-5)


@pytest.mark.parametrize(("extra", "param", "words"), [
    ({"compute_classification_metrics": True, "classification_positive_class": "fraud"},
     "classification_positive_class", "'fraud' is not one of the labels ham, spam"),
    ({"compute_classification_metrics": True, "classification_n_classes": 3},
     "classification_n_classes", "3 classes were asked for, but the answers hold 2"),
    ({"compute_classification_metrics": True, "classification_betas": [0]},
     "classification_betas", "positive numbers"),
    ({"compute_classification_metrics": True, "classification_betas": "1"},
     "classification_betas", "valid list"),
    ({"compute_classification_metrics": "yes"}, "compute_classification_metrics",
     "valid boolean"),
    ({"classification_positive_class": "spam"}, "classification_positive_class",
     "set compute_classification_metrics to true"),
])
def test_task_metric_fields_that_do_not_fit_are_a_400_naming_them(
        client: OpenAI, spam_files: tuple[str, str], extra: dict[str, Any], param: str,
        words: str) -> None:
    train, valid = spam_files
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=train,
                                       validation_file=valid, extra_body=extra)
    body = err.value.body
    assert isinstance(body, dict) and body["param"] == param
    assert words in body["message"]


def test_free_text_answers_no_validation_file_or_dpo_are_refused(
        client: OpenAI, spam_files: tuple[str, str]) -> None:
    train, _ = spam_files
    free = upload_rows(client, [chat(f"say something about {w}", f"{w} is lovely today, {i} times")
                            for i, w in enumerate(["rain", "snow", "sun", "wind", "fog"] * 2)])
    on = {"compute_classification_metrics": True}
    cases = [(dict(training_file=free, validation_file=free), "validation_file",
              "small label set"),
             (dict(training_file=train), "validation_file", "has none"),
             (dict(training_file=upload_rows(client, TOY_PREFERENCES), method={"type": "dpo"}),
              "compute_classification_metrics", "dpo job")]
    for args, param, words in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model="tiny-random-llama", extra_body=on,
                                           **args)  # type: ignore[arg-type]
        body = err.value.body
        assert isinstance(body, dict) and body["param"] == param, body
        assert words in body["message"], body
    assert not any(j.training_file == free for j in client.fine_tuning.jobs.list())
