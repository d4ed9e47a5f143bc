"""Reading predictions files: JSONL and CSV, configurable fields, and errors naming file:line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ftlens.errors import DataError
from ftlens.io.predictions import Fields, read_predictions


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def jsonl(*objs: object) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_jsonl_with_probs(tmp_path: Path) -> None:
    p = write(tmp_path, "preds.jsonl", jsonl(
        {"label": "spam", "prediction": "ham", "probs": {"spam": 0.31, "ham": 0.69}},
        {"label": "ham", "prediction": "ham", "probs": {"ham": 0.9, "spam": 0.1}},
        {"label": "spam", "prediction": "spam", "probs": {"spam": 0.8, "ham": 0.2}},
    ))
    preds = read_predictions(p)
    assert list(preds.y_true) == ["spam", "ham", "spam"]
    assert list(preds.y_pred) == ["ham", "ham", "spam"]
    assert preds.prob_labels == ("ham", "spam")
    assert preds.probs is not None
    np.testing.assert_allclose(preds.probs, [[0.69, 0.31], [0.9, 0.1], [0.2, 0.8]])
    assert preds.scores is None and preds.ids is None


def test_jsonl_with_score_and_ids(tmp_path: Path) -> None:
    p = write(tmp_path, "preds.jsonl", jsonl(
        {"id": 7, "label": "spam", "prediction": "spam", "score": 0.9},
        {"id": "x", "label": "ham", "prediction": " ham ", "score": "0.25"},
    ) + "\n   \n")  # blank lines are skipped
    preds = read_predictions(p)
    assert preds.scores is not None
    np.testing.assert_allclose(preds.scores, [0.9, 0.25])
    assert list(preds.ids or []) == ["7", "x"]
    assert list(preds.y_pred) == ["spam", "ham"]  # surrounding spaces stripped
    assert preds.probs is None


def test_csv_with_prob_columns_and_score(tmp_path: Path) -> None:
    p = write(tmp_path, "preds.csv",
              "label,prediction,score,p_spam,p_ham\n"
              "spam,spam,0.8,0.8,0.2\n"
              "ham,spam,0.6,0.6,0.4\n"
              'ham,"ham, I think",0.1,0.1,0.9\n')
    preds = read_predictions(p)
    assert list(preds.y_true) == ["spam", "ham", "ham"]
    assert list(preds.y_pred) == ["spam", "spam", "ham, I think"]
    assert preds.scores is not None
    np.testing.assert_allclose(preds.scores, [0.8, 0.6, 0.1])
    assert preds.prob_labels == ("ham", "spam")
    assert preds.probs is not None
    np.testing.assert_allclose(preds.probs, [[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])


def test_bom_prefixed_csv(tmp_path: Path) -> None:
    p = write(tmp_path, "preds.csv",
              b"\xef\xbb\xbflabel,prediction,score\r\nspam,spam,0.9\r\nham,ham,0.2\r\n")
    preds = read_predictions(p)
    assert list(preds.y_true) == ["spam", "ham"]
    assert preds.scores is not None and list(preds.scores) == [0.9, 0.2]


def test_bom_prefixed_jsonl_without_a_known_suffix(tmp_path: Path) -> None:
    p = write(tmp_path, "preds.txt",
              b"\xef\xbb\xbf" + jsonl({"label": "a", "prediction": "b"}).encode())
    preds = read_predictions(p)
    assert (list(preds.y_true), list(preds.y_pred)) == (["a"], ["b"])


def test_csv_detected_without_a_suffix_and_tsv(tmp_path: Path) -> None:
    plain = read_predictions(write(tmp_path, "preds", "label,prediction\na,a\nb,a\n"))
    assert list(plain.y_pred) == ["a", "a"]
    tsv = read_predictions(write(tmp_path, "preds.tsv", "label\tprediction\na\tb\n"))
    assert (list(tsv.y_true), list(tsv.y_pred)) == (["a"], ["b"])


def test_configurable_field_names(tmp_path: Path) -> None:
    fields = Fields(label="gold", prediction="answer", score="conf", probs="dist",
                    prob_prefix="prob_", id="uid")
    j = write(tmp_path, "preds.jsonl", jsonl(
        {"uid": "q1", "gold": "spam", "answer": "spam", "conf": 0.7,
         "dist": {"spam": 0.7, "ham": 0.3}, "label": "ignored"},
    ))
    preds = read_predictions(j, fields)
    assert (list(preds.y_true), list(preds.ids or [])) == (["spam"], ["q1"])
    assert preds.scores is not None and list(preds.scores) == [0.7]
    assert preds.prob_labels == ("ham", "spam")
    c = write(tmp_path, "preds.csv", "gold,answer,prob_spam,prob_ham,p_other\n"
                                     "spam,ham,0.4,0.6,x\n")
    preds = read_predictions(c, fields)
    assert (list(preds.y_true), list(preds.y_pred)) == (["spam"], ["ham"])
    assert preds.prob_labels == ("ham", "spam")  # p_other is not a probability column here


@pytest.mark.parametrize(("line", "label", "prediction"), [
    ('{"label": 0, "prediction": 1}', "0", "1"),
    ('{"label": 1, "prediction": 1}', "1", "1"),
    ('{"label": true, "prediction": false}', "true", "false"),
    ('{"label": "spam", "prediction": null}', "spam", ""),
    ('{"label": "spam"}', "spam", ""),  # no answer at all: unparseable, never dropped
])
def test_label_values(tmp_path: Path, line: str, label: str, prediction: str) -> None:
    preds = read_predictions(write(tmp_path, "p.jsonl", line + "\n"))
    assert (list(preds.y_true), list(preds.y_pred)) == ([label], [prediction])


def test_truths_differing_only_in_case_are_one_class_everywhere(tmp_path: Path) -> None:
    p = write(tmp_path, "p.jsonl", jsonl(
        {"label": "ok", "prediction": "OK", "probs": {"ok": 0.7, "bad": 0.3}},
        {"label": "OK ", "prediction": "ok", "probs": {"OK": 0.6, "bad": 0.4}},
        {"label": "ok", "prediction": "bad", "probs": {"ok": 0.2, "bad": 0.8}},
        {"label": "bad", "prediction": "Ok", "probs": {"ok": 0.9, "bad": 0.1}}))
    preds = read_predictions(p)
    assert list(preds.y_true) == ["ok", "ok", "ok", "bad"]  # as most rows spell it
    assert list(preds.y_pred) == ["ok", "ok", "bad", "ok"]
    assert preds.prob_labels == ("bad", "ok") and preds.probs is not None
    np.testing.assert_allclose(preds.probs[:, 1], [0.7, 0.6, 0.2, 0.9])


def test_numeric_labels_in_csv_and_jsonl_agree(tmp_path: Path) -> None:
    j = read_predictions(write(tmp_path, "p.jsonl", jsonl({"label": 0, "prediction": 1},
                                                          {"label": 1, "prediction": 1})))
    c = read_predictions(write(tmp_path, "p.csv", "label,prediction\n0,1\n1,1\n"))
    assert list(j.y_true) == list(c.y_true) == ["0", "1"]
    assert list(j.y_pred) == list(c.y_pred) == ["1", "1"]


GOOD = '{"label": "spam", "prediction": "spam", "score": 0.5}\n'


@pytest.mark.parametrize(("name", "content", "line", "message"), [
    ("truncated.jsonl", GOOD + '{"label": "spam", "predic\n', 2, "not valid JSON"),
    ("array.jsonl", GOOD + GOOD + "[1, 2]\n", 3, "not an object"),
    ("string.jsonl", '"spam"\n', 1, "not an object"),
    ("nolabel.jsonl", GOOD + '{"prediction": "spam", "score": 0.1}\n', 2, "no 'label' field"),
    ("text_score.jsonl", GOOD + '{"label": "a", "prediction": "a", "score": "high"}\n', 2,
     "not a finite number"),
    ("nan_score.jsonl", GOOD + '{"label": "a", "prediction": "a", "score": "NaN"}\n', 2,
     "not a finite number"),
    ("nan_literal.jsonl", GOOD + '{"label": "a", "prediction": "a", "score": NaN}\n', 2,
     "not valid JSON"),
    ("inf_score.csv", "label,prediction,score\na,a,0.3\nb,b,inf\n", 3, "not a finite number"),
    ("bool_score.jsonl", '{"label": "a", "prediction": "a", "score": true}\n', 1,
     "not a finite number"),
    ("bad_prob.jsonl", '{"label": "a", "prediction": "a", "probs": {"a": "x"}}\n', 1,
     "not a finite number"),
    ("dict_label.jsonl", '{"label": {"x": 1}, "prediction": "a"}\n', 1, "not a label"),
    ("nonutf8.jsonl", GOOD.encode() + b'{"label": "sp\xe9m", "prediction": "spam"}\n', 2,
     "not valid UTF-8"),
    ("wide.csv", "label,prediction\nspam,spam\nham,ham,extra\n", 3,
     "3 cells but the header has 2 columns"),
    ("nocols.csv", "gold,answer\nspam,spam\n", 1, "no 'label' column"),
    ("nopred.csv", "label,answer\nspam,spam\n", 1, "no 'prediction' column"),
    ("empty_prob.csv", "label,prediction,p_a,p_b\na,a,0.9,0.1\nb,b,,0.8\n", 3,
     "not a finite number"),
    ("null_truth.jsonl", GOOD + '{"label": null, "prediction": "spam"}\n', 2,
     "the true label 'label' is null"),
    ("empty_truth.jsonl", GOOD + '{"label": "  ", "prediction": "spam"}\n', 2,
     "the true label 'label' is empty"),
    ("empty_truth.csv", "label,prediction\nspam,spam\n,ham\n", 3, "is empty"),
    ("score_above_one.jsonl", GOOD + '{"label": "a", "prediction": "a", "score": 1.7}\n', 2,
     "1.7, not a probability"),
    ("negative_prob.jsonl", '{"label": "a", "prediction": "a", "probs": {"a": -3}}\n', 1,
     "-3, not a probability"),
    ("logit_prob.csv", "label,prediction,p_a\na,a,2.5\n", 2, "not a probability"),
])
def test_errors_name_file_and_line(tmp_path: Path, name: str, content: str | bytes, line: int,
                                   message: str) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        read_predictions(p)
    err = info.value
    assert err.line == line
    assert f"{p}:{line}: " in err.render()
    assert message in err.render()


@pytest.mark.parametrize(("name", "content", "what"), [
    ("someprobs.jsonl", jsonl({"label": "a", "prediction": "a", "probs": {"a": 0.9, "b": 0.1}},
                              {"label": "b", "prediction": "b"},
                              {"label": "b", "prediction": "b", "probs": {"a": 0.2, "b": 0.8}}),
     "probs"),
    ("somescores.jsonl", jsonl({"label": "a", "prediction": "a", "score": 0.9},
                               {"label": "b", "prediction": "b", "score": 0.1},
                               {"label": "b", "prediction": "b"}), "score"),
    ("somescores.csv", "label,prediction,score\na,a,0.9\nb,b,\n", "score"),
])
def test_fields_on_only_some_rows_name_the_file_and_a_line(tmp_path: Path, name: str,
                                                           content: str, what: str) -> None:
    p = write(tmp_path, name, content)
    with pytest.raises(DataError) as info:
        read_predictions(p)
    rendered = info.value.render()
    assert f"'{what}'" in rendered
    # every problem names the file and line (the module's promise): here, a row lacking it
    assert re.search(rf"{re.escape(str(p))}:\d+: ", rendered), rendered


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    p = write(tmp_path, "empty.jsonl", content)
    with pytest.raises(DataError) as info:
        read_predictions(p)
    assert info.value.path == str(p)
    assert str(p) in info.value.render()
    assert "empty" in info.value.render() or "no predictions" in info.value.render()


def test_csv_header_only_has_no_predictions(tmp_path: Path) -> None:
    p = write(tmp_path, "header.csv", "label,prediction\n")
    with pytest.raises(DataError, match="no predictions") as info:
        read_predictions(p)
    assert str(p) in info.value.render()


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file") as info:
        read_predictions(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in info.value.render()
    with pytest.raises(DataError, match="directory"):
        read_predictions(tmp_path)



@pytest.mark.parametrize(("row", "prediction"), [
    ('{"label": "spam", "prediction": "sp\u2028am"}', "sp\u2028am"),  # as they are, unescaped
    ('{"label": "spam", "prediction": "sp\u2029am"}', "sp\u2029am"),
    ('{"label": "spam", "prediction": "sp\x85am"}', "sp\x85am"),
    ('{"label": "spam",\r"prediction": "spam"}', "spam"),  # JSON whitespace
    ('{"label": "spam",\x0c"prediction": "spam"}', None),  # not JSON whitespace
])
def test_only_a_newline_ends_a_jsonl_row(tmp_path: Path, row: str, prediction: str | None
                                         ) -> None:
    """U+2028, U+2029 and U+0085 may stand in a JSON string as they are, and a CR between
    values is whitespace: str.splitlines ended a line at each, refusing good rows and
    numbering the lines after them wrongly."""
    p = write(tmp_path, "preds.jsonl", f"{row}\n{row}\n")
    if prediction is None:
        with pytest.raises(DataError, match="not valid JSON") as info:
            read_predictions(p)
        assert info.value.line == 1
    else:
        assert read_predictions(p).y_pred == [prediction] * 2
    p = write(tmp_path, "bad.jsonl", f'{row}\n{{"label": "ham", "prediction": "ham"}}\n'
              '{"label": nope}\n')
    with pytest.raises(DataError) as info:
        read_predictions(p)
    assert info.value.line == (1 if prediction is None else 3)


@pytest.mark.parametrize(("content", "line"), [
    ("label,prediction\nspam,spam\nham," + "x" * 200_000 + "\nham,ham\n", 3),
    ("label," + "p" * 200_000 + "\nspam,spam\n", 1),  # in the header
])
def test_a_csv_cell_over_the_field_limit_is_refused_naming_its_line(
        tmp_path: Path, content: str, line: int) -> None:
    """The csv module refuses a cell over 128 KiB (csv.Error, which escaped as a crash)."""
    p = write(tmp_path, "preds.csv", content)
    with pytest.raises(DataError, match="field limit") as info:
        read_predictions(p)
    assert info.value.line == line and f"{p}:{line}: not a readable CSV" in info.value.render()
