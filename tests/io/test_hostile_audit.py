"""The audit's table of hostile inputs: every file of tests/fixtures/hostile/audit/ (and the huge
ones written at test time) through ``ftlens audit FILE --json`` and the terminal page, with the
finding it must raise, the line, and the words the message and its fix must hold.

One row per case; the upload table (tests/server/test_hostile_upload.py) reads the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.support import hostile_files
from tests.support.hostile_files import GENERATED, HUGE_LINE, LATIN1, NUL_LINE, TRUNCATED

from ftlens.cli import cli

FOLDER = hostile_files.HERE / "audit"
# the findings that mean the file cannot be uploaded as it is (a row names exactly one)
REFUSALS = frozenset({"format_error", "non_utf8", "not_jsonl", "empty_file", "bom",
                      "mixed_formats"})


@dataclass(frozen=True)
class Row:
    file: str  # in FOLDER, or one of hostile_files.GENERATED
    finding: str | None  # the one refusing finding (None: the file is accepted)
    code: str | None = None  # format_error, non_utf8: the issue's code
    line: int | None = None  # the issue's line; None for a finding about the whole file
    words: tuple[str, ...] = ()  # in the issue's message and hint (or the finding's text)


TOOL_CALL = "each call is"
AUDIT: list[Row] = [
    # tool calls, as OpenAI's upload checks them
    Row("tool_calls_on_user.jsonl", "format_error", "invalid_tool_calls", 2,
        ("message 1 (user) has tool_calls", "only assistant messages call tools")),
    Row("tool_calls_number.jsonl", "format_error", "invalid_tool_calls", 2,
        ("message 3 (assistant): tool_calls is a number", "make tool_calls a list of calls")),
    Row("tool_calls_string.jsonl", "format_error", "invalid_tool_calls", 2,
        ("message 3 (assistant): tool_calls is a string", "make tool_calls a list of calls")),
    Row("tool_calls_list_of_number.jsonl", "format_error", "invalid_tool_calls", 2,
        ("message 3 (assistant): tool call 1 is a number, not an object", TOOL_CALL)),
    Row("tool_call_function_null.jsonl", "format_error", "invalid_tool_calls", 2,
        ("message 3 (assistant): tool call 1's function is null, not an object", TOOL_CALL)),
    Row("tool_call_arguments_not_json.jsonl", "format_error", "invalid_tool_calls", 2,
        ("tool call 1's function has arguments '{not json' that are not valid JSON",
         "<the arguments object as JSON text>")),
    Row("tool_message_without_id.jsonl", "format_error", "invalid_tool_calls", 3,
        ('message 4 (tool) has no "tool_call_id"', "the id of the assistant tool call")),
    Row("tool_message_unknown_id.jsonl", "format_error", "invalid_tool_calls", 2,
        ("message 4 (tool) answers tool_call_id 'call_9', which no earlier assistant tool "
         "call made", "an earlier assistant message's tool_calls")),
    Row("tools_not_list.jsonl", "format_error", "invalid_tools", 2,
        ('"tools" is an object, not a list', 'make "tools" a list of function specs')),
    Row("tools_entry_not_function.jsonl", "format_error", "invalid_tools", 2,
        ("\"tools\" entry 1 has type 'retrieval'", "each tool is a function spec")),
    Row("tool_call_valid.jsonl", None),
    Row("tools_valid.jsonl", None),
    # content parts and images
    Row("text_part_without_text.jsonl", "format_error", "invalid_content_part", 2,
        ('message 1 (user): content part 1 has no "text"', '{"type": "text", "text": "..."}')),
    Row("image_parts_valid.jsonl", None),
    Row("too_many_images.jsonl", "format_error", "too_many_images", 2,
        ("the example has 11 images", "at most 10 images per example")),
    Row("image_bad_url.jsonl", "format_error", "invalid_content_part", 2,
        ("message 1 (user): content part 2 is an image whose url 'file:///home/me/sms.png' is "
         "neither an http(s) URL nor a base64 data URL", "data:image/png;base64")),
    # the shape of a line and of its messages; messages are counted from 1
    Row("messages_null.jsonl", "format_error", "missing_messages", 2,
        ('"messages" is null', '"messages" must be a non-empty list of message objects')),
    Row("messages_string.jsonl", "format_error", "messages_not_list", 2,
        ('"messages" is a string', "non-empty list of message objects")),
    Row("content_number.jsonl", "format_error", "content_not_string", 2,
        ("message 2 (user) has content of type number", 'make "content" a string')),
    Row("role_number.jsonl", "format_error", "unknown_role", 2,
        ("message 1 has unrecognised role 1", "use one of assistant, function, system, tool, "
         "user")),
    Row("weight_one_float.jsonl", None),
    Row("line_not_object.jsonl", "format_error", "not_an_object", 2,
        ("the line is a JSON array, not an object", '{"messages": [...]}')),
    Row("prompt_completion.jsonl", "format_error", "missing_messages", 2,
        ("the object has no \"messages\" key (keys: 'completion', 'prompt')",
         "prompt/completion files are the legacy format")),
    Row("truncated_line.jsonl", "format_error", "invalid_json", 3,
        (f"not valid JSON (unexpected end of data: column {len(TRUNCATED) + 1})",
         "one complete JSON object")),
    Row("blank_line.jsonl", "format_error", "blank_line", 3,
        ("the line is empty", "remove empty lines")),
    # preference pairs (DPO)
    Row("preference_valid.jsonl", None),
    Row("preference_missing_non_preferred.jsonl", "format_error", "missing_preference_output",
        2, ('the preference pair has no "non_preferred_output"', '"non_preferred_output": [')),
    # files that are not UTF-8 JSON lines at all: told once, with the command that converts
    Row("json_array.json", "not_jsonl", None, None,
        ("the file is a JSON array, not JSON lines", "jq -c '.[]'")),
    Row("table.csv", "not_jsonl", None, None,
        ("the file is a CSV table, not JSON lines", 'lines=True')),
    Row("utf16_bom.jsonl", "not_jsonl", None, None,
        ("encoded as UTF-16, not UTF-8", "iconv -f UTF-16 -t UTF-8")),
    Row("utf16_no_bom.jsonl", "not_jsonl", None, None,
        ("encoded as UTF-16, not UTF-8", "iconv -f UTF-16 -t UTF-8")),
    Row("empty.jsonl", "empty_file", None, None,
        ("the file is empty", "write one JSON example per line")),
    # bytes that break lines
    Row("latin1.jsonl", "non_utf8", "non_utf8", 2,
        (f"byte 0xe9 at column {LATIN1.index('é') + 1} is not valid UTF-8",
         "iconv -f latin1 -t utf-8")),
    Row("bom_utf8.jsonl", "bom", None, None,
        ("begins with the bytes EF BB BF (UTF-8 BOM)", "save the file as UTF-8 without BOM")),
    Row("nul_in_line.jsonl", "format_error", "invalid_json", 3,
        (f"not valid JSON: 1 NUL byte (0x00) from column {NUL_LINE.index(chr(0)) + 1}",
         "remove the NUL bytes")),
    Row("nul_padding.jsonl", "format_error", "invalid_json", 4,
        ("not valid JSON: 64 NUL bytes (0x00) from column 1", "a file cut short by a crash")),
    Row("nul_padding_short.jsonl", "format_error", "invalid_json", 2,
        ("not valid JSON: 64 NUL bytes (0x00) from column 1", "remove the NUL bytes")),
    Row("nul_file.jsonl", "format_error", "invalid_json", 1,
        ("not valid JSON: 4096 NUL bytes (0x00) from column 1", "remove the NUL bytes")),
    # a line of several MB (written at test time)
    Row("huge_line.jsonl", None),
    Row("huge_line_cut.jsonl", "format_error", "invalid_json", 3,
        (f"not valid JSON (unexpected end of data: column {len(HUGE_LINE) - 5 + 1})",)),
]


def path_of(row: Row, tmp_path: Path) -> Path:
    return hostile_files.generated(row.file, tmp_path) if row.file in GENERATED \
        else FOLDER / row.file


def ids(rows: list[Row]) -> list[str]:
    return [r.file.rsplit(".", 1)[0] for r in rows]


def audit(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", str(path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout


def the_text(finding: dict[str, Any], row: Row) -> str:
    """What the row's words are looked for in: the issue's message and hint for a bad line,
    the finding's title, evidence and advice for a finding about the whole file."""
    if row.code is None:
        assert row.line is None
        return " ".join((finding["title"], finding["evidence"], finding["advice"]))
    issues = finding["details"]["issues"]
    assert [(i["line"], i["code"]) for i in issues] == [(row.line, row.code)], issues
    assert f"first at line {row.line}: {issues[0]['message']}" in finding["evidence"]
    return f"{issues[0]['message']} {issues[0]['hint']}"


