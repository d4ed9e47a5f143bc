"""Which models the service knows: the built-in ones, those the operator registered (in the
home or with ``serve --model``), hub ids in the local Hugging Face cache, and the fine-tuned
models and checkpoints its jobs made. A client names models; only the operator names paths."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from ftlens.errors import FtlensError
from ftlens.server.store import Store
from ftlens.train.registry import Registry

BASE_MODELS = ("smollm2-135m-instruct", "tiny-random-llama")
# where a training file uses each part of function calling (raw quotes only occur around keys)
TOOL_PARTS = {"tools": re.compile(rb'"tools"\s*:\s*\[\s*\{'),
              "tool_calls": re.compile(rb'"tool_calls"\s*:\s*\[\s*\{'),
              "tool": re.compile(rb'"role"\s*:\s*"tool"')}


class Catalog:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store, self.registry = store, registry

    def base_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a base model here (None: it can). A fine-tuned model or
        checkpoint can: a job tunes it further (supervised, then DPO, as on OpenAI)."""
        from ftlens.train import models

        if name.startswith("ft:") and self.store.find_model(name) is not None:
            return None
        try:
            models.resolve(name, registry=self.registry, paths=False)
        except FtlensError as exc:
            return exc.message
        except OSError as exc:  # a registered file that went away
            return f"its files cannot be read ({exc.strerror or exc})"
        return None

    def base_names(self) -> list[str]:
        return [*BASE_MODELS, *(r.name for r in self.registry.all())]

    def exists(self, name: str) -> bool:
        return self.store.find_model(name) is not None or self.base_problem(name) is None

    def listed(self) -> list[dict[str, Any]]:
        """Every model that can be fine-tuned or chatted with, as ``/v1/models`` lists them:
        the fine-tuned models and the checkpoints (``…:ckpt-step-N``) among them (cached hub
        ids that are not registered are usable but not listed)."""
        items = [{"id": name, "object": "model", "created": 0, "owned_by": "ftlens"}
                 for name in BASE_MODELS]
        items += [{"id": r.name, "object": "model", "created": 0, "owned_by": "operator"}
                  for r in self.registry.all()]
        for job in self.store.list_jobs():
            name = job["fine_tuned_model"]
            if job["status"] == "succeeded" and name and self.store.find_model(name):
                items.append({"id": name, "object": "model", "created": job["finished_at"],
                              "owned_by": "ftlens"})
        items += [{"id": c["name"], "object": "model", "created": c["created_at"],
                   "owned_by": "ftlens"} for c in self.store.all_checkpoints()]
        return items

    def delete(self, name: str) -> bool:
        """Delete a fine-tuned model: its adapter and its job's checkpoints (they are no longer
        listed, retrieved or answered as models either). False when no job made a model of
        that name (or it is gone already); a checkpoint alone is not deleted."""
        job = self.store.job_of_model(name)
        if job is None or self.store.find_model(name) is None:
            return False
        folder = self.store.jobs_dir / job["id"]
        for part in ("model", "checkpoints"):
            shutil.rmtree(folder / part, ignore_errors=True)
        return True

    def template_source(self, name: str) -> str | None:
        """The chat template of a base model, read from its files without loading it (None
        when it is not at hand without loading, e.g. a packaged GGUF not converted yet)."""
        from ftlens.train import models

        try:
            source = models.resolve(name, registry=self.registry, paths=False)
            folder = (models.tokenizer_cache(source) if source.gguf_file is not None
                      else Path(source.path))
            return _template_in(folder)
        except (FtlensError, OSError):  # a registered file gone: the job start says so
            return None

    def tool_problem(self, name: str, files: list[tuple[str, Path]]) -> str | None:
        """The first use of function calling in ``files`` (file id, path) that the model's
        template would drop, as "FILE line N: why" (None: none, or the template is not at
        hand; the job then checks every example when it starts)."""
        from ftlens.train.masking import supports, tool_problem

        source = self.template_source(name)
        if source is None:
            return None
        for file_id, path in files:
            try:
                data = path.read_bytes()
            except OSError:  # its bytes went missing: the job fails at its start, saying so
                continue
            for part, pattern in TOOL_PARTS.items():
                found = pattern.search(data)
                if found and not supports(source, part):
                    line = data.count(b"\n", 0, found.start()) + 1
                    return f"{file_id} line {line}: {tool_problem(name, part)}"
        return None


def _template_in(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):  # named templates: {"name": ..., "template": ...}
        return "\n".join(str(t.get("template", "")) for t in template if isinstance(t, dict))
    return template if isinstance(template, str) else None
