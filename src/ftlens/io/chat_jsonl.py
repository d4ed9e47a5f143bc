"""Read chat fine-tuning JSONL into a :class:`~ftlens.core.scan.SplitScan`.

Bytes are read, not text, so that one bad byte costs one line, not the file. Plain examples are
decoded and checked by msgspec against a schema, a block of lines per call; every other line is
parsed with orjson and checked rule by rule. Undecodable lines and a leading byte-order mark are
reported with their line number. Large files are cut into newline-aligned chunks scanned by
worker processes (one per core).
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import orjson

from ftlens.core.chat_format import FormatIssue
from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.errors import DataError
from ftlens.io import tokenizer
from ftlens.io.text import UTF16_BOMS

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 8 << 20
PARALLEL_MIN_BYTES = 8 << 20
_POSITION = re.compile(r"line 1 column (\d+) \(char \d+\)")

Progress = Callable[[int], None]


def open_checked(path: str | Path) -> Path:
    """The path, if it is a readable file; a clear DataError otherwise."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file", path=p, hint="check the path and spelling")
    if p.is_dir():
        raise DataError("is a directory, not a file", path=p,
                        hint="pass the JSONL file itself, e.g. data/train.jsonl")
    if not os.access(p, os.R_OK):
        raise DataError("permission denied", path=p, hint=f"make it readable: chmod +r {p}")
    return p


SNIFF_BYTES = 1 << 16


def file_shape(path: Path) -> str | None:
    """What a file is when it is not JSON lines at all, from its first bytes: ``utf16``
    (a UTF-16 or UTF-32 byte-order mark, or NUL bytes between ASCII), ``json_array`` (a JSON
    array, usually pretty-printed: its first line is not a whole JSON value), ``csv`` (a
    header of comma- or tab-separated names, no object in sight); None for JSONL (good or
    bad line by line)."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(UTF16_BOMS) or _utf16_like(head[:200]):
        return "utf16"
    text = head.removeprefix(BOM).decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    first = lines[0]
    if first.startswith("["):
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:
            return "json_array"
        return None
    if (not first.startswith("{") and not any(ln.startswith("{") for ln in lines[:5])
            and len(lines) >= 2 and ("," in first or "\t" in first)):
        return "csv"
    return None


def _utf16_like(head: bytes) -> bool:
    """UTF-16 text without its byte-order mark: NUL bytes at every other place (the high
    bytes of ASCII characters), not a run of them (a file padded with zeros by a crash)."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    return half >= 10 and max(even, odd) >= 0.6 * half and min(even, odd) <= 0.1 * half


