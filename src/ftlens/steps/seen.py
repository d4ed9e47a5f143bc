"""Which test rows the model saw in training: the test set's prompts against the training (and
validation) files, by the audit's rules (:mod:`ftlens.core.seen`), or as an audit of the three
files already found them (``ftlens audit --json``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ftlens.core.chat_format import ExampleView, check_example
from ftlens.core.seen import SeenRows, find_seen
from ftlens.errors import DataError
from ftlens.io.chat_dataset import read_conversations
from ftlens.io.chat_jsonl import open_checked


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


def seen_in_audit(path: Path, lines: Sequence[int], *, where: str | Path) -> SeenRows:
    """The same marks read from ``ftlens audit --json`` output of the train/valid/test files:
    ``lines[i]`` is row i's line in the audited test file. The audit's exact leaks and
    near-duplicate pairs are taken as they are (its near search covers held-out splits in
    full up to its ``--near-limit``)."""
    audit = _read_audit(path)
    test = audit["splits"].get("test")
    if not isinstance(test, dict):
        raise DataError("the audit has no test split", path=path,
                        hint="audit with --test TEST.jsonl, the file the predictions are on")
    n_lines = test.get("lines")
    if not isinstance(n_lines, int) or isinstance(n_lines, bool):
        raise DataError("not the JSON that `ftlens audit --json` writes (the test split has "
                        "no line count)", path=path, hint="regenerate it with `ftlens audit "
                        "... --json`")
    if test.get("examples") != len(lines) or max(lines, default=0) > n_lines:
        raise DataError(f"the audited test file has {test.get('examples')} examples but there "
                        f"are {len(lines)} rows to judge", path=path,
                        expected=f"the audit of the test file behind {where}",
                        hint="rerun `ftlens audit ... --test TEST.jsonl --json` on that file")
    try:
        exact, near = _marks(audit)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DataError("not the JSON that `ftlens audit --json` writes (its leakage details "
                        "are malformed)", path=path, hint="regenerate it with `ftlens audit "
                        "... --json`") from None
    return SeenRows(tuple(exact.get(n) for n in lines),
                    tuple(None if n in exact else near.get(n) for n in lines))


def _marks(audit: dict[str, Any]) -> tuple[dict[int, str], dict[int, str]]:
    """Test line -> the split it occurs in exactly; test line -> one it has a near-duplicate
    in."""
    exact: dict[int, str] = {}
    for finding in audit.get("findings") or []:
        if isinstance(finding, dict) and finding.get("id") == "leakage":
            for pair in (finding.get("details") or {}).get("pairs") or []:
                if pair.get("held_out") == "test":
                    for line in pair.get("lines") or []:
                        exact.setdefault(int(line), str(pair["other"]))
    near: dict[int, str] = {}
    for pair in (audit.get("near_duplicates") or {}).get("pairs") or []:
        ends = [pair.get("a") or {}, pair.get("b") or {}]
        for mine, other in (ends, ends[::-1]):
            if mine.get("split") == "test" and other.get("split") in ("train", "valid"):
                near.setdefault(int(mine["line"]), str(other["split"]))
    return exact, near


def _read_audit(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(open_checked(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg})", path=path,
                        expected="the output of `ftlens audit ... --json`") from None
    if not isinstance(data, dict) or not isinstance(data.get("splits"), dict):
        raise DataError("not the JSON that `ftlens audit --json` writes (no 'splits')",
                        path=path, hint="write it with `ftlens audit TRAIN --valid VALID "
                        "--test TEST --json > audit.json`")
    return data
