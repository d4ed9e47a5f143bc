"""From records to a :class:`~ftlens.core.run.TrainingRun`, one function per format: OpenAI's
result CSV, job events and checkpoints, Hugging Face's trainer_state.json, and generic tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ftlens.core.chat_format import json_type
from ftlens.core.run import Series, StepsBack, TrainingRun
from ftlens.core.task_metrics import PREFIX
from ftlens.io.training_logs_records import Point, Records, series_of, steps_back, to_step

OPENAI_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss",
                  "valid_mean_token_accuracy")
CSV_METRICS = {"train_loss": "train_loss", "train_accuracy": "train_accuracy",
               "valid_loss": "valid_loss", "valid_mean_token_accuracy": "valid_accuracy",
               "full_valid_loss": "full_valid_loss",
               "full_valid_mean_token_accuracy": "full_valid_accuracy"}
# OpenAI's legacy fine-tunes API (the first one, with classification metrics)
LEGACY_COLUMNS = ("step", "elapsed_tokens", "elapsed_examples", "training_loss")
LEGACY_METRICS = {"training_loss": "train_loss", "training_token_accuracy": "train_accuracy",
                  "validation_loss": "valid_loss",
                  "validation_token_accuracy": "valid_accuracy"}
DPO_COLUMNS = ("step", "train_loss", "train_reward_accuracy", "train_reward_margin",
               "valid_loss", "valid_reward_accuracy", "valid_reward_margin")  # ftlens DPO jobs
DPO_METRICS = {"train_reward_margin": "reward_margin", "valid_reward_margin": "valid_reward_margin",
               "train_reward_accuracy": "reward_accuracy",
               "valid_reward_accuracy": "valid_reward_accuracy"}
OPENAI_METRICS = {**{k: v for k, v in CSV_METRICS.items() if k != "train_accuracy"},
                  "train_mean_token_accuracy": "train_accuracy", **DPO_METRICS}
HF_METRICS = {"loss": "train_loss", "eval_loss": "valid_loss",
              "mean_token_accuracy": "train_accuracy",
              "eval_mean_token_accuracy": "valid_accuracy"}
HF_META = ("best_model_checkpoint", "best_metric", "num_train_epochs", "train_batch_size",
           "logging_steps", "eval_steps", "save_steps")
EVENT_EXAMPLE = ('{"object": "fine_tuning.job.event", "type": "metrics", "data": {"step": 10, '
                 '"train_loss": 0.52, "total_steps": 100}, ...}')
CHECKPOINT_EXAMPLE = ('{"object": "fine_tuning.job.checkpoint", "step_number": 30, "metrics": '
                      '{"step": 30, "train_loss": 0.12, ...}, ...}')
MAX_CHECKPOINTS = 1_000_000


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def step_at(records: Records, index: int, value: Any, what: str = "step") -> int:
    try:
        return to_step(value)
    except ValueError as exc:
        raise records.error(index, f"{what} {exc}", expected="whole-number steps such as 10",
                            hint="steps count optimizer updates; fix the value or pass "
                            "--step-col naming the column that holds them") from None


def table_points(records: Records, step_key: str, keys: Iterable[str], shape: str) -> list[Point]:
    """(step, index, row) of every row that logs a value under one of ``keys``."""
    keys = list(keys)
    points: list[Point] = []
    for index, row in enumerate(records.items):
        if not isinstance(row, dict):
            raise records.error(index, f"a JSON {json_type(row)}, not an object",
                                expected=shape)
        raw = row.get(step_key)
        if missing(raw):
            if any(not missing(row.get(k)) for k in keys):
                raise records.error(index, f"values but no {step_key!r}", expected=shape,
                                    hint=f"every logged row needs its step in {step_key!r}")
            continue
        points.append((step_at(records, index, raw, step_key), index, row))
    return points


def make_run(records: Records, series: dict[str, Series], *, source: str, lacking: str,
             hint: str = "check that this is the right file (a finished job's log)",
             checkpoint_steps: tuple[int, ...] | None = None, total_steps: int | None = None,
             steps_per_epoch: int | None = None, meta: dict[str, object] | None = None,
             back: StepsBack | None = None) -> TrainingRun:
    if "train_loss" not in series:
        raise records.error(None, f"no training loss in the file ({lacking})", hint=hint)
    tasks = {k: v for k, v in series.items() if k.startswith(PREFIX)}
    if "reward_margin" in series:
        meta = {**(meta or {}), "objective": "dpo"}
    return TrainingRun(
        train_loss=series["train_loss"], valid_loss=series.get("valid_loss"),
        train_accuracy=series.get("train_accuracy"), valid_accuracy=series.get("valid_accuracy"),
        full_valid_loss=series.get("full_valid_loss"),
        full_valid_accuracy=series.get("full_valid_accuracy"),
        **{name: series.get(name) for name in DPO_METRICS.values()},
        task_metrics=tasks, checkpoint_steps=checkpoint_steps, total_steps=total_steps,
        steps_per_epoch=steps_per_epoch, source=source, meta=meta or {}, steps_back=back)


def result_csv_run(rows: Records, header: list[str], *, base64: bool, kind: str = "openai"
                   ) -> TrainingRun:
    """OpenAI's result CSV; ``kind`` ``dpo``: the one an ftlens DPO job writes; ``legacy``:
    the legacy fine-tunes API's (``training_loss``…, ``classification/*``). Task-metric
    columns (``classification/…``) are read in each."""
    columns = {"dpo": DPO_COLUMNS, "legacy": LEGACY_COLUMNS}.get(kind, OPENAI_COLUMNS)
    fields = {"dpo": {"train_loss": "train_loss", "valid_loss": "valid_loss", **DPO_METRICS},
              "legacy": LEGACY_METRICS}.get(kind, CSV_METRICS)
    fields = {**fields, **{h: h for h in header if h.startswith(PREFIX)}}
    points = table_points(rows, "step", fields, ",".join(columns))
    lacking = f"every {'training_loss' if kind == 'legacy' else 'train_loss'} cell is empty"
    return make_run(rows, series_of(rows, points, fields),
                    source="openai-legacy-csv" if kind == "legacy" else "openai-csv",
                    lacking=lacking, meta={"base64": True} if base64 else {},
                    back=steps_back(rows, points, fields))


def with_tasks(fields: Mapping[str, str], points: Iterable[Point]) -> dict[str, str]:
    """``fields`` and every task-metric key (``classification/…``) the points log."""
    return {**fields, **{k: k for _, _, data in points for k in data
                         if isinstance(k, str) and k.startswith(PREFIX)}}


def generic_run(records: Records, step: str, train: str, valid: str) -> TrainingRun:
    fields = {train: "train_loss", valid: "valid_loss"}
    points = table_points(records, step, fields, f"rows with {step!r} and {train!r}")
    return make_run(records, series_of(records, points, fields), source="generic",
                    lacking=f"no row has a value in {train!r}",
                    hint="name the training-loss column with --train-col",
                    back=steps_back(records, points, fields))


def events_run(records: Records) -> TrainingRun:
    """Metrics events in any order; where events repeat a step (overlapping pages) the newest
    one is kept."""
    best: dict[int, tuple[tuple[float, int], int, Mapping[str, Any]]] = {}
    total: int | None = None
    for index, event in enumerate(records.items):
        if not isinstance(event, dict):
            raise records.error(index, f"a JSON {json_type(event)}, not an event object",
                                expected=EVENT_EXAMPLE)
        data, kind = event.get("data"), event.get("type")
        if kind != "metrics" and not (kind is None and isinstance(data, dict) and "step" in data):
            continue  # a message event
        if not isinstance(data, dict) or missing(data.get("step")):
            raise records.error(index, "a metrics event without data.step",
                                expected=EVENT_EXAMPLE,
                                hint="export the events again with the SDK's list_events")
        step = step_at(records, index, data["step"], "data.step")
        if not missing(data.get("total_steps")):
            total = max(total or 0, step_at(records, index, data["total_steps"], "total_steps"))
        # the newer event wins; at the same time, the one listed first (lists are newest first)
        rank = (_finite(event.get("created_at")) or 0.0, -index)
        if step not in best or rank > best[step][0]:
            best[step] = (rank, index, data)
    if not best:
        raise records.error(None, "no metrics events among these fine-tuning job events",
                            expected=EVENT_EXAMPLE,
                            hint="the job may not have trained a step yet; export the events "
                            "again when it has")
    points = sorted((step, index, data) for step, (_, index, data) in best.items())
    return make_run(records, series_of(records, points, with_tasks(OPENAI_METRICS, points)),
                    source="openai-events",
                    lacking="no metrics event has data.train_loss", total_steps=total,
                    meta=_job(records.items))


def checkpoints_run(records: Records) -> TrainingRun:
    points: list[Point] = []
    models: dict[int, str] = {}
    for index, ckpt in enumerate(records.items):
        metrics = ckpt.get("metrics") if isinstance(ckpt, dict) else None
        if not isinstance(ckpt, dict) or not isinstance(metrics, dict):
            raise records.error(index, "a checkpoint without metrics",
                                expected=CHECKPOINT_EXAMPLE)
        raw = ckpt.get("step_number", metrics.get("step"))
        if missing(raw):
            raise records.error(index, "a checkpoint without step_number",
                                expected=CHECKPOINT_EXAMPLE)
        step = step_at(records, index, raw, "step_number")
        points.append((step, index, metrics))
        if isinstance(ckpt.get("fine_tuned_model_checkpoint"), str):
            models[step] = ckpt["fine_tuned_model_checkpoint"]
    if not points:
        raise records.error(None, "the checkpoint list is empty", expected=CHECKPOINT_EXAMPLE,
                            hint="OpenAI lists checkpoints only once a job has saved one")
    points.sort(key=lambda p: p[0])
    meta: dict[str, object] = {**_job(records.items),
                               "checkpoint_models": dict(sorted(models.items()))}
    return make_run(records, series_of(records, points, with_tasks(OPENAI_METRICS, points)),
                    source="openai-checkpoints", lacking="no checkpoint has metrics.train_loss",
                    checkpoint_steps=tuple(sorted({p[0] for p in points})), meta=meta)


def trainer_state_run(records: Records, state: Mapping[str, Any]) -> TrainingRun:
    shape = '{"loss": 0.52, "step": 10, "epoch": 0.5, ...} or {"eval_loss": ..., "step": ...}'
    points = table_points(records, "step", HF_METRICS, shape)
    max_steps = _count(state.get("max_steps"))
    return make_run(records, series_of(records, points, HF_METRICS), source="trainer-state",
                    lacking="no log_history entry has 'loss'",
                    hint="log more often than the run is long (logging_steps < max_steps)",
                    total_steps=max_steps, steps_per_epoch=_steps_per_epoch(records),
                    checkpoint_steps=_saves(state, max_steps),
                    meta={k: state[k] for k in HF_META if state.get(k) is not None})


def _steps_per_epoch(records: Records) -> int | None:
    """From the latest log entry with an epoch: Trainer logs epoch = step / steps per epoch."""
    latest: tuple[int, float] | None = None
    for entry in records.items:
        if not isinstance(entry, dict):
            continue
        step, epoch = _count(entry.get("step")), _finite(entry.get("epoch"))
        if step and epoch and epoch > 0 and (latest is None or step > latest[0]):
            latest = (step, epoch)
    if latest is None or not latest[0] / latest[1] < 2**63:
        return None
    return round(latest[0] / latest[1]) or None


def _saves(state: Mapping[str, Any], max_steps: int | None) -> tuple[int, ...] | None:
    """Multiples of save_steps, and the last step (Trainer saves there too), up to where training
    stopped (global_step, if it stopped early)."""
    every, done = _count(state.get("save_steps")), _count(state.get("global_step"))
    if not every or not max_steps or max_steps // every > MAX_CHECKPOINTS:
        return None
    end = min(max_steps, done or max_steps)
    steps = set(range(every, end + 1, every)) | ({max_steps} if end == max_steps else set())
    return tuple(sorted(steps))


def _count(value: Any) -> int | None:
    """A positive whole number, or None (for optional settings, which never fail a read)."""
    try:
        number = to_step(value)
    except ValueError:
        return None
    return number or None


def _finite(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _job(items: list[Any]) -> dict[str, object]:
    for item in items:
        if isinstance(item, dict):
            job = item.get("fine_tuning_job_id", item.get("job_id"))
            if isinstance(job, str):
                return {"job_id": job}
    return {}
