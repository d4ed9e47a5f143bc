"""``run_eval``: ask a model (and optionally a baseline model) to answer every example of a
chat JSONL test file, then judge the answers with the evaluation core — ``ftlens eval`` as a
library call.

Each example's prompt is every message before its final assistant message, and that message
is the truth. Requests: temperature 0, ``max_tokens``, and ``logprobs`` with ``top_logprobs``
for label probabilities (``top_logprobs=0`` asks for none). Answers are read by
:mod:`ftlens.core.answers`; the predictions are written as a file ``ftlens metrics`` reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ftlens.client.batch import BatchStats, fill_cache_by_batches
from ftlens.client.endpoint import Endpoint
from ftlens.client.retry import RetryPolicy
from ftlens.client.runner import Job, Progress, Runner, RunStats
from ftlens.core.answers import Answer, LabelParser, answer_findings, read_answer
from ftlens.core.checkpoint_choice import CheckpointChoice, checkpoint_finding, choose
from ftlens.core.classification import ClassificationReport, classification_metrics
from ftlens.core.evaluation import EvalOptions, Evaluation, Predictions, evaluate
from ftlens.core.findings import sort_findings
from ftlens.core.seen import SeenRows
from ftlens.core.wording import first
from ftlens.errors import ConfigError, DataError
from ftlens.io.atomic import write_atomic
from ftlens.io.chat_dataset import Example, read_examples
from ftlens.io.response_cache import ResponseCache
from ftlens.steps.seen import seen_in_audit, seen_in_training


@dataclass(frozen=True)
class EvalConfig:
    data: Path
    model: str
    endpoint: Endpoint
    cache: Path
    baseline: str | None = None
    out: Path | None = None  # default: next to the data, named after the model
    max_tokens: int = 16
    top_logprobs: int = 20  # 0: no probabilities
    concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    train: Path | None = None  # the model's training data: seen test rows are left out
    valid: Path | None = None  # validation data: checked like train; the threshold is chosen
    # on the model's answers to it
    checkpoint: CheckpointAsk | None = None  # an earlier checkpoint, compared with the model
    audit: Path | None = None  # `ftlens audit --json` of the files: seen rows read from it
    batch: bool = False  # send the requests as batches (Batch API), then read them as usual


@dataclass(frozen=True)
class CheckpointAsk:
    """A checkpoint of the evaluated model, asked the same test questions."""

    model: str
    step: int
    why: str  # what in the loss curves called for it


@dataclass(frozen=True)
class ModelAnswers:
    model: str
    answers: tuple[Answer, ...]
    predictions: Predictions
    path: Path  # where the predictions file was written


@dataclass(frozen=True)
class EvalRun:
    config: EvalConfig
    labels: tuple[str, ...]
    evaluation: Evaluation
    candidate: ModelAnswers
    baseline: ModelAnswers | None
    baseline_report: ClassificationReport | None
    stats: RunStats
    checkpoint: ModelAnswers | None = None
    choice: CheckpointChoice | None = None
    batches: BatchStats | None = None  # with --batch

    def to_dict(self) -> dict[str, Any]:
        from ftlens.core.evaluation_json import evaluation_to_dict, report_to_dict

        c = self.config
        out = evaluation_to_dict(self.evaluation)
        out["run"] = {
            "data": str(c.data), "n": len(self.candidate.answers), "labels": list(self.labels),
            "endpoint": c.endpoint.public, "model": c.model, "baseline": c.baseline,
            "predictions": str(self.candidate.path),
            "baseline_predictions": str(self.baseline.path) if self.baseline else None,
            "cache": str(c.cache), "max_tokens": c.max_tokens, "top_logprobs": c.top_logprobs,
            "requests": self.stats.to_dict(),
            "batches": self.batches.to_dict() if self.batches is not None else None,
        }
        out["baseline_metrics"] = (report_to_dict(self.baseline_report)
                                   if self.baseline_report is not None else None)
        if self.choice is not None and self.checkpoint is not None:
            out["checkpoint"] = {**self.choice.to_dict(),
                                 "predictions": str(self.checkpoint.path)}
        return out


def request_body(model: str, prompt: list[dict[str, Any]], config: EvalConfig
                 ) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": prompt, "temperature": 0,
                            "max_tokens": config.max_tokens}
    if config.top_logprobs > 0:
        body["logprobs"] = True
        body["top_logprobs"] = config.top_logprobs
    return body


def default_out(data: Path, model: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    return data.with_name(f"{data.stem}.{slug}.predictions.jsonl")


def _paths(config: EvalConfig) -> tuple[Path, Path | None]:
    if config.out is None:
        main = default_out(config.data, config.model)
        base = default_out(config.data, config.baseline) if config.baseline else None
    else:
        main = config.out
        base = _beside(main, "baseline") if config.baseline else None
    if base is not None and base == main:
        raise ConfigError("--model and --baseline are the same model",
                          hint="compare the fine-tuned model with its base model")
    return main, base


def _beside(path: Path, what: str) -> Path:
    return path.with_name(f"{path.stem}.{what}{path.suffix}")


def _check(config: EvalConfig) -> None:
    if config.concurrency < 1:
        raise ConfigError(f"--concurrency {config.concurrency} must be at least 1")
    if config.max_tokens < 1:
        raise ConfigError(f"--max-tokens {config.max_tokens} must be at least 1")
    if config.top_logprobs < 0:
        raise ConfigError(f"--top-logprobs {config.top_logprobs} must be 0 (none) or more",
                          hint="20 is the OpenAI API's maximum")
    if config.retry.max_attempts < 1:
        raise ConfigError("--retries must not be negative")


def run_eval(config: EvalConfig, options: EvalOptions, progress: Progress | None = None
             ) -> EvalRun:
    """Ask, then judge. With ``config.valid``, the model also answers the validation
    questions: the threshold is chosen on them and judged on the test rows."""
    _check(config)
    main_path, base_path = _paths(config)
    examples = read_examples(config.data)
    tuning = read_examples(config.valid) if config.valid and config.top_logprobs > 0 else []
    labels = options.labels or tuple(sorted({e.truth for e in examples}))
    parser = _parser(labels, examples, config.data)
    # before any request: a bad training file or audit is named at once
    seen = (seen_in_audit(config.audit, [e.line for e in examples], where=config.data)
            if config.audit else
            seen_in_training([e.prompt for e in examples], train=config.train,
                             valid=config.valid, where=config.data))
    ckpt = config.checkpoint
    asked = {"model": config.model, "baseline": config.baseline,
             "checkpoint": ckpt.model if ckpt else None}
    models = {role: m for role, m in asked.items() if m is not None}
    jobs = [Job(request_body(m, e.prompt, config), e.line) for m in models.values()
            for e in examples]
    jobs += [Job(request_body(config.model, e.prompt, config), e.line) for e in tuning]
    with ResponseCache(config.cache) as cache:
        batches = (fill_cache_by_batches(config.endpoint, cache, jobs, progress=progress)
                   if config.batch else None)
        runner = Runner(config.endpoint, cache, concurrency=config.concurrency,
                        policy=config.retry, progress=progress)
        with_probs = config.top_logprobs > 0
        read = asyncio.run(_read_all(runner, jobs, parser, with_probs))
    n = len(examples)
    paths = {"model": main_path, "baseline": base_path,
             "checkpoint": _beside(main_path, "checkpoint")}
    answered = {role: _answers(m, read[i * n:(i + 1) * n], examples, parser, with_probs,
                               paths[role] or main_path)
                for i, (role, m) in enumerate(models.items())}
    candidate, baseline = answered["model"], answered.get("baseline")
    tune_on = (_answers(config.model, read[len(models) * n:], tuning, parser, with_probs,
                        _beside(main_path, "valid"))
               if tuning else None)
    try:
        ev = evaluate(candidate.predictions, dataclasses.replace(options, labels=labels),
                      baseline.predictions if baseline else None, seen=seen,
                      tune_on=tune_on.predictions if tune_on else None)
    except ValueError as exc:
        raise DataError(str(exc), path=config.data, hint="check --labels and --positive "
                        "against the answers in the data") from exc
    extra = answer_findings(candidate.answers, config.top_logprobs)
    choice = None
    if ckpt is not None:
        choice = _choose(ckpt, candidate, answered["checkpoint"], ev, labels, seen, options)
        extra.append(checkpoint_finding(choice))
    ev = dataclasses.replace(ev, findings=tuple(sort_findings([*ev.findings, *extra])))
    base_report = (classification_metrics(baseline.predictions.y_true,
                                          baseline.predictions.y_pred, labels=labels)
                   if baseline else None)
    return EvalRun(config, labels, ev, candidate, baseline, base_report, runner.stats,
                   answered.get("checkpoint"), choice, batches)


def _choose(ckpt: CheckpointAsk, final: ModelAnswers, answers: ModelAnswers, ev: Evaluation,
            labels: tuple[str, ...], seen: SeenRows | None, options: EvalOptions
            ) -> CheckpointChoice:
    """Checkpoint vs final model on the rows the evaluation judged (the unseen ones)."""
    keep = None
    if ev.leakage is not None and seen is not None and seen.n_seen < seen.n_rows:
        keep = ~seen.mask
    all_seen = seen is not None and seen.n_rows > 0 and seen.n_seen == seen.n_rows
    return choose(final.predictions, answers.predictions, step=ckpt.step, model=ckpt.model,
                  final_model=final.model, why=ckpt.why, labels=labels, positive=ev.positive,
                  keep=keep, unseen_only=not all_seen, n_boot=options.n_boot,
                  seed=options.seed)


def _parser(labels: tuple[str, ...], examples: Sequence[Example], data: Path) -> LabelParser:
    try:
        parser = LabelParser(labels)
    except ValueError as exc:
        raise ConfigError(str(exc), hint="give distinct labels with --labels") from exc
    unknown = sorted({e.truth for e in examples} - set(labels))
    if unknown:
        raise DataError(f"true labels {first(map(repr, unknown), 5)} are not in --labels "
                        f"{list(labels)}",
                        path=data, hint="add them to --labels or drop --labels")
    return parser


async def _read_all(runner: Runner, jobs: Sequence[Job], parser: LabelParser,
                    with_probs: bool) -> list[Answer]:
    """Every job's answer, read as its response arrives (a large test set never holds all
    its responses at once)."""
    return [read_answer(orjson.loads(body), parser, with_probs)
            async for _, body in runner.stream(jobs, total=len(jobs))]


def _answers(model: str, answers: Sequence[Answer], examples: Sequence[Example],
             parser: LabelParser, with_probs: bool, path: Path) -> ModelAnswers:
    answers = tuple(answers)
    labels = parser.labels
    has_probs = with_probs and any(a.probs is not None for a in answers)
    uniform = {label: 1.0 / len(labels) for label in labels}
    probs = (np.array([[(a.probs.probs if a.probs else uniform)[lab] for lab in labels]
                       for a in answers]) if has_probs else None)
    preds = Predictions(y_true=[e.truth for e in examples],
                        y_pred=[a.label or "" for a in answers], probs=probs,
                        prob_labels=labels if has_probs else (),
                        ids=[str(e.line) for e in examples])
    _write(path, examples, answers, probs, labels)
    return ModelAnswers(model, answers, preds, path)


def _write(path: Path, examples: Sequence[Example], answers: Sequence[Answer],
           probs: np.ndarray | None, labels: Sequence[str]) -> None:
    """One JSON line per example: ``id`` (its line in the data), ``label``, ``prediction``
    (null when unparseable), ``answer`` (the raw text), ``messages`` (the prompt, so the row
    can be matched against training data later) and ``probs`` when there are any."""
    lines = []
    for i, (e, a) in enumerate(zip(examples, answers, strict=True)):
        row: dict[str, Any] = {"id": e.line, "label": e.truth, "prediction": a.label,
                               "answer": a.text, "messages": e.prompt}
        if probs is not None:  # full precision: `ftlens metrics` on the file agrees exactly
            row["probs"] = {lab: float(p) for lab, p in zip(labels, probs[i], strict=True)}
        if a.probs is not None and a.probs.missing:
            row["probs_floor"] = list(a.probs.missing)
        lines.append(orjson.dumps(row))
    write_atomic(path, b"\n".join(lines) + b"\n", what="the predictions",
                 hint="pass --out PATH to a writable place")
