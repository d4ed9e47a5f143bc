"""Files that are not JSON lines at all — a pretty-printed JSON array, a CSV table, UTF-16 text
— are told so once, with the command that converts them, by the audit, the training reader and
the predictions reader; JSON lines with bad lines are still judged line by line."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest

from ftlens.errors import DataError
from ftlens.io.chat_dataset import read_conversations
from ftlens.io.chat_jsonl import file_shape
from ftlens.io.predictions import read_predictions
from ftlens.steps.audit import audit_files

ROWS = [{"messages": [{"role": "user", "content": f"hello {i}"},
                      {"role": "assistant", "content": "spam" if i % 3 else "ham"}]}
        for i in range(40)]
JSONL = "".join(json.dumps(r) + "\n" for r in ROWS)


def _files(tmp_path: Path) -> dict[str, Path]:
    out = {"json_array": tmp_path / "data.json", "csv": tmp_path / "data.csv",
           "utf16": tmp_path / "data16.jsonl"}
    out["json_array"].write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    out["csv"].write_text("text,label\n" + "".join(f"hello {i},spam\n" for i in range(40)),
                          encoding="utf-8")
    out["utf16"].write_bytes(codecs.BOM_UTF16_LE + JSONL.encode("utf-16-le"))
    return out


@pytest.mark.parametrize(("shape", "words", "fix"), [
    ("json_array", "a JSON array, not JSON lines", "jq -c '.[]'"),
    ("csv", "a CSV table, not JSON lines", 'orient="records", lines=True'),
    ("utf16", "encoded as UTF-16, not UTF-8", "iconv -f UTF-16 -t UTF-8"),
])
def test_a_file_of_another_shape_is_told_once(tmp_path: Path, shape: str, words: str,
                                              fix: str) -> None:
    path = _files(tmp_path)[shape]
    assert file_shape(path) == shape
    report = audit_files(path)
    ids = [f.id for f in report.findings]
    assert ids.count("not_jsonl") == 1 and "format_error" not in ids and "non_utf8" not in ids
    found = next(f for f in report.findings if f.id == "not_jsonl")
    assert words in found.title and fix in found.advice
    assert str(path.with_suffix("")) in found.advice  # the command names the file
    assert report.verdict == "not_ready"
    with pytest.raises(DataError) as err:  # what `ftlens train` and an upload read
        read_conversations(path)
    assert words in err.value.message and fix in str(err.value.hint)


@pytest.mark.parametrize("text", [
    JSONL,
    '{"messages": broken\n' + JSONL,  # a bad first line: still JSON lines
    "[1, 2]\n" + JSONL,  # an array on one line is a bad JSONL line, not a JSON array file
    "text, with a comma\n" + JSONL,
])
def test_json_lines_good_or_bad_are_judged_line_by_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(text, encoding="utf-8")
    assert file_shape(path) is None


def test_a_utf16_predictions_file_is_named_so(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE
                     + '{"label": "spam", "prediction": "spam"}\n'.encode("utf-16-le"))
    with pytest.raises(DataError, match="encoded as UTF-16") as err:
        read_predictions(path)
    assert "iconv -f UTF-16 -t UTF-8" in str(err.value.hint)


@pytest.mark.parametrize("shape", ["json_array", "csv", "utf16"])
def test_the_conversion_command_never_writes_over_its_input(tmp_path: Path, shape: str) -> None:
    """A file named .jsonl of another shape: the command's output is another file (a shell
    redirect onto the input empties it before the command reads it)."""
    src = _files(tmp_path)[shape]
    path = tmp_path / "train.jsonl"
    path.write_bytes(src.read_bytes())
    found = next(f for f in audit_files(path).findings if f.id == "not_jsonl")
    targets = re.findall(r'> (\S+)|to_json\("([^"]+)"', found.advice)
    assert targets and all(str(path) not in t for pair in targets for t in pair if t)


def test_a_json_array_of_predictions_is_converted_to_another_file(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps([{"label": "spam", "prediction": "spam"}]), encoding="utf-8")
    with pytest.raises(DataError, match="JSON array") as err:
        read_predictions(path)
    target = str(err.value.hint).rsplit("> ", 1)[1]
    assert target != str(path) and target.endswith(".jsonl")
