"""``ftlens serve`` and ``ftlens train``."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from ftlens.cli import render


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. Anything but loopback should come with --api-key.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--api-key", envvar="FTLENS_API_KEY",
              help="Require 'Authorization: Bearer KEY' on every request. Prefer "
                   "$FTLENS_API_KEY or --api-key-file: a key on the command line is visible "
                   "to every local user in `ps`.")
@click.option("--api-key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the bearer key from this file (its first line).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Where files, jobs and models live. Default: $FTLENS_HOME or ~/.ftlens.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Job worker processes (jobs run one at a time per worker).")
@click.option("--max-upload-mb", default=512, show_default=True, type=click.IntRange(1),
              help="Largest file an upload may send (a larger one is refused with 413).")
@click.option("--model", "models", multiple=True, metavar="NAME=PATH",
              help="Offer a model for this service only (repeatable): a model directory, a "
              ".gguf file or a cached hub id. `ftlens models add` registers one for good.")
@click.option("--inference-url", help="Send chat completions to this vLLM server (its /v1 "
              "URL), loading each fine-tuned adapter there; see the README for the vLLM "
              "command. $FTLENS_INFERENCE_API_KEY is its key, if it needs one.")
def serve(host: str, port: int, api_key: str | None, api_key_file: Path | None,
          home: Path | None, workers: int, max_upload_mb: int, models: tuple[str, ...],
          inference_url: str | None) -> None:
    """Serve the OpenAI fine-tuning API on open models.

    Code written for OpenAI's fine-tuning API runs unchanged against it: files, fine-tuning
    jobs (events, checkpoints, cancel, pause, resume), models and chat completions with
    logprobs. Base models: smollm2-135m-instruct (offline, packaged), tiny-random-llama, the
    models registered with `ftlens models add` or --model, and hub ids in the local Hugging
    Face cache.

    One service owns a home (--home, $FTLENS_HOME) at a time; a second one on the same home
    refuses to start. Its job workers stop with it, however it stops.

    \b
    Examples:
      ftlens serve
      openssl rand -hex 16 > ~/.ftlens-key && chmod 600 ~/.ftlens-key
      ftlens serve --port 9000 --api-key-file ~/.ftlens-key
      FTLENS_API_KEY=... ftlens serve --host 0.0.0.0
      ftlens serve --model qwen-small=/models/Qwen2.5-0.5B-Instruct
    \b
    Then, in Python:
      from openai import OpenAI
      client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="anything")
    """
    from ftlens.errors import MissingDependencyError

    try:
        import uvicorn

        from ftlens.server.app import create_app
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", extra="serve") from None
    from ftlens.train.models import ftlens_home

    if api_key_file is not None:
        api_key = _read_key(api_key_file)
    err = render.stderr()
    if not _loopback(host) and not api_key:
        err.print(f"[bold yellow]warning:[/] serving on {host} without --api-key: anyone who "
                  "can reach this port can train and query models")
    from ftlens.steps.audit import file_findings
    from ftlens.train.registry import parse_session

    session = parse_session(models)
    home = home or ftlens_home()
    if inference_url:
        from ftlens.client.endpoint import check_base_url

        check_base_url(inference_url, "--inference-url")
    app = create_app(home, api_key=api_key, workers=workers,
                     max_upload_bytes=max_upload_mb << 20, models=session,
                     inference_url=inference_url,
                     inference_key=os.environ.get("FTLENS_INFERENCE_API_KEY"),
                     audit=file_findings)
    err.print(f"ftlens serve: http://{host}:{port}/v1 (home {home}"
              f"{', bearer key required' if api_key else ''})", highlight=False,
              soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


def _read_key(path: Path) -> str:
    from ftlens.errors import ConfigError
    from ftlens.io.chat_jsonl import open_checked

    with open_checked(path).open("rb") as raw:
        lines = raw.read(64 << 10).decode("utf-8", "replace").splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise ConfigError(f"{path}: the API key file is empty",
                          hint="write the key on its first line, e.g. "
                               "`openssl rand -hex 16 > FILE`")
    return key


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("train_file", metavar="TRAIN", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--valid", "valid_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Validation file (validation loss each few steps and each epoch).")
@click.option("--model", required=True, help="Base model: smollm2-135m-instruct, "
              "tiny-random-llama, a registered model, a fine-tuned model (ft:…), or an "
              "OpenAI model with --openai.")
@click.option("--method", type=click.Choice(["supervised", "dpo"]), default="supervised",
              show_default=True, help="supervised: chat examples; dpo: preference pairs "
              "(input, preferred_output, non_preferred_output).")
@click.option("--beta", default="auto", show_default=True,
              help="DPO only: how far the model may move from the reference.")
@click.option("--base-url", help="An OpenAI-compatible fine-tuning API, e.g. "
              "http://127.0.0.1:8000/v1. Default: a running `ftlens serve`, else an "
              "embedded one.")
@click.option("--openai", "use_openai", is_flag=True,
              help="Use OpenAI itself, with $OPENAI_API_KEY.")
@render.HYPERPARAMETERS
@click.option("--task-metrics", is_flag=True,
              help="Score the validation rows as a classifier while training (accuracy, "
              "precision, recall, F1, AUROC): in the events, checkpoints and result CSV as "
              "classification/* (an ftlens extension; needs --valid with label answers).")
@click.option("--positive", metavar="LABEL",
              help="With --task-metrics: the positive class of two (default: the rarer).")
@click.option("--f-beta", "betas", type=click.FloatRange(min=0, min_open=True), multiple=True,
              metavar="BETA", help="With --task-metrics: report F-beta for this beta "
              "(repeatable; default 1).")
@render.SELECT
@click.option("--suffix", help="Part of the fine-tuned model's name.")
@click.option("--seed", type=int, help="The fine-tuning job's seed (same seed, same run).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the result CSV and events go. Default: next to TRAIN.")
@render.json_flag("job, its result files and the curve diagnosis")
@render.FAIL_ON
@click.pass_context
def train(ctx: click.Context, train_file: Path, valid_file: Path | None, model: str,
          method: str, beta: str, base_url: str | None, use_openai: bool, epochs: str,
          batch_size: str, lr_multiplier: str, task_metrics: bool, positive: str | None,
          betas: tuple[float, ...], select: str | None, suffix: str | None, seed: int | None,
          out_dir: Path | None, as_json: bool, fail_on: str | None) -> None:
    """Fine-tune MODEL on TRAIN and follow the loss live.

    Uploads the files, creates the job through the OpenAI fine-tuning API (on ftlens or on
    OpenAI), shows a progress bar with step, ETA and the latest losses, then writes the
    result CSV and events next to the data and diagnoses the loss curves. Ctrl-C asks whether
    to cancel the job.

    \b
    Examples:
      ftlens train examples/spam/train.jsonl --valid examples/spam/valid.jsonl \\
          --model smollm2-135m-instruct --epochs 2
      ftlens train train.jsonl --model gpt-4o-mini-2024-07-18 --openai --suffix spam
      ftlens train train.jsonl --model tiny-random-llama --base-url http://127.0.0.1:9000/v1
      ftlens train pairs.jsonl --model smollm2-135m-instruct --method dpo --beta 0.1
      ftlens train train.jsonl --valid valid.jsonl --model smollm2-135m-instruct \\
          --task-metrics --positive spam
    """
    from ftlens.cli.follow import finish, follow_job
    from ftlens.steps import finetune

    hyper = {"n_epochs": auto_or(epochs, int, "--epochs"),
             "batch_size": auto_or(batch_size, int, "--batch-size"),
             "learning_rate_multiplier": auto_or(lr_multiplier, float,
                                                  "--learning-rate-multiplier")}
    if method == "dpo":
        hyper["beta"] = auto_or(beta, float, "--beta")
    elif beta != "auto":
        raise click.UsageError("--beta is a DPO hyperparameter: add --method dpo")
    extra = _task_request(task_metrics, positive, betas, method=method,
                          valid=valid_file is not None, use_openai=use_openai)
    from ftlens.io.chat_dataset import data_kind
    from ftlens.io.chat_jsonl import open_checked

    wanted = "preference" if method == "dpo" else "chat"
    for path in (train_file, valid_file):
        if path is not None:
            open_checked(path)  # before any service is reached or started
            if data_kind(path) not in (None, wanted):
                raise click.UsageError(
                    f"{path} holds preference pairs (DPO data): add --method dpo"
                    if wanted == "chat" else
                    f"{path} holds chat examples; --method dpo trains on preference pairs "
                    "(input, preferred_output, non_preferred_output)")
    err = render.stderr()
    with finetune.connect(base_url, use_openai=use_openai) as endpoint:
        where = "an embedded ftlens service" if endpoint.embedded else endpoint.url
        err.print(f"uploading to {where}", highlight=False, soft_wrap=True)
        training = finetune.upload(endpoint, train_file)
        validation = finetune.upload(endpoint, valid_file) if valid_file else None
        job = finetune.create_job(endpoint, model=model, training_file=training,
                                  validation_file=validation, hyperparameters=hyper,
                                  suffix=suffix, seed=seed, method=method, extra=extra)
        err.print(f"fine-tuning job {job.id} created", highlight=False)
        job = follow_job(endpoint, job.id, err, quiet=as_json)
        finish(ctx, endpoint, job, out_dir or train_file.parent, as_json, fail_on, select)


def _task_request(on: bool, positive: str | None, betas: tuple[float, ...], *, method: str,
                  valid: bool, use_openai: bool) -> dict[str, object] | None:
    """The legacy API's task-metric fields for the job request (None: not asked for)."""
    if not on:
        if positive is not None or betas:
            raise click.UsageError("--positive and --f-beta apply to task metrics: add "
                                   "--task-metrics")
        return None
    if use_openai:
        raise click.UsageError("OpenAI's current fine-tuning API computes no task metrics; "
                               "leave --task-metrics out, or train on ftlens")
    if method != "supervised":
        raise click.UsageError("--task-metrics scores a supervised classifier; a DPO job "
                               "has none")
    if not valid:
        raise click.UsageError("--task-metrics scores the validation rows: add --valid FILE")
    from ftlens.steps.finetune import task_fields

    return task_fields(positive, betas)


def auto_or(value: str, kind: type, flag: str) -> int | float | str:
    if value == "auto":
        return value
    try:
        number = kind(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not 'auto' or a number",
                                 param_hint=flag) from None
    if number <= 0:
        raise click.BadParameter("must be positive", param_hint=flag)
    return number
