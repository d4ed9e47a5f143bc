"""What a run leaves on disk, shaped like an OpenAI job's: the result CSV, the event log,
checkpoints (the last few kept) and the final model, which reloads to the same logits."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, TextIO

from ftlens.errors import ConfigError
from ftlens.train.config import Event

# the result CSV's columns, each with the metrics-event key it holds, per objective
RESULT_KEYS = {
    "supervised": {"step": "step", "train_loss": "train_loss",
                   "train_accuracy": "train_mean_token_accuracy", "valid_loss": "valid_loss",
                   "valid_mean_token_accuracy": "valid_mean_token_accuracy"},
    "dpo": {k: k for k in ("step", "train_loss", "train_reward_accuracy",
                           "train_reward_margin", "valid_loss", "valid_reward_accuracy",
                           "valid_reward_margin")},
}
RESULT_COLUMNS = tuple(RESULT_KEYS["supervised"])  # OpenAI's result CSV
META_FILE = "ftlens.json"
OPTIMIZER_FILE = "optimizer.pt"  # only in the checkpoint a paused run resumes from


class RunLog:
    """``results.csv`` and ``events.jsonl``, appended and flushed as the run goes, so a
    cancelled or crashed run keeps everything it logged."""

    def __init__(self, out_dir: Path, *, append: bool = False,
                 objective: str = "supervised") -> None:
        """``append``: continue a paused run's files rather than start them afresh."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.keys = RESULT_KEYS[objective]
        self.csv_path = out_dir / "results.csv"
        self.events_path = out_dir / "events.jsonl"
        resume = append and self.csv_path.exists()
        self._csv: TextIO = self.csv_path.open("a" if resume else "w", encoding="utf-8",
                                               newline="")
        self._events: TextIO = self.events_path.open("a" if resume else "w", encoding="utf-8")
        if not resume:
            self._csv.write(",".join(self.keys) + "\n")
            self._csv.flush()

    def event(self, event: Event) -> None:
        self._events.write(json.dumps(event.as_dict()) + "\n")
        self._events.flush()
        data = event.data
        if event.type == "metrics" and data is not None and "train_loss" in data:
            cells = [str(data["step"]), *(_num(data.get(key)) for key in
                                          list(self.keys.values())[1:])]
            self._csv.write(",".join(cells) + "\n")
            self._csv.flush()

    def close(self) -> None:
        self._csv.close()
        self._events.close()


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.6g}"


def save_model(model: Any, tokenizer: Any, folder: Path, meta: dict[str, Any],
               state_dict: dict[str, Any] | None = None) -> None:
    """A LoRA adapter (or, for full fine-tuning, the whole model and its tokenizer) in
    safetensors, with ``ftlens.json`` naming the base model and the metrics at that point."""
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
    if meta.get("method") == "full":
        tokenizer.save_pretrained(tmp)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def prune_checkpoints(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` ``step-N`` checkpoints; return those kept."""
    found = sorted((p for p in folder.glob("step-*") if p.name[5:].isdigit()),
                   key=lambda p: int(p.name[5:]))
    for old in found[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return found[-keep:]


def read_meta(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / META_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(
            f"{folder} is not an ftlens model or checkpoint (no readable {META_FILE})",
            hint="pass a run's model/ or checkpoints/step-N/") from None
    return meta


def load_tuned(folder: str | Path, *, trainable: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a saved model or checkpoint, in eval mode on the CPU
    (``trainable``: in train mode, a LoRA adapter's weights trainable, to tune it further)."""
    from ftlens.train import models

    meta = read_meta(folder)
    if meta.get("method") == "full":
        source = models.ModelSource(str(folder), "directory", str(folder))
        model, tok = models.load_model(source)
    else:
        from peft import PeftModel

        base, tok = models.load_model(models.resolve(meta["base_model"]))
        model = PeftModel.from_pretrained(base, str(folder), is_trainable=trainable)
    model.train(trainable)
    return model, tok


def tuned_meta(location: str) -> dict[str, Any] | None:
    """The metadata of an ftlens fine-tuned model or checkpoint folder (None: not one)."""
    if not (Path(location) / META_FILE).is_file():
        return None
    return read_meta(location)
