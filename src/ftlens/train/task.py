"""Task metrics in the training loop: the validation rows scored as a classifier (one forward
pass per row with :func:`~ftlens.train.scoring.score_labels`), their metrics computed by
:mod:`ftlens.core.task_metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlens.core.task_metrics import TaskSpec, no_validation, task_metrics, task_spec
from ftlens.io.chat_dataset import Conversation, read_conversations
from ftlens.train.config import TaskMetricsSettings
from ftlens.train.scoring import Prepared, prepare_labels, score_prepared


@dataclass(frozen=True)
class TaskScorer:
    spec: TaskSpec
    prepared: Prepared  # each validation row without its answer, tokenised with each label
    truths: tuple[str, ...]
    batch_tokens: int = 4096

    @staticmethod
    def build(spec: TaskSpec, valid: Sequence[Conversation], tokenizer: Any, *,
              batch_tokens: int = 4096) -> TaskScorer:
        """``spec``: :func:`spec_for` the job's files."""
        prepared = prepare_labels(tokenizer, [_prompt(c) for c in valid], spec.labels)
        return TaskScorer(spec, prepared, tuple(str(c.label) for c in valid), batch_tokens)

    def measure(self, model: Any, indices: Sequence[int]) -> dict[str, float]:
        """The task metrics over these validation rows."""
        chosen = list(indices)
        scores = score_prepared(model, self.prepared, chosen, batch_tokens=self.batch_tokens)
        return task_metrics(self.spec, [self.truths[i] for i in chosen], scores.probs)


def spec_for(settings: TaskMetricsSettings, train: Sequence[Conversation],
             valid: Sequence[Conversation]) -> TaskSpec:
    return task_spec({"train": [c.label for c in train], "valid": [c.label for c in valid]},
                     positive=settings.positive, n_classes=settings.n_classes,
                     betas=settings.betas)


def check_files(settings: TaskMetricsSettings, training_file: str | Path,
                validation_file: str | Path | None) -> TaskSpec:
    """The spec a job with these files would score by, or the :class:`ConfigError` saying why
    it cannot (checked when the job is created, so a free-text job fails at once)."""
    if validation_file is None:
        raise no_validation()
    return spec_for(settings, read_conversations(training_file),
                    read_conversations(validation_file))


def _prompt(conv: Conversation) -> list[dict[str, Any]]:
    """The conversation up to its final assistant message."""
    last = max(i for i, m in enumerate(conv.messages) if m.get("role") == "assistant")
    return list(conv.messages[:last])
