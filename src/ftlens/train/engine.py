"""The local fine-tuning loop.

One optimiser step per OpenAI batch, its examples split into length-sorted micro-batches
(gradient accumulation). Supervised: the loss is the mean over every assistant token of the
step, so a micro-batch's share does not depend on how the step was split. DPO: the mean over
the step's preference pairs (:mod:`ftlens.train.preference`).
It runs through ``accelerate``: the same code on one CPU, one GPU (bf16) or under
``accelerate launch`` (each process takes its share of every step; gradients are averaged).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ftlens.errors import ConfigError
from ftlens.io.chat_dataset import Conversation, read_conversations, read_preferences
from ftlens.train import models
from ftlens.train.accumulate import accumulate, share
from ftlens.train.artifacts import (
    OPTIMIZER_FILE,
    RESUME_DIR,
    RunLog,
    load_tuned,
    prune_checkpoints,
    read_meta,
    save_model,
    tuned_meta,
)
from ftlens.train.config import Event, TrainConfig
from ftlens.train.data import Example, collate, encode_all, micro_batches, step_batches
from ftlens.train.estimate import available_memory, check_fits, estimate
from ftlens.train.preference import PreferenceRun, encode_pairs
from ftlens.train.task import TaskScorer, spec_for

Callback = Callable[[Event], None]
StopCheck = Callable[[], "str | bool | None"]
SMALL_MODEL = 20_000_000  # parameters


@dataclass
class TrainResult:
    status: str  # "succeeded", "cancelled" or "paused"
    out_dir: Path
    model_dir: Path | None  # None when cancelled before the end
    steps: int
    total_steps: int
    trained_tokens: int
    seconds: float  # the whole job, loading included
    hyperparameters: dict[str, Any]
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0  # the optimisation loop only (validation included)
    model: Any = field(default=None, repr=False)  # the trained model, in eval mode
    tokenizer: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "out_dir": str(self.out_dir),
                "model_dir": None if self.model_dir is None else str(self.model_dir),
                "steps": self.steps, "total_steps": self.total_steps,
                "trained_tokens": self.trained_tokens, "seconds": round(self.seconds, 3),
                "train_seconds": round(self.train_seconds, 3),
                "tokens_per_second": round(self.tokens_per_second, 1),
                "hyperparameters": self.hyperparameters, "checkpoints": self.checkpoints}

    @property
    def tokens_per_second(self) -> float:
        """Trained tokens per second of the training loop."""
        return self.trained_tokens / self.train_seconds if self.train_seconds > 0 else 0.0


def train(config: TrainConfig, *, callbacks: Sequence[Callback] = (),
          should_stop: StopCheck | None = None) -> TrainResult:
    """Run one job. Every event goes to ``callbacks`` (on the main process) and to
    ``out_dir/events.jsonl``; ``should_stop`` is asked before every step: ``"pause"`` saves a
    checkpoint (with the optimiser state) that ``TrainConfig.resume_from`` continues from, any
    other true value cancels. A stop leaves the results, events and checkpoints written so
    far."""
    models.require_local()
    import torch
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    acc = Accelerator(cpu=not cuda, mixed_precision="bf16" if bf16 else "no")
    out = Path(config.out_dir)
    resume_step = int(read_meta(config.resume_from)["step"]) if config.resume_from else None
    log = (RunLog(out, resume_step=resume_step, objective=config.objective)
           if acc.is_main_process else None)

    def emit(event: Event) -> None:
        if log is not None:
            log.event(event)
            for cb in callbacks:
                cb(event)

    try:
        result = _run(config, acc, emit, should_stop or (lambda: None), out, log)
        if acc.is_main_process:
            (out / "result.json").write_text(json.dumps(result.as_dict(), indent=2),
                                             encoding="utf-8")
        return result
    finally:
        if log is not None:
            log.close()


def _run(config: TrainConfig, acc: Any, emit: Callback, should_stop: StopCheck,
         out: Path, log: RunLog | None) -> TrainResult:
    import torch
    from accelerate.utils import set_seed

    from ftlens.train.loss import AnswerLogps, AnswerLoss

    started = time.monotonic()
    dpo = config.objective == "dpo"
    emit(Event("message", "Validating training file"))
    read = read_preferences if dpo else read_conversations
    train_data = read(config.training_file)
    valid_data = read(config.validation_file) if config.validation_file else []
    spec = (spec_for(config.task_metrics, cast("list[Conversation]", train_data),
                     cast("list[Conversation]", valid_data))  # supervised data; before loading
            if config.task_metrics is not None else None)
    if spec is not None and log is not None:
        log.add_columns(spec.columns())
    set_seed(config.seed)
    resume = read_meta(config.resume_from) if config.resume_from else None
    model, tok, source, label, adapter = _load(config, acc, resume, emit)
    task = (TaskScorer.build(spec, cast("list[Conversation]", valid_data), tok,
                             batch_tokens=config.micro_batch_tokens)
            if spec is not None else None)
    checkpointing = _checkpointing(model, config, acc)
    if acc.device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cpu_threads(model, acc.num_processes))
    encode: Callable[..., Any] = encode_pairs if dpo else encode_all
    train_set = encode(tok, train_data, max_length=config.max_length,
                       path=config.training_file, model=label)
    valid_set = encode(tok, valid_data, max_length=config.max_length,
                       path=config.validation_file or "", model=label)
    hp = config.hyperparameters.resolve(len(train_set))
    steps_per_epoch = math.ceil(len(train_set) / hp.batch_size)
    total = steps_per_epoch * hp.n_epochs
    eval_every = config.eval_every or max(1, total // 20)
    lr = hp.learning_rate(config.method)
    if checkpointing:
        _enable_checkpointing(model)
    if config.quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    model = model if adapter else _trainable(model, config)
    longest = max(map(len, train_set))
    needs = estimate(model, micro_batch_tokens=max(longest, min(
                         config.micro_batch_tokens, hp.batch_size * longest)),
                     total_tokens=sum(map(len, train_set)) * hp.n_epochs,
                     device=acc.device, available=available_memory(acc.device),
                     loaded=acc.device.type == "cpu")
    emit(Event("message", f"{label} needs {needs.describe()}"))
    check_fits(needs, label)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = int(total * config.warmup_fraction)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, warmup,
                                                                                 total))
    start, saved = 0, {}
    if resume is not None and config.resume_from:
        start, saved = int(resume["step"]), _restore(model, optimizer, schedule,
                                                     Path(config.resume_from), config.method)
    loop_started = time.monotonic()  # DPO's reference pass is part of the training work
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    run: _Run | PreferenceRun
    if dpo:
        net, optimizer = acc.prepare(AnswerLogps(model), optimizer)
        emit(Event("message", "Computing the reference model's log-probabilities"))
        # the model before step 1: the LoRA-disabled model for a new adapter; the weights as
        # loaded for full fine-tuning or an adapter tuned further
        reference = (acc.unwrap_model(net).model.disable_adapter
                     if config.method == "lora" and not adapter else None)
        if start and reference is None and "reference" not in saved:
            raise ConfigError("this DPO job cannot resume: its reference model (the weights "
                              "before the first step) is gone", hint="create it again")
        run = PreferenceRun(acc, net, train_set, valid_set, pad, config.micro_batch_tokens,
                            float(hp.beta or 0.0), reference, saved.get("reference"))
    else:
        net, optimizer = acc.prepare(AnswerLoss(model), optimizer)
        run = _Run(acc, net, train_set, valid_set, pad, config.micro_batch_tokens)
    what = (f"DPO, beta {hp.beta:g}, on {len(train_set)} preference pairs" if dpo
            else f"on {len(train_set)} examples")
    emit(Event("message", f"Fine-tuning {label} ({config.method}) {what}: "
                          f"{hp.n_epochs} epochs of "
                          f"{steps_per_epoch} steps, batch size {hp.batch_size}, "
                          f"learning rate {lr:g}"
                          + (f", {acc.num_processes} processes" if acc.num_processes > 1
                             else "")
                          + (", gradient checkpointing" if checkpointing else "")
                          + (", 4-bit QLoRA" if config.quantization else ""),
               data={"hyperparameters": hp.as_dict()}))  # the values "auto" resolved to
    meta = {"base_model": source.name, "method": config.method,
            "objective": config.objective,
            "hyperparameters": hp.as_dict(), "seed": config.seed}
    result = TrainResult("succeeded", out, None, 0, total, 0, 0.0, hp.as_dict())
    if resume is not None:
        result.trained_tokens = int(resume.get("trained_tokens", 0))
        emit(Event("message", f"Resuming from step {start}"))
    resume_every = config.resume_every or (max(1, total // 20) if config.method == "lora"
                                           else steps_per_epoch)
    valid_cursor = task_cursor = 0
    step = 0
    data: dict[str, Any] = {}

    def state() -> dict[str, Any]:
        """What a resumed run needs besides the weights."""
        out = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
               "rng": torch.get_rng_state()}
        if isinstance(run, PreferenceRun):
            out["reference"] = run.reference_logps()
        return out

    for epoch in range(hp.n_epochs):
        for batch in step_batches(train_set, hp.batch_size, config.seed, epoch):
            if step < start:  # done before the pause or interruption this run resumes
                step += 1
                if valid_set and (step % eval_every == 0 or step == total):
                    valid_cursor = (valid_cursor + min(config.valid_batch, len(valid_set))
                                    ) % len(valid_set)
                    if task is not None and step % steps_per_epoch:
                        task_cursor = _window(task_cursor, config, valid_set)[1]
                continue
            stop = should_stop()
            if stop:
                result.status = "paused" if stop == "pause" else "cancelled"
                break
            step += 1
            net.train()
            loss, measured, tokens = run.step(batch)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            result.trained_tokens += tokens
            data = {"step": step, "train_loss": loss,
                    **{f"train_{k}": v for k, v in measured.items()}, "total_steps": total}
            if valid_set and (step % eval_every == 0 or step == total):
                chosen = [(valid_cursor + i) % len(valid_set)
                          for i in range(min(config.valid_batch, len(valid_set)))]
                valid_cursor = (valid_cursor + len(chosen)) % len(valid_set)
                data.update({f"valid_{k}": v for k, v in run.evaluate(chosen).items()})
            if valid_set and step % steps_per_epoch == 0:
                full = run.evaluate(range(len(valid_set)))
                data.update({f"full_valid_{k}": v for k, v in full.items()})
            if task is not None and (step % steps_per_epoch == 0 or "valid_loss" in data):
                # every row at an epoch's end, a rotating sample at the steps between
                rows: Sequence[int] = range(len(valid_set))
                if step % steps_per_epoch:
                    rows, task_cursor = _window(task_cursor, config, valid_set)
                data.update(task.measure(acc.unwrap_model(net).model, rows))
            emit(Event("metrics", f"Step {step}/{total}: training loss={loss:.4f}", data))
            if step < total and (step % resume_every == 0 or step % steps_per_epoch == 0):
                _save(acc, net, tok, out / RESUME_DIR, {
                    **meta, "step": step, "trained_tokens": result.trained_tokens,
                    "metrics": data}, state())
        else:
            if step > start:
                result.checkpoints.append(_checkpoint(
                    acc, net, tok, out, step, data, {**meta, "trained_tokens":
                                                     result.trained_tokens},
                    config.keep_checkpoints))
                emit(Event("checkpoint", f"Checkpoint saved at step {step}",
                           result.checkpoints[-1]))
            continue
        break
    result.steps = step
    result.train_seconds = time.monotonic() - loop_started
    if result.status == "succeeded":
        result.model_dir = out / "model"
        _save(acc, net, tok, result.model_dir, {**meta, "step": step, "metrics": data})
        emit(Event("message", f"Fine-tuning finished: {step} steps, "
                              f"{result.trained_tokens} trained tokens"))
    elif result.status == "paused":
        result.checkpoints.append(_checkpoint(
            acc, net, tok, out, step, data, {**meta, "trained_tokens": result.trained_tokens},
            config.keep_checkpoints, state=state()))
        emit(Event("checkpoint", f"Checkpoint saved at step {step}", result.checkpoints[-1]))
        emit(Event("message", f"Fine-tuning paused after step {step}"))
    else:
        emit(Event("message", f"Fine-tuning cancelled after step {step}", level="warn"))
    result.seconds = time.monotonic() - started
    result.model = acc.unwrap_model(net).model.eval()
    result.tokenizer = tok
    return result


def _window(cursor: int, config: TrainConfig, valid_set: Sequence[Any]
            ) -> tuple[list[int], int]:
    """The task-metric sample at ``cursor`` (wrapping round the validation rows) and the
    next cursor."""
    n = min(config.task_metrics.sample if config.task_metrics else 0, len(valid_set))
    return [(cursor + i) % len(valid_set) for i in range(n)], (cursor + n) % len(valid_set)


def _load(config: TrainConfig, acc: Any, resume: dict[str, Any] | None, emit: Callback
          ) -> tuple[Any, Any, models.ModelSource, str, bool]:
    """``(model, tokenizer, base source, label, adapter)``: the base model, or (``adapter``)
    a fine-tuned model's adapter to train further, or a paused run's state."""
    parent = tuned_meta(config.model)  # a fine-tuned model or checkpoint, tuned further
    adapter = parent is not None and parent.get("method") != "full"
    source = models.resolve(str(parent["base_model"]) if adapter and parent else config.model)
    label = config.model_label or (config.model if adapter else source.name)
    emit(Event("message", f"Loading model {label}"))
    if config.quantization:
        _check_qlora(acc, adapter)
    if adapter:  # its adapter, trained further (resumed: the paused adapter), on its base
        model, tok = load_tuned(config.resume_from or config.model, trainable=True)
    else:
        model, tok = models.load_model(
            models.ModelSource(source.name, "directory", str(config.resume_from))
            if resume and config.method == "full" else source,
            quantization=config.quantization)
    return model, tok, source, label, adapter


def _restore(model: Any, optimizer: Any, schedule: Any, folder: Path, method: str
             ) -> dict[str, Any]:
    """Load a paused or interrupted run's adapter (a full model was loaded from the folder
    already), optimiser, schedule and random state; returns that saved state."""
    import torch

    if method == "lora":
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    saved = folder / OPTIMIZER_FILE
    if not saved.exists():
        return {}
    state: dict[str, Any] = torch.load(saved, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    if "rng" in state:
        torch.set_rng_state(state["rng"])
    return state


def _check_qlora(acc: Any, adapter: bool) -> None:
    """4-bit QLoRA needs a CUDA GPU and bitsandbytes (the ``qlora`` extra)."""
    if acc.device.type != "cuda":
        raise ConfigError("4-bit QLoRA needs a CUDA GPU; this machine has none",
                          hint="leave quantization out to train in full precision here")
    if adapter:
        raise ConfigError("a fine-tuned model is tuned further in full precision",
                          hint="leave quantization out")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        from ftlens.errors import MissingDependencyError

        raise MissingDependencyError("bitsandbytes", extra="qlora")


def _checkpointing(model: Any, config: TrainConfig, acc: Any) -> bool:
    """Whether to recompute activations in the backward pass: as configured, else for
    models of 1 B parameters or more on a GPU (where activations, not weights, run out)."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    return acc.device.type == "cuda" and sum(p.numel() for p in model.parameters()) >= 1e9


