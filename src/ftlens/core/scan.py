"""The per-split accumulator of the audit: one pass over the examples, compact memory.

A :class:`SplitScan` is fed parsed lines (by the io layer, possibly from several processes, each
scanning a chunk) and keeps only what the analysis needs: per-example fingerprints, label ids
and line numbers in flat arrays, a uniform sample of exact token counts, and the texts of the
examples chosen for near-duplicate search. Partial scans of one file merge into one.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ftlens.core.chat_format import (
    NO_ASSISTANT,
    PREFERENCE,
    ExampleView,
    FormatIssue,
    Message,
    Summary,
    check_example,
    summarize,
)
from ftlens.core.minhash import NUM_PERM, signatures
from ftlens.core.text import fingerprints, normalized_bytes
from ftlens.core.tokens import chat_token_count, token_upper_bound

_FULL = 1 << 32
_BATCH = 4096  # pending examples that make a flush (fingerprinted together; a block may add more)


@dataclass(frozen=True)
class ScanOptions:
    """``*_rate``: fraction of examples (chosen by fingerprint, so deterministic) whose tokens
    are counted exactly / that take part in the near-duplicate search."""

    context_limit: int | None = None
    token_rate: float = 1.0
    near_rate: float = 1.0
    keep_issues: int = 200  # stored issues per code; counts are always complete


class SplitScan:
    """Everything one pass over a split keeps."""

    def __init__(self, split: str, path: str, options: ScanOptions,
                 count: Callable[[str], int] | None = None) -> None:
        self.split = split
        self.path = path
        self.options = options
        self._count = count
        self._token_cut = int(options.token_rate * _FULL)
        self._near_cut = int(options.near_rate * _FULL)
        self._token_cache: dict[str, int] = {}
        self.n_lines = 0
        self.n_preference = 0  # examples that are DPO preference pairs (the rest are chats)
        self.bom = False
        self.shape: str | None = None  # "json_array", "csv", "utf16": not JSONL at all
        self.issue_counts: Counter[str] = Counter()
        self.issues: list[FormatIssue] = []
        self._kept: Counter[str] = Counter()
        self.warning_counts: Counter[str] = Counter()
        self.warning_lines: dict[str, list[int]] = {}
        self.lines = array("I")  # line number of each valid example
        self.keys = array("Q")  # fingerprint of its input
        self.label_ids = array("i")  # index into self.labels, -1 when not a plain answer
        self.labels: list[str] = []
        self._label_index: dict[str | None, int] = {None: -1}
        self.token_counts = array("I")  # exact counts of the sampled examples
        self.over_limit: list[tuple[int, int]] = []  # (line, tokens) of examples over the limit
        self.near: list[tuple[int, str]] = []  # (line, text) chosen for near-duplicate search
        self.near_signatures = np.empty((0, NUM_PERM), dtype=np.uint64)  # one row per `near`
        # The examples waiting to be fingerprinted together, column by column; ``_views``
        # holds the views already built (of lines that are not plain), by position.
        self._lines: list[int] = []
        self._summaries: list[Summary] = []
        self._chars: list[int] = []  # at least the characters of the token parts
        self._messages: list[Sequence[Any]] = []
        self._views: dict[int, ExampleView] = {}

    def finish(self) -> None:
        """Process the examples still pending, compute the MinHash signatures of the
        near-duplicate candidates added so far (in the worker that scanned them) and forget the
        token counter, so the scan can be pickled. Counts are complete only after this."""
        self._flush()
        todo = self.near[len(self.near_signatures):]
        if todo:
            sigs = signatures([normalized_bytes(text) for _, text in todo], NUM_PERM)
            self.near_signatures = np.concatenate([self.near_signatures, sigs])
        self._count = None

    @property
    def n_examples(self) -> int:
        return len(self.lines)

    @property
    def data_format(self) -> str:
        """``chat`` (supervised examples), ``preference`` (DPO pairs) or ``mixed``."""
        if self.n_preference == 0:
            return "chat"
        return "preference" if self.n_preference == self.n_examples else "mixed"

    def add_issue(self, issue: FormatIssue) -> None:
        self.issue_counts[issue.code] += 1
        self._keep(issue)

    def _keep(self, issue: FormatIssue) -> None:
        if self._kept[issue.code] < self.options.keep_issues:
            self._kept[issue.code] += 1
            self.issues.append(issue)

    def add(self, line: int, obj: Any) -> None:
        """One parsed JSON line."""
        problems, view = check_example(obj)
        if view is None:
            for p in problems:
                self.add_issue(p.at(line))
            return
        self.n_preference += view.kind == PREFERENCE
        self._views[len(self._lines)] = view
        self._lines.append(line)
        self._summaries.append(view[:4])
        self._chars.append(view.chars)
        self._messages.append(view.messages)
        if len(self._lines) >= _BATCH:
            self._flush()

    def add_plain(self, first_line: int, messages: Sequence[Sequence[Message]],
                  sizes: Sequence[int]) -> None:
        """Consecutive lines from ``first_line``, of ``sizes`` bytes, that the reader already
        decoded as non-empty lists of plain messages with valid roles and string contents.
        Their views are built only for the few that are sampled: the common case costs one
        :func:`summarize` per line."""
        summaries = list(map(summarize, messages))
        lines: Sequence[int] = range(first_line, first_line + len(messages))
        if not all(summaries):  # None: no assistant message, not an example
            for line, summary in zip(lines, summaries, strict=True):
                if summary is None:
                    self.add_issue(NO_ASSISTANT.at(line))
            keep = [i for i, summary in enumerate(summaries) if summary is not None]
            lines = [lines[i] for i in keep]
            messages = [messages[i] for i in keep]
            sizes = [sizes[i] for i in keep]
            summaries = [summaries[i] for i in keep]
        self._lines.extend(lines)
        self._summaries.extend(summaries)  # type: ignore[arg-type]  # the Nones are gone
        # Every character of the strings takes at least one byte of the line: the size bounds
        # the characters that the token count covers.
        self._chars.extend(sizes)
        self._messages.extend(messages)
        if len(self._lines) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        """Fingerprint the pending examples together, then keep what each one contributes."""
        if not self._lines:
            return
        lines, summaries, chars = self._lines, self._summaries, self._chars
        batch = _Batch(lines, summaries, self._messages, self._views)
        self._lines, self._summaries, self._chars, self._messages = [], [], [], []
        self._views = {}
        texts, labels, has_system, has_user = zip(*summaries, strict=True)
        keys = fingerprints(texts)
        self.lines.extend(lines)
        self.keys.frombytes(keys.tobytes())
        self.label_ids.extend(self._label_ids(labels))
        for code, flags in (("no_system", has_system), ("no_user", has_user)):
            if not all(flags):
                for i in np.flatnonzero(~np.array(flags, bool)).tolist():
                    self._warn(code, lines[i])
        self._tokens(batch, keys, chars)
        for i in np.flatnonzero((keys & 0xFFFFFFFF) < self._near_cut).tolist():
            self.near.append((lines[i], batch.view(i).near_text))

    def _tokens(self, batch: _Batch, keys: np.ndarray, chars: Sequence[int]) -> None:
        """Count the tokens of the sampled examples, and of every example that the cheap
        bound cannot rule out being over the context limit."""
        if self._count is None:
            return
        limit = self.options.context_limit
        sampled = (keys >> 32) < self._token_cut
        todo = sampled
        if limit is not None:
            n_messages = np.fromiter(map(len, batch.messages), np.int64, len(batch.messages))
            todo = todo | (token_upper_bound(np.array(chars, np.int64), n_messages) > limit)
        for i in np.flatnonzero(todo).tolist():
            view = batch.view(i)
            n = chat_token_count(view.token_parts, view.n_messages, view.n_names,
                                 self._count_cached)
            if sampled[i]:
                self.token_counts.append(n)
            if limit is not None and n > limit:
                self.over_limit.append((batch.lines[i], n))

    def _count_cached(self, text: str) -> int:
        """Token count, remembered for the strings that repeat (roles, system prompts, labels)."""
        n = self._token_cache.get(text)
        if n is None:
            assert self._count is not None
            n = self._count(text)
            if len(text) <= 512:
                if len(self._token_cache) >= 4096:
                    self._token_cache.clear()
                self._token_cache[text] = n
        return n

    def _label_ids(self, labels: Sequence[str | None]) -> list[int]:
        """The id of each label (-1 for None: no plain answer), new labels numbered in order
        of first appearance."""
        index = self._label_index
        for label in dict.fromkeys(labels):
            if label not in index:
                index[label] = len(self.labels)
                self.labels.append(label)  # type: ignore[arg-type]  # None is in the index
        return list(map(index.__getitem__, labels))

    def _warn(self, code: str, line: int) -> None:
        self.warning_counts[code] += 1
        kept = self.warning_lines.setdefault(code, [])
        if len(kept) < self.options.keep_issues:
            kept.append(line)

    def renumber(self, offset: int) -> None:
        """Add ``offset`` to every line number (a chunk scanned as if it began the file)."""
        self.lines = array("I", (np.frombuffer(self.lines, np.uint32) + np.uint32(offset))
                           .tobytes())
        self.issues = [issue.at(issue.line + offset) for issue in self.issues]
        self.warning_lines = {code: [line + offset for line in lines]
                              for code, lines in self.warning_lines.items()}
        self.over_limit = [(line + offset, n) for line, n in self.over_limit]
        self.near = [(line + offset, text) for line, text in self.near]

    def merge(self, other: SplitScan) -> None:
        """Append a scan of a later chunk of the same file (its line numbers already global)."""
        self.n_lines += other.n_lines
        self.n_preference += other.n_preference
        self.bom = self.bom or other.bom
        for issue in other.issues:
            self._keep(issue)
        self.issue_counts.update(other.issue_counts)
        for code, n in other.warning_counts.items():
            self.warning_counts[code] += n
            kept = self.warning_lines.setdefault(code, [])
            kept.extend(other.warning_lines[code][: self.options.keep_issues - len(kept)])
        self.lines.extend(other.lines)
        self.keys.extend(other.keys)
        remap = np.array([*self._label_ids(other.labels), -1], np.int32)  # id -1 stays -1
        self.label_ids.frombytes(remap[np.frombuffer(other.label_ids, np.int32)].tobytes())
        self.token_counts.extend(other.token_counts)
        self.over_limit.extend(other.over_limit)
        self.near.extend(other.near)
        self.near_signatures = np.concatenate([self.near_signatures, other.near_signatures])


@dataclass(frozen=True)
class _Batch:
    """The examples of one flush, for the few that are looked at closely."""

    lines: Sequence[int]
    summaries: Sequence[Summary]
    messages: Sequence[Sequence[Any]]
    views: dict[int, ExampleView]  # a plain line's view is built once, when first needed

    def view(self, i: int) -> ExampleView:
        view = self.views.get(i)
        if view is None:  # a plain line: its view from the summary taken in add_plain
            messages = self.messages[i]
            view = self.views[i] = ExampleView(*self.summaries[i], messages, messages)
        return view
