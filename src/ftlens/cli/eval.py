"""``ftlens eval``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from ftlens.cli import render
from ftlens.cli.judging import (
    AUDIT_OPTION,
    JUDGING_KEYS,
    TRAIN_OPTION,
    exit_on_gates,
    judging_options,
)


def default_cache(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/ftlens/responses.sqlite`` (``~/.cache`` when unset)."""
    root = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "ftlens" / "responses.sqlite"


@click.command("eval")
@click.option("--model", required=True, help="The model to evaluate (e.g. the fine-tuned one).")
@click.option("--data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Labelled chat JSONL: the final assistant message of each line is the truth.")
@click.option("--base-url", help="Any OpenAI-compatible endpoint, e.g. a running "
              "`ftlens serve` at http://127.0.0.1:8000/v1.")
@click.option("--openai", "use_openai", is_flag=True,
              help="Use the OpenAI API (https://api.openai.com/v1).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the API key (optional for --base-url).")
@click.option("--baseline", help="A second model asked the same questions (e.g. the base "
              "model), compared with a significance test.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Predictions file (`ftlens metrics` reads it). Default: next to the data, "
              "DATA.MODEL.predictions.jsonl; the baseline's gets .baseline in its name.")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path),
              help="SQLite response cache. Default: ~/.cache/ftlens/responses.sqlite.")
@click.option("--concurrency", type=int, default=16, show_default=True,
              help="Requests in flight at once.")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for one response.")
@click.option("--retries", type=int, default=5, show_default=True,
              help="Retries per request (429, 5xx, timeouts, dropped connections).")
@click.option("--max-tokens", type=int, default=16, show_default=True,
              help="Longest answer to generate.")
@click.option("--top-logprobs", type=int, default=20, show_default=True,
              help="Alternatives per token for label probabilities (20 is the OpenAI "
              "maximum; 0: none, no threshold analysis).")
@TRAIN_OPTION
@click.option("--valid", "valid_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Validation data: the model answers it too and the threshold is chosen "
              "there (judged on the test rows); also checked like --train.")
@AUDIT_OPTION
@click.option("--batch", "use_batch", is_flag=True,
              help="Send the requests as batches (the Batch API: half price on OpenAI, "
              "batched inference on `ftlens serve`), one per model, and wait for them; a "
              "rerun after Ctrl-C follows the same batches. Same answers, same report.")
@judging_options
@render.json_flag("evaluation")
@click.pass_context
def eval_command(ctx: click.Context, model: str, data: Path, base_url: str | None,
                 use_openai: bool, api_key_env: str, baseline: str | None, out: Path | None,
                 cache: Path | None, concurrency: int, timeout: float, retries: int,
                 max_tokens: int, top_logprobs: int, train_file: Path | None,
                 valid_file: Path | None, audit_file: Path | None, use_batch: bool,
                 as_json: bool, fail_on: str | None, **opts: object) -> None:
    """Ask a model to answer every example of a labelled test set, then judge the answers:
    metrics, intervals, threshold, comparison with a baseline, verdict.

    Every response is kept in a SQLite cache, so a rerun (or a run resumed after a crash or
    Ctrl-C) sends no request twice. The API key is never written anywhere.

    \b
    Examples:
      ftlens eval --model ft:gpt-4o-mini:acme::abc123 --data test.jsonl --openai \\
          --baseline gpt-4o-mini --positive spam
      ftlens eval --model spam-lora --data test.jsonl --base-url http://127.0.0.1:8000/v1
      ftlens eval --model m --data test.jsonl --base-url URL --json --require "recall(spam)>=0.9"
      ftlens eval --model m --data test.jsonl --base-url URL --train train.jsonl
      ftlens eval --model m --data test.jsonl --base-url URL --audit audit.json
      ftlens eval --model ft:gpt-4o-mini:acme::abc123 --data test.jsonl --openai --batch
    """
    from ftlens.client.endpoint import endpoint_from_cli
    from ftlens.client.retry import RetryPolicy
    from ftlens.errors import ConfigError
    from ftlens.steps.ask import EvalConfig, run_eval
    from ftlens.steps.judge import check_tuning, options_from_cli

    options, _ = options_from_cli(**{k: opts[k] for k in JUDGING_KEYS})  # type: ignore[arg-type]
    check_tuning(options, valid_file is not None, "--valid")
    if audit_file is not None and train_file is not None:
        raise ConfigError("--audit and --train both say which test rows were seen in training",
                          hint="pick one")
    endpoint = endpoint_from_cli(base_url=base_url, use_openai=use_openai, key_env=api_key_env,
                                 timeout=timeout, environ=os.environ)
    config = EvalConfig(data=data, model=model, endpoint=endpoint, baseline=baseline, out=out,
                        cache=cache or default_cache(), max_tokens=max_tokens,
                        top_logprobs=top_logprobs, concurrency=concurrency,
                        retry=RetryPolicy(max_attempts=retries + 1), train=train_file,
                        valid=valid_file, audit=audit_file, batch=use_batch)
    err = render.stderr()
    try:
        with render.progress_bar(err, counts=True) as progress:
            run = run_eval(config, options, progress)
    except KeyboardInterrupt:
        click.echo(f"the answers received so far are cached in {config.cache}; rerun the "
                   "same command to resume", err=True)
        raise
    if as_json:
        render.print_json(run.to_dict())
    else:
        from ftlens.cli.eval_view import show_run

        show_run(render.stdout(), run)
    exit_on_gates(ctx, run.evaluation.findings, fail_on)