def _enable_checkpointing(model: Any) -> None:
    kwargs = {"use_reentrant": False}  # works with frozen inputs (LoRA) and under DDP
    if hasattr(model, "activation_checkpointing_enable"):  # its name from transformers 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def cpu_threads(model: Any, processes: int = 1) -> int:
    """This process's share of the cores; one thread for small models, where the threads'
    synchronisation costs more than it saves."""
    if sum(p.numel() for p in model.parameters()) < SMALL_MODEL:
        return 1
    return max(1, len(os.sched_getaffinity(0)) // processes)


def _trainable(model: Any, config: TrainConfig) -> Any:
    if config.method == "full":
        model.train()
        return model
    from peft import LoraConfig, get_peft_model

    lora = config.lora
    targets = lora.target_modules if isinstance(lora.target_modules, str) \
        else list(lora.target_modules)
    peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                             target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, peft_config)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to the full rate, then linear decay to zero at the last step."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


class _Run:
    """The per-step work: this process's share of a batch, accumulation, reductions."""

    def __init__(self, acc: Any, net: Any, train_set: list[Example], valid_set: list[Example],
                 pad: int, micro_tokens: int) -> None:
        self.acc, self.net = acc, net
        self.train_set, self.valid_set = train_set, valid_set
        self.pad, self.micro_tokens = pad, micro_tokens

    def step(self, batch: list[int]) -> tuple[float, dict[str, float], int]:
        """Forward and backward over one optimiser step; returns its loss, its other metrics
        (token accuracy) and trained-on tokens (all processes together)."""
        acc = self.acc
        n_target = sum(self.train_set[i].n_trained for i in batch)
        scale = acc.num_processes / n_target  # DDP averages gradients over processes

        def run(part: list[int]) -> tuple[Any, Any]:
            tensors = collate([self.train_set[i] for i in part], self.pad)
            stats = self.net(**{key: t.to(acc.device) for key, t in tensors.items()})
            return stats[0] * scale, stats.detach()

        parts = list(micro_batches(share(acc, batch), self.train_set, self.micro_tokens))
        loss_sum, correct, count = accumulate(acc, self.net, parts, 3, run).tolist()
        tokens = sum(len(self.train_set[i]) for i in batch)
        return loss_sum / count, {"mean_token_accuracy": correct / count}, tokens

    def evaluate(self, indices: Sequence[int]) -> dict[str, float]:
        """Loss and token accuracy over validation examples (all processes together)."""
        import torch

        acc = self.acc
        self.net.eval()
        totals = torch.zeros(3, device=acc.device)
        with torch.no_grad():
            for part in micro_batches(share(acc, indices), self.valid_set, self.micro_tokens):
                tensors = collate([self.valid_set[i] for i in part], self.pad)
                totals += self.net(**{k: t.to(acc.device) for k, t in tensors.items()})
        loss_sum, correct, count = acc.reduce(totals, reduction="sum").tolist()
        return {"loss": loss_sum / count, "mean_token_accuracy": correct / count}


def _save(acc: Any, net: Any, tok: Any, folder: Path, meta: dict[str, Any],
          state: dict[str, Any] | None = None) -> None:
    """The weights (and ``state``, what resuming needs besides) into ``folder``, atomically."""
    inner = acc.unwrap_model(net).model
    weights = acc.get_state_dict(inner)  # gathered across processes (FSDP)
    if acc.is_main_process:
        save_model(inner, tok, folder, meta, state_dict=weights, state=state)
    acc.wait_for_everyone()


def _checkpoint(acc: Any, net: Any, tok: Any, out: Path, step: int, metrics: dict[str, Any],
                meta: dict[str, Any], keep: int, state: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    folder = out / "checkpoints" / f"step-{step}"
    shown = {k: v for k, v in metrics.items() if k != "total_steps"}
    _save(acc, net, tok, folder, {**meta, "step": step, "metrics": shown}, state)
    if acc.is_main_process:
        prune_checkpoints(folder.parent, keep)
    return {"step": step, "path": str(folder), "metrics": shown}

