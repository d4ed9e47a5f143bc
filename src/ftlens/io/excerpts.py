"""Short excerpts of the inputs at a few (split, line) places, for the audit's evidence."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import Path

import orjson

from ftlens.core.chat_format import check_example
from ftlens.io.chat_jsonl import BOM

WIDTH = 60
_SPACE = re.compile(r"\s+")


def read_excerpts(paths: Mapping[str, Path], places: Sequence[tuple[str, int]],
                  width: int = WIDTH) -> dict[tuple[str, int], str]:
    """The user input of each place, whitespace collapsed, cut to ``width`` characters. One
    pass over each file, up to the last line wanted; a line that no longer reads is left out."""
    out: dict[tuple[str, int], str] = {}
    for split, path in paths.items():
        wanted = sorted({line for s, line in places if s == split})
        if not wanted:
            continue
        with path.open("rb") as f:
            todo = set(wanted)
            for number, raw in enumerate(islice(f, wanted[-1]), 1):
                if number in todo:
                    text = _input_text(raw.removeprefix(BOM) if number == 1 else raw)
                    if text:
                        out[(split, number)] = _cut(text, width)
    return out


def _input_text(raw: bytes) -> str | None:
    try:
        _, view = check_example(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return None
    return view.near_text if view is not None else None


def _cut(text: str, width: int) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
