"""The table of hostile predictions files: every file of tests/fixtures/hostile/metrics/ through
``ftlens metrics PREDS --json`` (with ``--require`` where a row says), with what it must answer:
exit 2 and one ``error: FILE:LINE: …`` message naming the line, or the finding (and the classes)
of a file that is read."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from tests.support import cli_run, hostile_files

FOLDER = hostile_files.HERE / "metrics"
ERROR = "error"  # the outcome of a file (or option) that is refused
GRAMMAR = "METRIC[(LABEL)] OP NUMBER"
EXAMPLE = 'e.g. "recall(spam)>=0.9"'
_, _, run_main = cli_run.helpers("metrics")


@dataclass(frozen=True)
class Row:
    file: str  # in FOLDER
    outcome: str | None  # ERROR, a finding id --json must hold, or None (read, nothing said)
    line: int | None = None  # the error's line; None: about the whole file (or an option)
    words: tuple[str, ...] = ()  # in the error (message, expected, how to fix) or the finding
    args: tuple[str, ...] = ()
    matrix: list[list[int]] | None = None  # a read file's confusion matrix (rows: classes)
    classes: tuple[str, ...] = ()  # ...its classes, as the matrix's rows name them
    absent: tuple[str, ...] = ()  # findings a read file must not raise
    name: str = ""  # the row's id, where a file has several rows

    @property
    def id(self) -> str:
        return self.name or self.file.rsplit(".", 1)[0]


NOT_A_PROBABILITY = ("a probability between 0 and 1", "not raw scores or logits")
METRICS: list[Row] = [
    # true labels
    Row("truth_null.jsonl", ERROR, 2, ("the true label 'label' is null",
                                       "label the row, or remove it from the file")),
    Row("truth_empty.jsonl", ERROR, 3, ("the true label 'label' is empty",
                                        "label the row, or remove it from the file")),
    # "OK " beside "ok": one class, spelled as most rows spell it (documented: case and spaces
    # never make a class), and the answers "OK" and "Ok" are that class
    Row("truth_case_space.jsonl", None, classes=("bad", "ok"),
        matrix=[[1, 1, 0], [1, 2, 0]]),
    Row("no_truth_field.jsonl", ERROR, 2, ("no 'label' field", "--label-field NAME")),
    # scores as probabilities
    Row("score_above_one.jsonl", ERROR, 2, ("score is 1.7, not a probability",
                                            *NOT_A_PROBABILITY)),
    Row("prob_negative.jsonl", ERROR, 2, ("probs['spam'] is -3, not a probability",
                                          *NOT_A_PROBABILITY)),
    # requirements: a label named as labels are matched, and bars that do not read
    Row("fraud.jsonl", "requirement_met", None, ("requirement recall(Fraud)>=0.1 met",
                                                 "recall(Fraud) is 0.5"),
        args=("--require", "recall(Fraud)>=0.1"), name="require_label_in_other_case"),
    Row("fraud.jsonl", ERROR, None, ("cannot read the requirement 'bogus': it has no "
                                     "comparison", GRAMMAR, EXAMPLE),
        args=("--require", "bogus"), name="require_bogus"),
    Row("fraud.jsonl", ERROR, None, ("cannot read the requirement '>=90%': the bar is a "
                                     "percentage", "0.9 for 90 %", GRAMMAR, EXAMPLE),
        args=("--require", ">=90%"), name="require_percentage"),
    # one class present: said plainly, not as an accuracy paradox
    Row("single_class.jsonl", "single_class", None,
        ("only one class is present: every true label is 'ham'", "10 rows, all 'ham'"),
        absent=("accuracy_paradox",)),
    # files of another shape than their name says, or none ftlens reads
    Row("array.json", ERROR, None, ("the file is a JSON array, not JSON lines", "jq -c '.[]'")),
    Row("array_one_line.json", ERROR, None, ("the file is a JSON array, not JSON lines",
                                             "jq -c '.[]'")),
    Row("csv_named_jsonl.jsonl", None, classes=("ham", "spam"), matrix=[[1, 0, 0], [0, 1, 0]]),
    Row("jsonl_named_csv.csv", None, classes=("ham", "spam"), matrix=[[1, 0, 0], [0, 1, 0]]),
    Row("utf16.jsonl", ERROR, None, ("the file is encoded as UTF-16, not UTF-8",
                                     "iconv -f UTF-16 -t UTF-8")),
    # the house's ugly inputs
    Row("truncated.jsonl", ERROR, 3, ("not valid JSON (unexpected end of data",
                                      '{"label": "spam", "prediction": "ham"}')),
    Row("empty.jsonl", ERROR, None, ("the file is empty", "one prediction per line")),
    Row("latin1.jsonl", ERROR, 2, (
        f"byte 0xf3 at column {hostile_files.P_LATIN1.index('ó') + 1} is not valid UTF-8",
        "iconv -f latin1 -t utf-8")),
    Row("prediction_object.jsonl", ERROR, 3, ("prediction is an object, not a label",
                                              "a string (or number) label")),
    Row("line_string.jsonl", ERROR, 2, ("the line is a string, not an object",
                                        '{"label": ..., "prediction": ...}')),
]


@pytest.mark.parametrize("row", METRICS, ids=[r.id for r in METRICS])
def test_metrics(row: Row, capsys: pytest.CaptureFixture[str]) -> None:
    path = FOLDER / row.file
    code, out, err = run_main([str(path), "--json", *row.args], capsys)
    assert "Traceback" not in out + err
    if row.outcome == ERROR:
        assert (code, out) == (2, ""), err
        assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1, err
        if row.line is not None:
            assert err.startswith(f"error: {path}:{row.line}: "), err
        elif not row.args:  # a refused file is named, without a line
            assert err.startswith(f"error: {path}: "), err
        for words in row.words:
            assert words in err, (words, err)
        return
    assert code == 0, err
    report = json.loads(out)
    found = {f["id"]: f for f in report["findings"]}
    assert not set(row.absent) & set(found), list(found)
    if row.outcome is not None:
        assert [f["id"] for f in report["findings"]].count(row.outcome) == 1, list(found)
        text = " ".join(found[row.outcome][k] for k in ("title", "evidence", "advice"))
        for words in row.words:
            assert words in text, (words, text)
    if row.matrix is not None:
        confusion = report["metrics"]["confusion"]
        assert confusion["rows"] == list(row.classes)
        assert confusion["matrix"] == row.matrix


def test_every_file_has_its_row_and_is_what_the_generator_writes() -> None:
    assert sorted(p.name for p in FOLDER.iterdir()) == sorted({r.file for r in METRICS})
    for name, data in hostile_files.METRICS.items():
        assert (FOLDER / name).read_bytes() == data, name
