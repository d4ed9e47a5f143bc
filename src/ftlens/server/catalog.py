"""Which models the service knows: the built-in ones, those the operator registered (in the
home or with ``serve --model``), hub ids in the local Hugging Face cache, and the fine-tuned
models and checkpoints its jobs made. A client names models; only the operator names paths."""

from __future__ import annotations

import shutil
from typing import Any

from ftlens.errors import FtlensError
from ftlens.server.store import Store
from ftlens.train.registry import Registry

BASE_MODELS = ("smollm2-135m-instruct", "tiny-random-llama")


class Catalog:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store, self.registry = store, registry

    def base_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a base model here (None: it can)."""
        from ftlens.train import models

        try:
            models.resolve(name, registry=self.registry, paths=False)
        except FtlensError as exc:
            return exc.message
        return None

    def base_names(self) -> list[str]:
        return [*BASE_MODELS, *(r.name for r in self.registry.all())]

    def exists(self, name: str) -> bool:
        return self.store.find_model(name) is not None or self.base_problem(name) is None

    def listed(self) -> list[dict[str, Any]]:
        """Every model that can be fine-tuned or chatted with, as ``/v1/models`` lists them
        (cached hub ids that are not registered are usable but not listed)."""
        items = [{"id": name, "object": "model", "created": 0, "owned_by": "ftlens"}
                 for name in BASE_MODELS]
        items += [{"id": r.name, "object": "model", "created": 0, "owned_by": "operator"}
                  for r in self.registry.all()]
        for job in self.store.list_jobs():
            name = job["fine_tuned_model"]
            if job["status"] == "succeeded" and name and self.store.find_model(name):
                items.append({"id": name, "object": "model", "created": job["finished_at"],
                              "owned_by": "ftlens"})
        return items

    def delete(self, name: str) -> bool:
        """Delete a fine-tuned model: its adapter and its job's checkpoints. False when no
        job made a model of that name (or it is gone already)."""
        job = self.store.job_of_model(name)
        if job is None or self.store.find_model(name) is None:
            return False
        folder = self.store.jobs_dir / job["id"]
        for part in ("model", "checkpoints"):
            shutil.rmtree(folder / part, ignore_errors=True)
        return True
