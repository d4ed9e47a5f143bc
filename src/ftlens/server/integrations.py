"""A job's ``integrations``, as OpenAI takes them: ``[{"type": "wandb", "wandb": {"project",
"name", "entity", "tags"}}]``. The Weights & Biases one is honoured through the optional
``wandb`` package (``pip install 'ftlens[wandb]'``): the job's worker logs its training metrics
to a wandb run. wandb finds its API key (or ``WANDB_MODE=offline``) in the service's own
environment; a job never carries a key, so none reaches its row or its events."""

from __future__ import annotations

import importlib.util
import numbers
from typing import Any

from ftlens.server.wire import ApiError

INSTALL_HINT = "pip install 'ftlens[wandb]' where ftlens serve runs"
WANDB_KEYS = {"project", "name", "entity", "tags"}


def wandb_available() -> bool:
    return importlib.util.find_spec("wandb") is not None


def checked_integrations(value: Any) -> list[dict[str, Any]]:
    """The integrations a job asks for, as the job shows them; else a 400 naming
    ``integrations``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad("integrations must be a list like [{\"type\": \"wandb\", \"wandb\": "
                   "{\"project\": \"...\"}}]")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("type") != "wandb":
            kind = item.get("type") if isinstance(item, dict) else None
            raise _bad(f"integration type {kind!r} is not supported by ftlens serve; use "
                       "'wandb'")
        out.append({"type": "wandb", "wandb": _wandb(item.get("wandb"))})
    if out and not wandb_available():
        raise _bad(f"the wandb integration needs the wandb package on the service: "
                   f"{INSTALL_HINT}")
    return out


def _wandb(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not isinstance(spec.get("project"), str) or not spec[
            "project"]:
        raise _bad("integrations: wandb must be an object with a project (a string)")
    unknown = sorted(set(spec) - WANDB_KEYS)
    if unknown:
        raise _bad(f"integrations: wandb has no setting {unknown[0]!r}; use "
                   f"{', '.join(sorted(WANDB_KEYS))} (the API key is the service's "
                   "WANDB_API_KEY, never a job's)")
    for key in ("name", "entity"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise _bad(f"integrations: wandb.{key} must be a string")
    tags = spec.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(
            isinstance(t, str) and 0 < len(t) <= 64 for t in tags)):
        raise _bad("integrations: wandb.tags must be a list of strings of 1 to 64 characters")
    return {"project": spec["project"], "name": spec.get("name"),
            "entity": spec.get("entity"), "tags": list(tags or [])}


def _bad(message: str) -> ApiError:
    return ApiError(400, message, param="integrations")


class Trackers:
    """The job's integrations while it trains, in its worker: opened at its start, given
    every metrics event, closed at its end."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.runs: list[Any] = []

    def open(self, config: dict[str, Any]) -> None:
        for item in self.job.get("integrations") or []:
            if item["type"] == "wandb":
                import wandb

                spec = item["wandb"]
                self.runs.append(wandb.init(
                    project=spec["project"], name=spec.get("name") or self.job["id"],
                    entity=spec.get("entity"), tags=spec.get("tags") or None,
                    config={**config, "fine_tuning_job_id": self.job["id"]},
                    reinit="create_new"))

    def metrics(self, data: dict[str, Any]) -> None:
        row = {k: v for k, v in data.items() if k != "total_steps"
               and isinstance(v, numbers.Real) and not isinstance(v, bool)}
        for run in self.runs:
            run.log(row, step=int(data["step"]))

    def close(self, exit_code: int = 0) -> None:
        for run in self.runs:
            run.finish(exit_code=exit_code)
        self.runs = []
