"""``ftlens eval --batch``: the requests not in the response cache yet go as batches (OpenAI's
Batch API, or ``ftlens serve``'s), one per model, instead of one by one.

Each request's ``custom_id`` is its cache key, so every answer of a batch's output file goes
into the response cache under the key the direct path would have used: the evaluation then
reads every answer from the cache exactly as without ``--batch`` (one code path; a request
that failed in the batch is sent directly, with the direct path's retries and errors). A
batch's id is kept in the cache the moment it is created, so a client killed while it waits
follows the same batch when run again and sends nothing twice. The files, batches and their
output go through the openai SDK."""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ftlens.client.endpoint import Endpoint, api_call
from ftlens.client.runner import Job, Progress, keyed
from ftlens.errors import BackendError, MissingDependencyError
from ftlens.io.response_cache import ResponseCache

CHAT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchStats:
    batches: list[str] = field(default_factory=list)  # followed this run
    answered: int = 0  # answers put in the cache
    failed: int = 0  # requests the batches did not answer (sent directly afterwards)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Pending:
    model: str
    jobs: dict[str, Job]  # cache key -> job: the requests whose answers to take from it
    sent_now: bool = True  # False: an earlier run's batch (it may hold other requests)


def fill_cache_by_batches(endpoint: Endpoint, cache: ResponseCache, jobs: Iterable[Job], *,
                          progress: Progress | None = None, poll_s: float = 0.5,
                          max_poll_s: float = 10.0,
                          sleep: Callable[[float], None] = time.sleep) -> BatchStats:
    """Answer ``jobs`` missing from ``cache`` through batches (see the module docstring)."""
    try:
        import openai
    except ImportError as exc:
        raise MissingDependencyError("openai", extra="serve") from exc
    client = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key,
                           max_retries=3, timeout=max(endpoint.timeout, 120))
    stats = BatchStats()
    by_model: dict[str, dict[str, Job]] = {}
    for job in keyed(endpoint.public, jobs):  # the keys the direct path uses
        by_model.setdefault(job.model, {})[job.key] = job
    try:
        for model, wanted in by_model.items():  # first what earlier runs sent
            earlier = cache.open_batches(endpoint.public, model)
            if earlier:
                _follow(client, endpoint, cache,
                        {b: _Pending(model, wanted, sent_now=False) for b in earlier},
                        stats, progress, poll_s, max_poll_s, sleep)
        sent: dict[str, _Pending] = {}
        for model, wanted in by_model.items():
            have = cache.get_many(wanted, raw=True)
            missing = {k: j for k, j in wanted.items() if k not in have}
            if missing:
                batch_id = _create(client, endpoint, model, missing.values())
                cache.add_batch(batch_id, endpoint.public, model)
                sent[batch_id] = _Pending(model, missing)
        if sent:
            _follow(client, endpoint, cache, sent, stats, progress, poll_s, max_poll_s, sleep)
    finally:
        client.close()
    return stats


def _create(client: Any, endpoint: Endpoint, model: str, jobs: Iterable[Job]) -> str:
    lines = b"".join(orjson.dumps({"custom_id": j.key, "method": "POST", "url": CHAT})[:-1]
                     + b',"body":' + j.payload + b"}\n" for j in jobs)
    where = endpoint.public
    try:
        uploaded = api_call(f"uploading the batch input for {model} to {where}",
                            lambda: client.files.create(
                                file=("ftlens-eval-batch.jsonl", io.BytesIO(lines)),
                                purpose="batch"))
    except BackendError as exc:
        if exc.status_code not in (404, 405):
            raise
        raise BackendError(exc.message, status_code=exc.status_code,
                           hint="this endpoint has no Batch API (vLLM and most servers do "
                           "not; OpenAI and `ftlens serve` do): rerun without --batch") from None
    batch = api_call(f"creating a batch for {model} at {where}", lambda: client.batches.create(
        input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h",
        metadata={"created_by": "ftlens eval"}))
    return str(batch.id)


def _follow(client: Any, endpoint: Endpoint, cache: ResponseCache,
            batches: dict[str, _Pending], stats: BatchStats, progress: Progress | None,
            poll_s: float, max_poll_s: float, sleep: Callable[[float], None]) -> None:
    """Wait for ``batches``, telling their progress, and read each one's output when it
    ends."""
    stats.batches.extend(batches)
    open_ = dict(batches)
    shown: dict[str, int] = {}
    wait = poll_s
    while open_:
        moved = False
        for batch_id in list(open_):
            batch = api_call(f"reading batch {batch_id}",
                             functools.partial(client.batches.retrieve, batch_id))
            counts = batch.request_counts
            done = (counts.completed + counts.failed) if counts else 0
            if progress is not None and done > shown.get(batch_id, 0):
                total = sum(len(p.jobs) for p in batches.values())
                progress("batch", done - shown.get(batch_id, 0), total)
                shown[batch_id], moved = done, True
            if batch.status in ENDED:
                _read_output(client, endpoint, cache, batch, open_.pop(batch_id), stats)
                cache.close_batch(batch_id)
                moved = True
        if open_:
            wait = poll_s if moved else min(wait * 1.5, max_poll_s)
            sleep(wait)


def _read_output(client: Any, endpoint: Endpoint, cache: ResponseCache, batch: Any,
                 pending: _Pending, stats: BatchStats) -> None:
    if batch.status == "failed":
        errors = [e.message for e in (batch.errors.data if batch.errors else []) or []]
        raise BackendError(f"batch {batch.id} at {endpoint.public} failed: "
                           f"{'; '.join(str(e) for e in errors) or 'no reason given'}",
                           hint="rerun without --batch to send the requests directly")
    answered: set[str] = set()
    if batch.output_file_id:
        raw = api_call(f"downloading the output of batch {batch.id}",
                       lambda: client.files.content(batch.output_file_id).read())
        with cache.writer() as writer:
            for line in _lines(raw):
                key = line.get("custom_id")
                response = line.get("response") or {}
                job = pending.jobs.get(key) if isinstance(key, str) else None
                if job is None or response.get("status_code") != 200:
                    continue
                body = response.get("body")
                if isinstance(body, dict) and isinstance(body.get("choices"), list):
                    writer.put(job.key, endpoint.public, pending.model, job.payload,
                               orjson.dumps(body))
                    answered.add(job.key)
    stats.answered += len(answered)
    if pending.sent_now:
        stats.failed += sum(k not in answered for k in pending.jobs)


def _lines(raw: bytes) -> Sequence[dict[str, Any]]:
    out = []
    for line in raw.splitlines():
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line we cannot read: its request is sent directly
        if isinstance(item, dict):
            out.append(item)
    return out
