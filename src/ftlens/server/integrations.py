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


def wandb_available() -> bool:
    return importlib.util.find_spec("wandb") is not None


def checked_integrations(value: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The integrations a job asks for (their shape checked by ``wire_types.Integration``),
    as the job shows them; a 400 naming ``integrations`` when wandb is not installed."""
    out = [{"type": "wandb", "wandb": {"project": item["wandb"]["project"],
                                       "name": item["wandb"].get("name"),
                                       "entity": item["wandb"].get("entity"),
                                       "tags": list(item["wandb"].get("tags") or [])}}
           for item in value or []]
    if out and not wandb_available():
        raise ApiError(400, "the wandb integration needs the wandb package on the service: "
                            + INSTALL_HINT, param="integrations")
    return out


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