def estimate_examples(path: Path) -> int:
    """Roughly how many lines a file has, from its size and its first megabyte."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(1 << 20)
    lines = head.count(b"\n") or 1
    return max(1, round(size * lines / max(1, len(head))))


def scan_file(path: str | Path, split: str, options: ScanOptions, encoding: str | None,
              progress: Progress | None = None, workers: int | None = None) -> SplitScan:
    """Scan one file. ``encoding``: the tiktoken encoding that counts tokens (None: no counts)."""
    return scan_files({split: (path, options)}, encoding, progress, workers)[split]


def scan_files(splits: Mapping[str, tuple[str | Path, ScanOptions]], encoding: str | None,
               progress: Progress | None = None, workers: int | None = None,
               on_scan: Callable[[SplitScan], object] | None = None) -> dict[str, SplitScan]:
    """Scan the file of every split. When they are large, one pool of worker processes scans
    the chunks of all of them, so that every core stays busy until the last chunk.
    ``on_scan`` sees every finished scan, of a chunk or of a whole file, in this process and
    in order (splits as given, chunks in file order), while later chunks are still scanned."""
    paths = {split: open_checked(path) for split, (path, _) in splits.items()}
    workers = workers or os.cpu_count() or 1
    size = sum(p.stat().st_size for p in paths.values())
    if size < PARALLEL_MIN_BYTES or workers < 2:
        scans = {}
        for split, (path, options) in splits.items():
            scans[split] = scan = SplitScan(split, str(path), options, _count(encoding))
            for start, end in _chunks(paths[split]):
                with paths[split].open("rb") as f:
                    f.seek(start)
                    scan_lines(f.read(end - start), scan.n_lines + 1, scan)
                if progress:
                    progress(end - start)
            scan.finish()
            scan.shape = file_shape(paths[split]) if paths[split].stat().st_size else None
            if on_scan:
                on_scan(scan)
        return scans
    # Loaded once here, the token counter reaches every forked worker ready (each would
    # otherwise spend ~0.4 s of CPU loading its own).
    _count(encoding)
    # Chunks are handed out while later ones are still being cut: the workers start at once.
    jobs = ((str(paths[split]), start, end, split, options, encoding)
            for split, (_, options) in splits.items()
            for start, end in _chunks(paths[split]))
    merged: dict[str, SplitScan] = {}
    # The collector is paused here too: what arrives (and what on_scan builds) is acyclic.
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("fork")) as pool, \
            gc_paused():
        for part, size in pool.map(_scan_chunk, jobs):
            whole = merged.get(part.split)
            if whole is not None:  # a worker numbers a chunk's lines from 1
                part.renumber(whole.n_lines)
            if on_scan:
                on_scan(part)
            if whole is not None:
                whole.merge(part)
            else:
                merged[part.split] = part
            if progress:
                progress(size)
    scans = {}
    for split, (path, options) in splits.items():
        # an empty file has no chunks
        scans[split] = merged.get(split) or SplitScan(split, str(path), options)
        scans[split].path = str(path)
        scans[split].shape = file_shape(paths[split]) if paths[split].stat().st_size else None
    return scans


def _count(encoding: str | None) -> Callable[[str], int] | None:
    return None if encoding is None else tokenizer.counter(encoding)


def _scan_chunk(job: tuple[str, int, int, str, ScanOptions, str | None]
                ) -> tuple[SplitScan, int]:
    """The scan of one chunk, its lines numbered from 1, and its size in bytes."""
    path, start, end, split, options, encoding = job
    scan = SplitScan(split, path, options, _count(encoding))
    with open(path, "rb") as f:
        f.seek(start)
        buf = f.read(end - start)
    with gc_paused():
        _scan_lines(buf, 1, scan, file_start=start == 0)
        scan.finish()
    return scan, end - start


def _chunks(path: Path) -> Iterator[tuple[int, int]]:
    """(start, end) of newline-aligned chunks of about CHUNK_BYTES."""
    if not path.stat().st_size:
        return  # nothing to map
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size, start = len(m), 0
        while start < size:
            end = min(size, start + CHUNK_BYTES)
            if end < size:
                nl = m.find(b"\n", end)
                end = size if nl < 0 else nl + 1
            yield start, end
            start = end


def scan_lines(buf: bytes, first_line: int, scan: SplitScan) -> None:
    """Feed every line of ``buf`` (which starts at line ``first_line``) to ``scan``.

    The cyclic garbage collector is paused meanwhile: parsed lines are acyclic and freed by
    reference counting, and its passes over millions of short-lived objects cost a third of
    the time."""
    with gc_paused():
        _scan_lines(buf, first_line, scan, file_start=first_line == 1)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused (for work on many acyclic objects: its full passes
    over millions of them cost more than the work)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# gc=False: not tracked by the cyclic collector (they hold only strings), a fifth cheaper to
# decode.
class _PlainMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: Literal["system", "user", "assistant", "tool", "function"]
    content: str


# forbid_unknown_fields: a line with any other top-level key ("tools", "functions"…) is checked
# rule by rule, not taken as plain
class _PlainExample(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    messages: list[_PlainMessage]


def _scan_lines(buf: bytes, first_line: int, scan: SplitScan, file_start: bool) -> None:
    """``file_start``: ``buf`` begins its file, where a byte-order mark may be.

    Most lines are plain chat examples: msgspec parses and checks those against a schema in
    C, a block of lines per call. Any other line — broken, or using names, weights, tools — is
    parsed with orjson and checked rule by rule, so its problems are reported precisely."""
    lines = _Lines(buf, first_line, scan, file_start)
    for lo in range(0, len(lines.starts), _BLOCK):
        lines.read(lo, min(len(lines.starts), lo + _BLOCK))


class _Lines:
    """The lines of one buffer, fed to a scan (a class, not closures: a recursive closure is a
    reference cycle that would hold the buffer until the paused collector runs)."""

    def __init__(self, buf: bytes, first_line: int, scan: SplitScan, file_start: bool) -> None:
        self.buf, self.view, self.first_line, self.scan = buf, memoryview(buf), first_line, scan
        self.starts, self.ends = _line_bounds(buf)
        if file_start and buf.startswith(BOM):
            scan.bom = True
            self.starts[0] = len(BOM)
            if len(buf) == len(BOM):  # nothing after it: no line at all (an empty file)
                self.starts, self.ends = self.starts[:0], self.ends[:0]
        scan.n_lines += len(self.starts)
        self.shaped = _object_shaped(buf, self.starts, self.ends)
        self.decode = msgspec.json.Decoder(_PlainExample)
        # msgspec skips the fields it does not need without checking their bytes: lines with
        # bytes that are not UTF-8 go to orjson, which reports them
        self.undecodable = _undecodable(buf, self.starts, self.ends)
        self.shaped[list(self.undecodable)] = False

    def read(self, lo: int, hi: int) -> None:
        """Lines ``lo`` to ``hi`` (indices), in as few blocks as the odd lines among them
        allow. msgspec's error says where the first odd line is: the lines before it are read
        as a block, it and the lines after it one by one until one is plain again. Where the
        error does not say (rare: a line holding two values), the rest of the run is read one
        by one."""
        starts, ends, shaped = self.starts, self.ends, self.shaped
        odd = False  # the line before ``lo`` was not plain
        while lo < hi:
            if odd or not shaped[lo]:
                odd = not self.line(lo)
                lo += 1
                continue
            run = shaped[lo:hi]
            end = hi if run.all() else lo + int(np.argmin(run))  # the first line not shaped
            messages, bad = _decode_block(self.decode, self.view, starts[lo:end], ends[lo:end])
            if messages is not None:
                self.scan.add_plain(self.first_line + lo, messages,
                                    (ends[lo:end] - starts[lo:end]).tolist())
            elif bad is not None:
                if bad:
                    self.read(lo, lo + bad)
                odd = not self.line(lo + bad)
                end = lo + bad + 1
            else:
                for i in range(lo, end):
                    self.line(i)
            lo = end

    def line(self, i: int) -> bool:
        """Line ``i`` on its own; whether it was plain."""
        return _scan_line(None if i in self.undecodable else self.decode,
                          self.buf[self.starts[i] : self.ends[i]], self.first_line + i, self.scan)


_BLOCK = 1024  # lines decoded by one msgspec call
_VALUE_INDEX = re.compile(r" - at `\$\[(\d+)\]")  # "... - at `$[12].messages[0]`"
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)$")  # "JSON is malformed: ... (byte 203)"
# ValueError: undecodable UTF-8; RecursionError: nesting deeper than msgspec goes (orjson then
# reads the line, or reports it)
_FAST_ERRORS = (msgspec.MsgspecError, ValueError, RecursionError)


def _undecodable(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> set[int]:
    """The lines that are not valid UTF-8 (a chunk is checked whole first: almost always fine)."""
    if buf.isascii():
        return set()
    try:
        buf.decode("utf-8")
        return set()
    except UnicodeDecodeError:
        pass
    bad = set()
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        try:
            buf[start:end].decode("utf-8")
        except UnicodeDecodeError:
            bad.add(i)
    return bad


def _line_bounds(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Where each line of ``buf`` starts and ends (its newline excluded)."""
    ends = np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)
    if buf and not buf.endswith(b"\n"):  # a last line without its newline
        ends = np.append(ends, len(buf))
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    return starts, ends