@pytest.mark.parametrize("row", AUDIT, ids=ids(AUDIT))
def test_audit_json(row: Row, tmp_path: Path) -> None:
    path = path_of(row, tmp_path)
    code, out = audit(path, "--json")
    assert code == 0
    report = json.loads(out)
    split = report["splits"]["train"]
    refusing = [f for f in report["findings"] if f["id"] in REFUSALS]
    if row.finding is None:
        assert refusing == [], refusing
        assert split["examples"] == split["lines"] > 0  # every line is an example
        return
    assert [f["id"] for f in refusing] == [row.finding]  # told once, and nothing else refuses
    assert refusing[0]["severity"] == "fail" and report["verdict"] == "not_ready"
    text = the_text(refusing[0], row)
    for words in row.words:
        assert words in text, (words, text)
    assert len(text) < 1500  # a huge line is never quoted whole


@pytest.mark.parametrize("row", [r for r in AUDIT if r.finding], ids=ids(
    [r for r in AUDIT if r.finding]))
def test_audit_terminal_page_fails_the_gate(row: Row, tmp_path: Path) -> None:
    code, out = audit(path_of(row, tmp_path), "--fail-on", "error")
    assert code == 1
    assert f"({row.finding})" in out and "NOT READY" in out
    if row.line is not None:
        assert f"train:{row.line} " in out  # the format problems table names the line


def test_every_file_has_its_row_and_is_what_the_generator_writes() -> None:
    assert sorted(p.name for p in FOLDER.iterdir()) == sorted(
        r.file for r in AUDIT if r.file not in GENERATED)
    for name, data in hostile_files.AUDIT.items():
        assert (FOLDER / name).read_bytes() == data, name
