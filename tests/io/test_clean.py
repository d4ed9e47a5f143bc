"""``--write-clean``: byte-for-byte copies without the removable lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftlens.errors import DataError
from ftlens.io.clean import write_clean


def _file(path: Path, lines: list[bytes], *, trailing: bool = True, eol: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(eol.join(lines) + (eol if trailing else b""))
    return path


LINES = [b'{"n": 1}', b'{"n": 2, "t": "caf\xc3\xa9"}', b"not json \xe9", b"", b'{"n": 5}']


@pytest.mark.parametrize(("eol", "trailing"), [(b"\n", True), (b"\r\n", True), (b"\n", False)])
@pytest.mark.parametrize("drop", [set(), {1}, {2, 4}, {5}, {1, 2, 3, 4, 5}])
def test_drops_exactly_the_removable_lines(tmp_path: Path, drop: set[int], eol: bytes,
                                           trailing: bool) -> None:
    src = _file(tmp_path / "in" / "train.jsonl", LINES, eol=eol, trailing=trailing)
    summary = write_clean({"train": str(src)}, {"train": frozenset(drop)}, tmp_path / "out")
    out = tmp_path / "out" / "train.jsonl"
    original = src.read_bytes().splitlines(keepends=True)
    expected = b"".join(line for n, line in enumerate(original, 1) if n not in drop)
    assert out.read_bytes() == expected
    assert summary == {"train": {"path": str(out), "kept": 5 - len(drop), "removed": len(drop)}}
    assert src.read_bytes().splitlines(keepends=True) == original  # input untouched
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_every_split_written_and_missing_removable_keeps_all(tmp_path: Path) -> None:
    train = _file(tmp_path / "a.jsonl", LINES)
    test = _file(tmp_path / "b.jsonl", LINES[:2])
    summary = write_clean({"train": str(train), "test": str(test)},
                          {"train": frozenset({3})}, tmp_path / "clean" / "deep")
    assert (tmp_path / "clean" / "deep" / "test.jsonl").read_bytes() == test.read_bytes()
    assert summary["test"]["removed"] == 0 and summary["test"]["kept"] == 2
    assert summary["train"]["removed"] == 1 and summary["train"]["kept"] == 4


def test_refuses_to_overwrite_its_own_input(tmp_path: Path) -> None:
    src = _file(tmp_path / "train.jsonl", LINES)
    before = src.read_bytes()
    with pytest.raises(DataError) as info:
        write_clean({"train": str(src)}, {"train": frozenset({1})}, tmp_path)
    assert "overwrite" in info.value.render()
    assert src.read_bytes() == before


def test_refuses_to_overwrite_another_splits_input(tmp_path: Path) -> None:
    # the test split's input is <out>/train.jsonl: writing the clean train copy would clobber
    # it before it is read
    train = _file(tmp_path / "in" / "mine.jsonl", [b'{"train": 1}', b'{"train": 2}'])
    test = _file(tmp_path / "out" / "train.jsonl", [b'{"test": 1}'])
    before = test.read_bytes()
    with pytest.raises(DataError):
        write_clean({"train": str(train), "test": str(test)}, {}, tmp_path / "out")
    assert test.read_bytes() == before


def test_output_dir_that_is_a_file(tmp_path: Path) -> None:
    src = _file(tmp_path / "train.jsonl", LINES)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(DataError) as info:
        write_clean({"train": str(src)}, {}, blocker / "sub")
    assert str(blocker / "sub") in info.value.render()
