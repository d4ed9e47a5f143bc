"""The checks a run makes on its files before anything is trained or asked: every line
readable, every test row labelled, and training data of the same task as the test set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftlens.core.wording import first
from ftlens.errors import DataError
from ftlens.io.chat_dataset import read_conversations, read_examples

SHOWN = 5


@dataclass(frozen=True)
class Inputs:
    labels: tuple[str, ...]  # the test set's answers, sorted


def check_inputs(test: Path, *known: Path | None, say: Callable[[str], None]) -> Inputs:
    """``known``: the training (and validation) files. Raises :class:`DataError` naming the
    file and line of the first problem; says which test labels the training data lacks."""
    examples = read_examples(test)
    labels = tuple(sorted({e.truth for e in examples}))
    wanted = {_key(label): label for label in labels}
    for path in known:
        if path is None:
            continue
        answers = {_key(c.label): c.label for c in read_conversations(path)
                   if c.label is not None}
        missing = [wanted[k] for k in wanted if k not in answers]
        if len(missing) == len(wanted):
            raise DataError(
                f"none of the test answers ({_list(labels)}) is an answer in this file "
                f"(its answers: {_list(sorted(answers.values()))}): it looks like the data of "
                "another task", path=path, expected=f"examples whose answers are the test "
                f"set's labels, as in {test}",
                hint="pass the training data of the task the test set is for")
        if missing:
            say(f"    warning: {path} never answers {_list(missing)}: the model cannot "
                "learn what it never sees")
    return Inputs(labels)


def _key(label: str | None) -> str:
    return (label or "").strip().casefold()


def _list(values: list[str] | tuple[str, ...]) -> str:
    return first(map(repr, values), SHOWN)
