"""``run_loop``: the whole loop on the user's data, through the OpenAI fine-tuning API —
audit → fine-tune (or read a job that already ran) with live loss → curve diagnosis → base vs
tuned evaluation (and an earlier checkpoint when the curves call for one) → argued verdict →
report, all in one run directory. ``ftlens run`` is a thin view over it, and ``ftlens demo``
is this on the bundled data (:mod:`ftlens.steps.demo`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ftlens.client.endpoint import api_call
from ftlens.core.checkpoint_choice import CheckpointChoice, to_compare
from ftlens.core.decision import Decision
from ftlens.core.eval_types import EvalOptions
from ftlens.core.findings import Finding
from ftlens.errors import BackendError, ConfigError
from ftlens.io.atomic import write_atomic
from ftlens.steps import finetune
from ftlens.steps.inputs import check_inputs

DEFAULT_MODEL = "smollm2-135m-instruct"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Hooks:
    """What the caller shows: messages, the followed job, the eval progress."""

    say: Say
    follow: Callable[[finetune.Connection, str], Any]  # -> the finished job
    progress: Callable[[], Any]  # a context manager yielding progress(stage, advance, total)


@dataclass(frozen=True)
class RunConfig:
    test: Path
    out_dir: Path
    train: Path | None = None  # None only with job_id: the job's own training file is fetched
    valid: Path | None = None
    model: str | None = None  # the base model; default DEFAULT_MODEL (a job's own with job_id)
    base_url: str | None = None  # None: an embedded ftlens serve (a running one with job_id)
    use_openai: bool = False
    job_id: str | None = None  # judge this finished job instead of training a new one
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    options: EvalOptions = field(default_factory=EvalOptions)
    checkpoint: str = "auto"  # "auto": when the curves call for one; "none"; or a step
    max_tokens: int | None = None  # longest answer asked for; None: from the labels
    concurrency: int = 16
    # task metrics while training; None: on for an embedded service when the validation
    # answers are labels
    task_metrics: bool | None = None
    select: str | None = None  # what the best checkpoint is chosen by (None: the default)


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    decision: Decision
    findings: list[tuple[Any, Finding]]  # (section, finding), worst first
    report_html: Path
    report_json: Path
    report_md: Path
    job_id: str
    fine_tuned_model: str
    checkpoint: CheckpointChoice | None

    @property
    def verdict(self) -> str:
        return self.decision.verdict


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2
                                    | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
                 + b"\n")


def run_loop(config: RunConfig, hooks: Hooks) -> RunResult:
    """Run every stage; writes ``audit.json``, ``results.csv``, ``curves.json``,
    ``eval.json``, ``provenance.json``, the predictions and the report into ``out_dir``."""
    _check_config(config)
    local = check_inputs(config.test, config.train, config.valid, say=hooks.say)
    _check_labels(config.options, local.labels, config.test)
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    with _connect(config) as endpoint:
        where = "an embedded ftlens serve" if endpoint.embedded else endpoint.url
        if config.job_id:
            hooks.say(f"1/5 reading fine-tuning job {config.job_id} from {where}")
            job = _finished(endpoint, config.job_id)
            train, valid = _job_files(endpoint, job, config, out / "data", hooks.say)
            fetched = [p for p in (train, valid) if p not in (config.train, config.valid)]
            check_inputs(config.test, *fetched, say=hooks.say)
            n_train = _audit(train, valid, config.test, out, hooks, "2/5")
        else:
            assert config.train is not None  # checked by _check_config
            train, valid = config.train, config.valid
            n_train = _audit(train, valid, config.test, out, hooks, "1/5")
            job = _train(endpoint, config, train, valid, hooks, where)
        hooks.say("3/5 diagnosing the loss curves")
        saved = _saved_checkpoints(endpoint, job, hooks) if config.checkpoint != "none" else {}
        diagnosis = _curves(endpoint, job, out, saved, config.select)
        hooks.say(f"    curves verdict: {diagnosis.verdict}")
        ckpt = _checkpoint(job, diagnosis, config.checkpoint, saved)
        asked = "the base and the fine-tuned model" + (
            f" (and its checkpoint at step {ckpt.step}: {ckpt.why})" if ckpt else "")
        hooks.say(f"4/5 asking {asked} every test question"
                  + (" (and the tuned one the validation questions, to choose its threshold "
                     "on)" if valid else ""))
        run = _evaluate(endpoint, job, config, valid, local.labels, ckpt, hooks)
        write_json(out / "eval.json", run.to_dict())
    hooks.say("5/5 writing the report")
    return _report(out, job, config, (train, valid), run, n_train)


def _check_labels(options: EvalOptions, labels: Sequence[str], test: Path) -> None:
    """``--positive`` and ``--require`` name labels of the test set (before any training; a
    requirement's label as labels are matched, case and surrounding spaces aside)."""
    from ftlens.core.labels import match_label

    named = [("--positive", options.positive, False)] + [
        (f"--require {r.text!r}", r.label, True) for r in options.requirements]
    for flag, label, loose in named:
        if label is not None and label not in labels and not (
                loose and match_label(label, labels) is not None):
            raise ConfigError(f"{flag} names {label!r}, which is not a label of {test}",
                              hint=f"its labels: {', '.join(labels)}")


def _check_config(config: RunConfig) -> None:
    if config.use_openai and config.base_url:
        raise ConfigError("pass either --openai or --base-url, not both")
    if config.task_metrics and config.use_openai:
        raise ConfigError("OpenAI's current fine-tuning API computes no task metrics",
                          hint="leave --task-metrics out, or train on ftlens")
    if config.task_metrics and config.valid is None and config.job_id is None:
        raise ConfigError("--task-metrics scores the validation rows", hint="add --valid FILE")
    if config.job_id is None and config.train is None:
        raise ConfigError("a run needs --train (the data to fine-tune on), or --job with a "
                          "fine-tuning job that already ran", hint="e.g. ftlens run --train "
                          "train.jsonl --valid valid.jsonl --test test.jsonl")
    if config.job_id is not None and (config.hyperparameters or config.suffix or config.model
                                      or config.seed is not None):
        raise ConfigError("--job judges a job that already ran: its model, hyperparameters, "
                          "suffix and seed are the job's own", hint="drop them, or drop --job "
                          "to train a new model")
    if config.use_openai and config.job_id is None and config.model is None:
        raise ConfigError("--openai needs --model: the OpenAI model to fine-tune",
                          hint="e.g. --model gpt-4o-mini-2024-07-18")
    if config.checkpoint not in ("auto", "none") and not config.checkpoint.isdigit():
        raise ConfigError(f"--checkpoint {config.checkpoint!r} is not auto, none or a step",
                          hint="e.g. --checkpoint auto, --checkpoint 40")
    if config.concurrency < 1:
        raise ConfigError(f"--concurrency {config.concurrency} must be at least 1")


@contextmanager
def _connect(config: RunConfig) -> Iterator[finetune.Connection]:
    """OpenAI, the given endpoint, or ftlens serve: for a new job an embedded one in the run
    directory (self-contained, offline); for ``--job`` the running one, else an embedded one
    on the ftlens home where the job lives."""
    home = None if config.job_id else config.out_dir / "service"
    with finetune.connect(config.base_url, use_openai=config.use_openai, home=home,
                          prefer_running=config.job_id is not None) as endpoint:
        yield endpoint


def _finished(endpoint: finetune.Connection, job_id: str) -> Any:
    try:
        job = api_call(f"reading fine-tuning job {job_id}",
                                lambda: endpoint.client.fine_tuning.jobs.retrieve(job_id))
    except BackendError as exc:
        if exc.status_code == 404:
            exc.hint = (f"no such job at {endpoint.url}; a job `ftlens run` trained lives in "
                        "its run directory's service: pass FTLENS_HOME=RUN_DIR/service")
        raise

    if job.status != "succeeded":
        detail = f": {job.error.message}" if job.error and job.error.message else ""
        raise ConfigError(f"fine-tuning job {job_id} is {job.status}{detail}; only a job that "
                          "succeeded has a model to judge",
                          hint=f"wait for it (`ftlens curves --follow {job_id}`) or pass "
                               "another job")
    return job


def _job_files(endpoint: finetune.Connection, job: Any, config: RunConfig, folder: Path,
               say: Say) -> tuple[Path, Path | None]:
    """The job's training and validation data: the local files given, else the job's own
    files downloaded from the API."""
    def fetch(file_id: str, name: str) -> Path:
        raw = api_call(f"downloading the job's {name} file {file_id}",
                                lambda: endpoint.client.files.content(file_id).read())
        return write_atomic(folder / f"{name}.jsonl", raw)

    train = config.train
    if train is None:
        try:
            train = fetch(job.training_file, "training")
        except BackendError as exc:
            exc.hint = ("pass --train FILE, the job's training data (OpenAI does not hand out "
                        "fine-tuning files)")
            raise
    valid = config.valid
    if valid is None and job.validation_file:
        try:
            valid = fetch(job.validation_file, "validation")
        except BackendError as exc:
            say(f"    warning: {exc.message}; judged without validation data (pass --valid)")
    return train, valid


def _audit(train: Path, valid: Path | None, test: Path, out: Path, hooks: Hooks,
           stage: str) -> int:
    """Audit the splits into ``audit.json``; returns the number of training examples."""
    from ftlens.core.audit_json import audit_to_dict
    from ftlens.steps.audit import audit_files

    hooks.say(f"{stage} auditing the data")
    report = audit_files(train, valid, test)
    write_json(out / "audit.json", audit_to_dict(report))
    hooks.say(f"    audit verdict: {report.verdict}")
    return int(report.splits["train"].n_examples)


def _train(endpoint: finetune.Connection, config: RunConfig, train: Path, valid: Path | None,
           hooks: Hooks, where: str) -> Any:
    model = config.model or DEFAULT_MODEL
    hooks.say(f"2/5 fine-tuning {model} through {where}")
    extra = _task_request(endpoint, config, train, valid, hooks)
    created = finetune.create_job(
        endpoint, model=model, training_file=finetune.upload(endpoint, train),
        validation_file=finetune.upload(endpoint, valid) if valid else None,
        hyperparameters=dict(config.hyperparameters), suffix=config.suffix, seed=config.seed,
        extra=extra)
    job = hooks.follow(endpoint, created.id)
    if job.status != "succeeded":
        finetune.save_results(endpoint, job, config.out_dir)  # its events tell why
        message = job.error.message if job.error else job.status
        raise ConfigError(f"fine-tuning job {job.id} ended {job.status}: {message}",
                          hint="see its events in the run directory")
    return job


def _saved_checkpoints(endpoint: finetune.Connection, job: Any, hooks: Hooks
                       ) -> dict[int, str]:
    """The job's checkpoints the API still serves: step -> model name (none, with a
    warning, from an endpoint that does not list them)."""
    try:
        found = api_call(
            "listing the job's checkpoints",
            lambda: list(endpoint.client.fine_tuning.jobs.checkpoints.list(job.id, limit=100)))
    except BackendError as exc:
        hooks.say(f"    warning: {exc.message}; no checkpoint is compared")
        return {}
    return {int(c.step_number): str(c.fine_tuned_model_checkpoint) for c in found
            if c.step_number is not None and c.fine_tuned_model_checkpoint}


def _task_request(endpoint: finetune.Connection, config: RunConfig, train: Path,
                  valid: Path | None, hooks: Hooks) -> dict[str, Any] | None:
    """The task-metric fields of the job request: asked for, or (by default) on an embedded
    service whose validation answers are labels."""
    from ftlens.core.task_metrics import TaskMetricsError
    from ftlens.train.config import TaskMetricsSettings
    from ftlens.train.task import check_files

    wanted = config.task_metrics  # (its conflicts with other options: _check_config)
    if wanted is False or (wanted is None and (not endpoint.embedded or valid is None)):
        return None
    positive = config.options.positive
    try:
        spec = check_files(TaskMetricsSettings(positive), train, valid)
    except TaskMetricsError as exc:
        if wanted:
            raise
        hooks.say(f"    no task metrics while training: {exc.message}")
        return None
    hooks.say(f"    task metrics while training: {len(spec.labels)} classes"
              + (f", positive {spec.positive}" if spec.positive else ""))
    return finetune.task_fields(positive)


def _curves(endpoint: finetune.Connection, job: Any, out: Path, saved: Mapping[int, str],
            select: str | None = None) -> Any:
    """The diagnosis of the job's result file; its best checkpoint is chosen among the
    checkpoints the job kept (and its final model)."""
    import dataclasses

    from ftlens.core.curves import diagnose
    from ftlens.core.curves_json import diagnosis_to_dict
    from ftlens.io.training_logs import read_run

    csv_path, _ = finetune.save_results(endpoint, job, out)
    if csv_path is None:
        raise ConfigError(f"fine-tuning job {job.id} has no result file: its loss curves "
                          "cannot be read", hint="judge the model alone with `ftlens eval`")
    write_atomic(out / "results.csv", csv_path.read_bytes())
    run = read_run(out / "results.csv")
    steps = run.train_loss.steps
    if saved and len(steps):
        kept = tuple(sorted({*saved, int(steps[-1])}))
        run = dataclasses.replace(run, checkpoint_steps=kept)
    diagnosis = diagnose(run, select)
    write_json(out / "curves.json", diagnosis_to_dict(diagnosis))
    return diagnosis


def _checkpoint(job: Any, diagnosis: Any, mode: str, saved: Mapping[int, str]) -> Any:
    """The checkpoint to ask too: the one the curves call for (``auto``), a given step, or
    none."""
    from ftlens.steps.ask import CheckpointAsk

    if mode == "none":
        return None
    steps = diagnosis.run.train_loss.steps
    final = int(steps[-1]) if len(steps) else 0
    if mode != "auto":
        step = int(mode)
        if step not in saved:
            raise ConfigError(f"job {job.id} has no checkpoint at step {step}",
                              hint=f"its checkpoints: steps {sorted(saved) or 'none'}")
        return CheckpointAsk(saved[step], step, f"--checkpoint {step} asked for it")
    chosen = to_compare(diagnosis.findings, best_step=diagnosis.best_step, final_step=final,
                        checkpoint_steps=list(saved), best_what=diagnosis.best_what)
    return None if chosen is None else CheckpointAsk(saved[chosen[0]], *chosen)


def _evaluate(endpoint: finetune.Connection, job: Any, config: RunConfig,
              valid: Path | None, labels: Sequence[str], ckpt: Any,
              hooks: Hooks) -> Any:
    """The test questions, judged on the rows the audit did not find in the training or
    validation data, with the threshold chosen on the validation questions (never on the test
    rows it is judged on)."""
    from ftlens.client.endpoint import Endpoint
    from ftlens.steps.ask import EvalConfig, run_eval

    out = config.out_dir
    longest = max(len(label) for label in labels)
    ask = EvalConfig(
        data=config.test, model=job.fine_tuned_model, baseline=job.model,
        valid=valid, audit=out / "audit.json", checkpoint=ckpt,  # the audit's leaks
        endpoint=Endpoint(endpoint.url, str(endpoint.client.api_key),
                          timeout=60 if config.use_openai else 600),
        cache=out / "responses.sqlite", out=out / "predictions.jsonl",
        max_tokens=config.max_tokens or min(16, max(3, longest // 3 + 2)),
        concurrency=config.concurrency)
    with hooks.progress() as progress:
        return run_eval(ask, config.options, progress)


def _report(out: Path, job: Any, config: RunConfig, data: tuple[Path, Path | None],
            run: Any, n_train: int) -> RunResult:
    from ftlens.report.provenance import write_provenance
    from ftlens.report.render import write_report

    files = {"train": data[0], "test": config.test, "predictions": out / "predictions.jsonl"}
    if data[1] is not None:
        files["valid"] = data[1]
    hyper = job.hyperparameters.model_dump() if job.hyperparameters else {}
    write_provenance(out, files, model=job.fine_tuned_model, base_model=job.model,
                     hyperparameters=hyper,
                     extra={"job": job.id, "trained_tokens": job.trained_tokens,
                            "training_examples": n_train,
                            "test_examples": len(run.candidate.answers),
                            "checkpoint": run.choice.model if run.choice else None})
    written = write_report(out)
    return RunResult(out, written.report.decision, list(written.report.findings),
                     written.html, written.json, written.markdown, job.id,
                     job.fine_tuned_model, run.choice)
