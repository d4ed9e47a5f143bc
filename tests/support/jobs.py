"""A fine-tuning job run to its end through the openai SDK, for tests that need a tuned
model on a service."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from openai import OpenAI
from tests.support.toy_chat import TOY, chat


def finish_job(client: OpenAI, model: str = "tiny-random-llama",
               rows: list[dict[str, Any]] | None = None, *, seconds: float = 300,
               **hyperparameters: Any) -> Any:
    """Upload ``rows`` (default: the toy spam set), fine-tune ``model`` on them and wait
    until the job ends; returns the job, whatever its status."""
    data = "".join(json.dumps(r) + "\n" for r in rows or [chat(t, y) for t, y in TOY])
    file = client.files.create(file=("train.jsonl", io.BytesIO(data.encode())),
                               purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=model, training_file=file.id, seed=1,
        hyperparameters=hyperparameters or {"n_epochs": 1, "batch_size": 4})
    deadline = time.monotonic() + seconds
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job.status
        time.sleep(0.3)
        job = client.fine_tuning.jobs.retrieve(job.id)
    return job


def upload_rows(client: OpenAI, rows: list[dict[str, Any]], name: str = "data.jsonl") -> str:
    """``rows`` as a JSONL fine-tune file; its id."""
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune").id
