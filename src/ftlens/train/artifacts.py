"""What a run leaves on disk, shaped like an OpenAI job's: the result CSV, the event log,
checkpoints (the last few kept) and the final model, which reloads to the same logits."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Sequence
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
OPTIMIZER_FILE = "optimizer.pt"  # optimiser, schedule, RNG (and DPO reference) state
RESUME_DIR = "resume"  # the latest resume point of a run: weights and OPTIMIZER_FILE


class RunLog:
    """``results.csv`` and ``events.jsonl``, appended and flushed as the run goes, so a
    cancelled or crashed run keeps everything it logged."""

    def __init__(self, out_dir: Path, *, resume_step: int | None = None,
                 objective: str = "supervised") -> None:
        """``resume_step``: continue a paused or interrupted run's files from that step
        (what was logged after it, and is done again, is dropped) rather than start afresh.
        The CSV header is written with the first row (:meth:`add_columns` may add to it)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.keys = dict(RESULT_KEYS[objective])
        self.csv_path = out_dir / "results.csv"
        self.events_path = out_dir / "events.jsonl"
        resume = resume_step is not None and self.csv_path.exists()
        self._header_due = not resume
        if resume and resume_step is not None:
            _cut_after(self.csv_path, self.events_path, resume_step)
            with self.csv_path.open(encoding="utf-8", newline="") as f:
                header = next(csv.reader(f), [])
            self.keys.update({name: name for name in header[len(self.keys):]})
        self._csv: TextIO = self.csv_path.open("a" if resume else "w", encoding="utf-8",
                                               newline="")
        self._rows = csv.writer(self._csv, lineterminator="\n")
        self._events: TextIO = self.events_path.open("a" if resume else "w", encoding="utf-8")

    def add_columns(self, names: Sequence[str]) -> None:
        """Extra result columns, each holding the metrics-event key of its name (the task
        metrics); a resumed run keeps those its file has."""
        if self._header_due:
            self.keys.update({name: name for name in names})

    def event(self, event: Event) -> None:
        self._events.write(json.dumps(event.as_dict()) + "\n")
        self._events.flush()
        data = event.data
        if event.type == "metrics" and data is not None and "train_loss" in data:
            self._header()
            self._rows.writerow([str(data["step"]), *(_num(data.get(key)) for key in
                                                      list(self.keys.values())[1:])])
            self._csv.flush()

    def _header(self) -> None:
        if self._header_due:
            self._rows.writerow(self.keys)
            self._header_due = False

    def close(self) -> None:
        self._header()
        self._csv.close()
        self._events.close()


def _cut_after(csv_path: Path, events_path: Path, step: int) -> None:
    """Drop the result rows after ``step``, and the events from the first one about a later
    step on (each file rewritten atomically)."""
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if ln.split(",", 1)[0].isdigit()
                        and int(ln.split(",", 1)[0]) <= step]
    _replace(csv_path, "".join(kept))
    if not events_path.exists():
        return
    events = []
    for line in events_path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            data = json.loads(line).get("data") or {}
        except ValueError:  # a line cut by the kill
            break
        if isinstance(data, dict) and isinstance(data.get("step"), int) and data["step"] > step:
            break
        events.append(line)
    _replace(events_path, "".join(events))


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return "nan" if math.isnan(value) else f"{value:.6g}"


def save_model(model: Any, tokenizer: Any, folder: Path, meta: dict[str, Any],
               state_dict: dict[str, Any] | None = None,
               state: dict[str, Any] | None = None) -> None:
    """A LoRA adapter (or, for full fine-tuning, the whole model and its tokenizer) in
    safetensors, with ``ftlens.json`` naming the base model and the metrics at that point,
    and ``state`` (optimiser, schedule…) for a run to resume from. Written under a temporary
    name and renamed into place: a kill during the write leaves the previous folder whole."""
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
    if meta.get("method") == "full":
        tokenizer.save_pretrained(tmp)
    if state is not None:
        import torch

        torch.save(state, tmp / OPTIMIZER_FILE)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)  # killed from here to the next rename: the old one is kept
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def resume_point(out_dir: Path) -> Path | None:
    """The latest whole resume point of a run (None: it saved none yet)."""
    for folder in (out_dir / RESUME_DIR, out_dir / (RESUME_DIR + ".old")):
        if (folder / META_FILE).is_file() and (folder / OPTIMIZER_FILE).is_file():
            return folder
    return None


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
