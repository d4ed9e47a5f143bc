"""The table of hostile training logs: every file of tests/fixtures/hostile/curves/ (and the huge
ones written at test time) through ``ftlens curves FILE --json``, with what it must answer:
exit 2 and one ``error: FILE:LINE: …`` message naming the line, or the finding of a log that
is read (and the steps it was read at)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import cli_run, hostile_files
from tests.support.hostile_files import GENERATED, LOSSES

FOLDER = hostile_files.HERE / "curves"
ERROR = "error"
_, _, run_main = cli_run.helpers("curves")


@dataclass(frozen=True)
class Row:
    file: str  # in FOLDER, or one of hostile_files.GENERATED
    outcome: str  # ERROR, or a finding id --json must hold (once)
    line: int | None = None  # the error's (or the finding's) line; None: the whole file
    words: tuple[str, ...] = ()  # in the error (message, expected, how to fix) or the finding
    steps: list[int] | None = None  # a read log's training-loss steps
    source: str | None = None  # ...and the format it was read as

    @property
    def id(self) -> str:
        return self.file.rsplit(".", 1)[0]


ALL = list(range(1, len(LOSSES) + 1))
BASE64_HINT = "client.files.content(job.result_files[0]).read()"
CURVES: list[Row] = [
    Row("empty.csv", ERROR, None, ("the file is empty", "a job that has not started logs "
                                                        "nothing")),
    Row("truncated.json", ERROR, hostile_files.CURVES["truncated.json"].count(b"\n") + 1,
        ("not valid JSON (", "the file may be cut short")),
    # a CSV whose header lacks the columns: the options to name them, guessed from the header
    Row("header_without_step.csv", ERROR, 1, (
        "the CSV header has no 'step' column", "the header has: iteration, loss, val_loss",
        "--step-col iteration --train-col loss --valid-col val_loss")),
    Row("header_without_loss.csv", ERROR, 1, (
        "the CSV header has no 'train_loss' column", "the header has: step, lr, grad_norm",
        "name the columns with --step-col/--train-col/--valid-col")),
    # values
    Row("loss_not_a_number.csv", ERROR, 5, ("train_loss is 'abc', not a number",
                                            "an empty cell or null means 'not logged")),
    # NaN and inf are kept (they mean divergence): the curve is judged up to the first one
    Row("loss_nan.csv", "loss_diverging", None, ("training diverged at step 7",
                                                 "the loss became NaN or infinite"),
        steps=ALL[:6], source="openai-csv"),
    Row("loss_inf.csv", "loss_diverging", None, ("training diverged at step 6",
                                                 "the loss became NaN or infinite"),
        steps=ALL[:5], source="openai-csv"),
    # steps
    Row("step_negative.csv", ERROR, 2, ("step is '-1', outside 0 to 2**63-1",
                                        "whole-number steps such as 10")),
    Row("step_duplicate.csv", "steps_not_increasing", 4, (
        "the log's steps repeat at line 4", "step 2 at line 4 comes after step 2",
        "give each run a log of its own"), steps=[1, 2, 3, 4], source="generic"),
    Row("steps_restart.csv", "steps_not_increasing", 7, (
        "the log's steps go back at line 7", "step 1 at line 7 comes after step 5",
        "a second run appended to the same file"), steps=[1, 2, 3, 4, 5], source="generic"),
    # bytes and encodings
    Row("latin1.csv", ERROR, 2, ("byte 0xe9 at column 8 is not valid UTF-8",
                                 "iconv -f latin1 -t utf-8")),
    Row("utf16.csv", ERROR, None, ("the file is encoded as UTF-16, not UTF-8",
                                   "iconv -f UTF-16 -t UTF-8")),
    # JSON documents
    Row("records_array.json", "loss_decreasing", steps=ALL, source="generic"),
    Row("events_array.json", "loss_decreasing", steps=ALL, source="openai-events"),
    Row("events_line_not_object.jsonl", ERROR, 4, ("a JSON array, not an object",
                                                   "one JSON object per line")),
    Row("array_of_numbers.json", ERROR, None, (
        "not a training log ftlens knows: 12 item(s), the first a JSON number",
        "trainer_state.json")),
    Row("log_history_not_list.json", ERROR, 3, ("log_history is a string, not a list",)),
    # OpenAI's result file in base64, broken
    Row("result_base64_truncated.b64", ERROR, None, (
        "looks like a base64 result file, but it does not decode", "probably cut short",
        BASE64_HINT)),
    Row("result_base64_corrupt.b64", ERROR, 1, (
        "looks like a base64 result file", "'!' at column 41 is not base64", BASE64_HINT)),
    # a huge line (written at test time): read, or refused without quoting it
    Row("huge_cell.csv", ERROR, 1, ("not a readable CSV (field larger than field limit",
                                    "a cell of over 128 KiB")),
    Row("huge_event.jsonl", "loss_decreasing", steps=ALL, source="openai-events"),
]


@pytest.mark.parametrize("row", CURVES, ids=[r.id for r in CURVES])
def test_curves(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hostile_files.generated(row.file, tmp_path) if row.file in GENERATED \
        else FOLDER / row.file
    code, out, err = run_main([str(path), "--json"], capsys)
    assert "Traceback" not in out + err
    if row.outcome == ERROR:
        assert (code, out) == (2, ""), err
        assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1, err
        where = f"{path}:{row.line}" if row.line is not None else str(path)
        assert err.startswith(f"error: {where}: "), err
        for words in row.words:
            assert words in err, (words, err)
        assert len(err) < 2000  # a huge line is never quoted whole
        return
    assert code == 0, err
    report = json.loads(out)
    found = [f for f in report["findings"] if f["id"] == row.outcome]
    assert len(found) == 1, [f["id"] for f in report["findings"]]
    assert (found[0].get("details") or {}).get("line") == row.line
    text = " ".join(found[0][k] for k in ("title", "evidence", "advice"))
    for words in row.words:
        assert words in text, (words, text)
    assert (report["source"], report["train"]["steps"]) == (row.source, row.steps)


def test_every_file_has_its_row_and_is_what_the_generator_writes() -> None:
    assert sorted(p.name for p in FOLDER.iterdir()) == sorted(
        r.file for r in CURVES if r.file not in GENERATED)
    for name, data in hostile_files.CURVES.items():
        assert (FOLDER / name).read_bytes() == data, name
