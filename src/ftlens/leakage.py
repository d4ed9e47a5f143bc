"""Which test rows the model saw in training, read from the files: the test set's prompts
against the training (and validation) files, by the audit's rules (:mod:`ftlens.core.seen`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftlens.core.chat_format import ExampleView, check_example
from ftlens.core.seen import SeenRows, find_seen
from ftlens.errors import DataError
from ftlens.io.chat_dataset import read_conversations


def seen_in_training(prompts: Sequence[Sequence[Any]], *,
                     train: Path | None = None, valid: Path | None = None,
                     near_threshold: float = 0.8, where: str | Path = "the test data"
                     ) -> SeenRows | None:
    """``prompts[i]``: the messages before row i's answer (the answer is never compared).
    None when neither file is given."""
    known = {split: [v for c in read_conversations(path)
                     if (v := _view(c.messages)) is not None]
             for split, path in (("train", train), ("valid", valid)) if path is not None}
    if not known:
        return None
    test = []
    for i, prompt in enumerate(prompts, 1):
        view = _view([*prompt, {"role": "assistant", "content": "answer"}])
        if view is None:
            raise DataError(f"row {i}: its prompt is not a valid chat conversation", path=where,
                            hint="check the row's messages with `ftlens audit`")
        test.append(view)
    return find_seen(test, known, near_threshold=near_threshold)


def _view(messages: Sequence[Any]) -> ExampleView | None:
    issues, view = check_example({"messages": list(messages)})
    return None if issues else view