def _object_shaped(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which lines start with ``{`` and end with ``}`` (or ``}\\r``). A block of such lines
    that msgspec decodes as exactly one value per line was decoded line by line: a value cannot
    run on past the end of a line, since a ``}`` and a ``{`` with only whitespace between them
    never occur inside a JSON value, and a JSON string holds no raw newline."""
    a = np.frombuffer(buf, np.uint8)
    shaped = ends - starts >= 2
    first, last = starts[shaped], ends[shaped] - 1
    last -= (a[last] == 13) & (last - first >= 2)  # a CRLF line ending
    shaped[shaped] = (a[first] == 123) & (a[last] == 125)
    return shaped


def _decode_block(decode: msgspec.json.Decoder, buf: memoryview, starts: np.ndarray,
                  ends: np.ndarray) -> tuple[list[list[_PlainMessage]] | None, int | None]:
    """The messages of the object-shaped lines ``starts``/``ends`` of ``buf`` if every one of
    them is a plain example with at least one message, else ``(None, i)``: line ``i`` is the
    first that is not (a hint from msgspec's error, None when it gives none)."""
    try:
        examples = decode.decode_lines(buf[starts[0] : ends[-1]])
    except msgspec.ValidationError as exc:  # names the value: the line, as far as it got
        match = _VALUE_INDEX.search(str(exc))
        return None, _hint(int(match[1]) if match else None, len(starts))
    except msgspec.DecodeError as exc:  # names a byte of the block: the line it is in
        match = _BYTE_OFFSET.search(str(exc))
        line = int(np.searchsorted(ends - starts[0], int(match[1]))) if match else None
        return None, _hint(line, len(starts))
    except (ValueError, RecursionError):
        return None, None
    messages = [e.messages for e in examples]
    if len(messages) != len(starts):  # some line holds two values, which one is not said
        return None, None
    if not all(messages):
        return None, next(i for i, m in enumerate(messages) if not m)
    return messages, None


def _hint(index: int | None, n: int) -> int | None:
    """An index from an error message, if it is one of the ``n`` lines (only ever a hint: the
    lines before it are decoded again, it is read on its own)."""
    return index if index is not None and 0 <= index < n else None


def _scan_line(decode: msgspec.json.Decoder | None, raw: bytes, number: int, scan: SplitScan
               ) -> bool:
    """One line, on its own: a plain example if msgspec (``decode``) takes it (True), else
    parsed by orjson and checked rule by rule."""
    try:
        messages = None if decode is None else decode.decode(raw).messages
    except _FAST_ERRORS:
        messages = None
    if messages:
        scan.add_plain(number, [messages], [len(raw)])
        return True
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        scan.add_issue(line_issue(raw, exc).at(number))
        return False
    scan.add(number, obj)
    return False


def json_error_reason(exc: Exception) -> str:
    """orjson's message without its position on a one-line document ("line 1 column 9")."""
    return _POSITION.sub(r"column \1", str(exc))


def line_issue(raw: bytes, exc: Exception) -> FormatIssue:
    """Why a line did not parse, in words a user can act on."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1].hex()
        return FormatIssue(
            "non_utf8", f"byte 0x{bad} at column {err.start + 1} is not valid UTF-8",
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`)")
    if not raw.strip():
        return FormatIssue("blank_line", "the line is empty",
                           "remove empty lines: every line must be one JSON object")
    if b"\x00" in raw:  # never valid in JSON text; orjson would only say "unexpected character"
        n, column = raw.count(b"\x00"), raw.index(b"\x00") + 1
        return FormatIssue(
            "invalid_json", f"not valid JSON: {n} NUL byte{'s' if n > 1 else ''} (0x00) from "
            f"column {column}",
            "remove the NUL bytes (e.g. `tr -d '\\000' < in.jsonl > out.jsonl`); a file cut "
            "short by a crash or a full disk often ends in them, so check the last lines too")
    return FormatIssue(
        "invalid_json", f"not valid JSON ({json_error_reason(exc)})",
        "each line must be one complete JSON object; look for a missing bracket or quote, or "
        "a line break inside a string")
