"""What a local fine-tuning job needs, and what it reports while it runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ftlens.errors import ConfigError
from ftlens.train.hyperparams import OBJECTIVES, Hyperparameters

METHODS = ("lora", "full")


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"


@dataclass(frozen=True)
class TaskMetricsSettings:
    """Score the validation rows as a classifier at every validation step (OpenAI's legacy
    ``compute_classification_metrics``): ``positive`` names the positive class of two
    (default: the rarer one), ``n_classes`` checks the label count, ``betas`` the F-beta values
    reported; ``sample`` rows are scored between epoch ends, all of them at each epoch end."""

    positive: str | None = None
    n_classes: int | None = None
    betas: tuple[float, ...] = (1.0,)
    sample: int = 32


@dataclass(frozen=True)
class TrainConfig:
    """A fine-tuning job. ``out_dir`` receives ``results.csv``, ``events.jsonl``,
    ``checkpoints/step-N/`` (the last ``keep_checkpoints``) and ``model/``."""

    model: str  # a built-in or registered name, a model directory, a .gguf file, a hub id
    training_file: str
    out_dir: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    method: str = "lora"  # what is trained: a LoRA adapter or every weight
    objective: str = "supervised"  # how: "supervised" (chat examples) or "dpo" (preferences)
    lora: LoraSettings = field(default_factory=LoraSettings)
    seed: int = 0
    eval_every: int = 0  # steps between small-batch validation losses; 0: about 20 per run
    valid_batch: int = 8  # examples in that small validation batch
    max_length: int = 2048  # tokens per example; longer examples are cut
    micro_batch_tokens: int = 4096  # padded tokens per forward pass (gradient accumulation)
    warmup_fraction: float = 0.1
    keep_checkpoints: int = 3
    resume_from: str | None = None  # a paused run's checkpoint, or an interrupted run's resume/
    # steps between resume points (out_dir/resume: weights, optimiser, schedule, RNG); 0: about
    # 20 per run for LoRA, each epoch end for full fine-tuning (the whole model is written)
    resume_every: int = 0
    model_label: str | None = None  # how messages name the model (default: ``model``)
    # recompute activations in the backward pass (less memory, ~30 % more time); None: on for
    # models of 1 B parameters or more on a GPU
    gradient_checkpointing: bool | None = None
    quantization: str | None = None  # "4bit": QLoRA (CUDA and the `qlora` extra)
    task_metrics: TaskMetricsSettings | None = None  # None: loss and token accuracy only

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}", hint="use 'lora' or 'full'")
        if self.quantization not in (None, "4bit"):
            raise ConfigError(f"unknown quantization {self.quantization!r}",
                              hint="use '4bit' (QLoRA) or leave it out")
        if self.quantization and self.method != "lora":
            raise ConfigError("4-bit quantization trains a LoRA adapter (QLoRA)",
                              hint="use method 'lora' with quantization '4bit'")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {self.objective!r}",
                              hint="use 'supervised' or 'dpo'")
        beta = self.hyperparameters.beta
        if self.objective == "dpo" and beta is None:
            object.__setattr__(self, "hyperparameters",
                               replace(self.hyperparameters, beta="auto"))
        elif self.objective == "supervised" and beta is not None:
            raise ConfigError("beta is a DPO hyperparameter", hint="use objective 'dpo'")
        for name in ("valid_batch", "max_length", "micro_batch_tokens", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.task_metrics is not None and self.objective != "supervised":
            raise ConfigError("task metrics score a supervised classifier's answers",
                              hint="leave task metrics off for a DPO job")
        if self.task_metrics is not None and self.task_metrics.sample < 1:
            raise ConfigError("task_metrics.sample must be at least 1")
        if self.eval_every < 0 or self.resume_every < 0 or not 0 <= self.warmup_fraction < 1:
            raise ConfigError("eval_every and resume_every must be >= 0 and warmup_fraction "
                              "in [0, 1)")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @staticmethod
    def from_json(text: str) -> TrainConfig:
        raw: dict[str, Any] = json.loads(text)
        given = {k: v for k, v in (raw.get("hyperparameters") or {}).items() if v is not None}
        raw["hyperparameters"] = Hyperparameters.from_dict(
            given, raw.get("objective", "supervised"))
        lora = dict(raw.get("lora") or {})
        if isinstance(lora.get("target_modules"), list):
            lora["target_modules"] = tuple(lora["target_modules"])
        raw["lora"] = LoraSettings(**lora)
        task = raw.get("task_metrics")
        try:
            if isinstance(task, dict):
                raw["task_metrics"] = TaskMetricsSettings(**{
                    **task, "betas": tuple(task.get("betas") or (1.0,))})
            return TrainConfig(**raw)
        except TypeError as exc:
            raise ConfigError(f"bad training config: {exc}") from None

    @staticmethod
    def load(path: str | Path) -> TrainConfig:
        try:
            return TrainConfig.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from None


@dataclass(frozen=True)
class Event:
    """One entry of a job's event stream, shaped like OpenAI's fine-tuning events.

    ``type`` is ``message`` (``data`` None, except the one that starts the training loop:
    ``{"hyperparameters": …}``, the values used, ``"auto"`` resolved), ``metrics``
    (``data``: step, train_loss,
    train_mean_token_accuracy, total_steps and, when measured, valid_loss,
    valid_mean_token_accuracy, full_valid_loss, full_valid_mean_token_accuracy and, with task
    metrics on, the ``classification/…`` values of :mod:`ftlens.core.task_metrics`) or
    ``checkpoint`` (``data``: step, path, metrics)."""

    type: str
    message: str
    data: dict[str, Any] | None = None
    level: str = "info"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
