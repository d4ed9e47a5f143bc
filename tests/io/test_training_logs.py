"""Reading training logs: every format into one TrainingRun, detection by content, and errors
that name the file and line. Fixtures in tests/fixtures/curves are written by us, shaped like the
real files (OpenAI result CSV and its base64 form, job events and checkpoints as the SDK returns
them, Hugging Face and TRL trainer_state.json, generic tables)."""

from __future__ import annotations

import base64
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftlens.core.run import Series, TrainingRun
from ftlens.errors import ConfigError, DataError
from ftlens.io.training_logs import FORMATS, read_run

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "curves"
SERIES = ("train_loss", "valid_loss", "train_accuracy", "valid_accuracy", "full_valid_loss",
          "full_valid_accuracy")
GENERIC_CSV = {"step_col": "iteration", "train_col": "loss", "valid_col": "val_loss"}

Point = tuple[int, float]


@dataclass(frozen=True)
class Case:
    file: str
    source: str
    # series name -> (number of points, first (step, value), last (step, value))
    series: dict[str, tuple[int, Point, Point]]
    total_steps: int | None = None
    steps_per_epoch: int | None = None
    checkpoint_steps: tuple[int, ...] | None = None
    kwargs: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("openai_result.csv", "openai-csv", {
        "train_loss": (48, (1, 2.0397), (48, 0.016048)),
        "train_accuracy": (48, (1, 0.30039), (48, 0.99527)),
        "valid_loss": (8, (6, 1.3624), (48, 0.080373)),
        "valid_accuracy": (8, (6, 0.5284), (48, 0.97218))}),
    Case("openai_result.b64", "openai-csv", {
        "train_loss": (48, (1, 2.0397), (48, 0.016048)),
        "train_accuracy": (48, (1, 0.30039), (48, 0.99527)),
        "valid_loss": (8, (6, 1.3624), (48, 0.080373)),
        "valid_accuracy": (8, (6, 0.5284), (48, 0.97218))}),
    Case("openai_events.json", "openai-events", {
        "train_loss": (30, (1, 2.612469), (30, 0.05688)),
        "train_accuracy": (30, (1, 0.514362), (30, 0.982246)),
        "valid_loss": (6, (5, 1.218434), (30, 0.174993)),
        "valid_accuracy": (6, (5, 0.561364), (30, 0.937002)),
        "full_valid_loss": (1, (30, 0.118235), (30, 0.118235)),
        "full_valid_accuracy": (1, (30, 0.964286), (30, 0.964286))}, total_steps=30),
    Case("openai_events.jsonl", "openai-events", {  # a job without a validation file
        "train_loss": (24, (1, 2.797516), (24, 0.143636)),
        "train_accuracy": (24, (1, 0.095701), (24, 0.953686))}, total_steps=24),
    Case("openai_checkpoints.json", "openai-checkpoints", {
        "train_loss": (3, (12, 0.412733), (36, 0.011962)),
        "train_accuracy": (3, (12, 0.875), (36, 1.0)),
        "valid_loss": (3, (12, 0.458201), (36, 0.239864)),
        "valid_accuracy": (3, (12, 0.84375), (36, 0.9375)),
        "full_valid_loss": (3, (12, 0.447012), (36, 0.228406)),
        "full_valid_accuracy": (3, (12, 0.85), (36, 0.93125))}, checkpoint_steps=(12, 24, 36)),
    Case("trainer_state.json", "trainer-state", {
        "train_loss": (20, (2, 2.3328), (40, 0.5053)),
        "valid_loss": (4, (10, 1.707352), (40, 0.67681))},
         total_steps=40, steps_per_epoch=20, checkpoint_steps=(20, 40)),
    Case("trl_trainer_state.json", "trainer-state", {
        "train_loss": (12, (5, 2.321), (60, 0.384)),
        "train_accuracy": (12, (5, 0.519833), (60, 0.853788)),
        "valid_loss": (3, (20, 1.160332), (60, 0.553543)),
        "valid_accuracy": (3, (20, 0.678099), (60, 0.767994))},
         total_steps=60, steps_per_epoch=20, checkpoint_steps=(25, 50, 60)),
    Case("generic.csv", "generic", {
        "train_loss": (30, (1, 1.8681), (30, 0.33663)),
        "valid_loss": (6, (5, 1.3459), (30, 0.47301))}, kwargs=GENERIC_CSV),
    Case("generic.jsonl", "generic", {  # eval rows are separate lines, as many loggers write
        "train_loss": (25, (1, 2.58975), (25, 0.7505)),
        "valid_loss": (5, (5, 1.9311), (25, 0.80105))}),
]


def assert_well_formed(run: TrainingRun) -> None:
    assert len(run.train_loss) > 0
    for name in SERIES:
        s = getattr(run, name)
        if s is None:
            continue
        assert isinstance(s, Series) and len(s) > 0
        assert s.steps.dtype == np.int64 and s.values.dtype == np.float64
        assert np.all(np.diff(s.steps) > 0), f"{name} steps not strictly ascending"
        assert np.all(s.steps >= 0)


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_fixture_reads_into_expected_run(case: Case) -> None:
    run = read_run(FIX / case.file, **case.kwargs)
    assert_well_formed(run)
    assert run.source == case.source
    present = {name for name in SERIES if getattr(run, name) is not None}
    assert present == set(case.series)
    for name, (count, first, last) in case.series.items():
        s = getattr(run, name)
        assert len(s) == count, name
        assert (int(s.steps[0]), float(s.values[0])) == first, name
        assert (int(s.steps[-1]), float(s.values[-1])) == last, name
    assert run.total_steps == case.total_steps
    assert run.steps_per_epoch == case.steps_per_epoch
    assert run.checkpoint_steps == case.checkpoint_steps


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_forcing_the_detected_format_gives_the_same_run(case: Case) -> None:
    auto = read_run(FIX / case.file, **case.kwargs)
    forced = read_run(FIX / case.file, fmt=case.source, **case.kwargs)
    assert_same_series(auto, forced)


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_detection_is_by_content_not_extension(tmp_path: Path, case: Case) -> None:
    p = tmp_path / "mystery.log"
    p.write_bytes((FIX / case.file).read_bytes())
    assert_same_series(read_run(p, **case.kwargs), read_run(FIX / case.file, **case.kwargs))


def assert_same_series(a: TrainingRun, b: TrainingRun) -> None:
    for name in SERIES:
        sa, sb = getattr(a, name), getattr(b, name)
        assert (sa is None) == (sb is None), name
        if sa is not None:
            np.testing.assert_array_equal(sa.steps, sb.steps)
            np.testing.assert_array_equal(sa.values, sb.values)
    assert (a.total_steps, a.steps_per_epoch, a.checkpoint_steps, a.source) == (
        b.total_steps, b.steps_per_epoch, b.checkpoint_steps, b.source)


def test_formats_constant() -> None:
    assert FORMATS == ("auto", "openai-csv", "openai-events", "openai-checkpoints",
                       "trainer-state", "generic")


# ---------------------------------------------------------------- OpenAI result CSV


def test_result_csv_cells_exactly() -> None:
    run = read_run(FIX / "openai_result.csv")
    assert 8e-05 in run.train_loss.values.tolist()  # "8e-05" as written
    assert run.valid_loss is not None
    assert run.valid_loss.steps.tolist() == [6, 12, 18, 24, 30, 36, 42, 48]  # empty cells skipped
    assert run.meta == {}


@pytest.mark.parametrize("wrap", ["one_line", "76_columns", "quoted"])
def test_base64_equals_raw(tmp_path: Path, wrap: str) -> None:
    raw = (FIX / "openai_result.csv").read_bytes()
    packed = base64.b64encode(raw).decode()
    if wrap == "76_columns":  # as `base64` prints it
        packed = "\n".join(packed[i:i + 76] for i in range(0, len(packed), 76))
    elif wrap == "quoted":  # saved as a JSON string
        packed = json.dumps(packed)
    p = tmp_path / "result.txt"
    p.write_text(packed + "\n")
    decoded = read_run(p)
    assert_same_series(decoded, read_run(FIX / "openai_result.csv"))
    assert decoded.meta == {"base64": True}
    assert_same_series(read_run(FIX / "openai_result.b64"), decoded)


def test_nan_and_inf_in_csv_are_kept(tmp_path: Path) -> None:
    p = tmp_path / "diverged.csv"
    p.write_text("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
                 "1,0.9,0.5,,\n2,inf,0.1,,\n3,nan,0.0,nan,0.0\n")
    run = read_run(p)
    values = run.train_loss.values
    assert values[0] == 0.9 and math.isinf(values[1]) and math.isnan(values[2])
    assert run.valid_loss is not None and math.isnan(run.valid_loss.values[0])


def test_crlf_bom_and_short_rows(tmp_path: Path) -> None:
    p = tmp_path / "result.csv"
    p.write_bytes(b"\xef\xbb\xbfstep,train_loss,train_accuracy,valid_loss,"
                  b"valid_mean_token_accuracy\r\n1,0.5,0.7\r\n2,0.4,0.8,0.45,0.75\r\n")
    run = read_run(p)
    assert run.train_loss.steps.tolist() == [1, 2]
    assert run.valid_loss is not None and run.valid_loss.steps.tolist() == [2]


def test_result_csv_with_full_validation_columns(tmp_path: Path) -> None:
    p = tmp_path / "result.csv"
    p.write_text(OPENAI_HEADER.strip() + ",full_valid_loss,full_valid_mean_token_accuracy\n"
                 "1,0.5,0.7,,,,\n2,0.4,0.8,0.45,0.75,0.44,0.8\n")
    run = read_run(p)
    assert run.full_valid_loss is not None and run.full_valid_accuracy is not None
    assert run.full_valid_loss.steps.tolist() == [2]
    assert run.full_valid_accuracy.values.tolist() == [0.8]


# ---------------------------------------------------------------- OpenAI events


def fixture_events() -> list[dict[str, Any]]:
    page = json.loads((FIX / "openai_events.json").read_text())
    assert page["object"] == "list" and page["has_more"] is False
    events: list[dict[str, Any]] = page["data"]
    return events


def test_events_are_newest_first_with_messages() -> None:
    events = fixture_events()
    times = [e["created_at"] for e in events]
    assert times == sorted(times, reverse=True)
    kinds = {e["type"] for e in events}
    assert kinds == {"metrics", "message"}
    assert any(e["data"] is None for e in events) and any(e["data"] == {} for e in events)
    last = next(e for e in events if e["type"] == "metrics")  # the newest metrics event
    run = read_run(FIX / "openai_events.json")
    assert run.full_valid_loss is not None and run.full_valid_accuracy is not None
    assert run.full_valid_loss.steps.tolist() == [last["data"]["step"]]
    assert run.full_valid_loss.values.tolist() == [last["data"]["full_valid_loss"]]
    assert run.full_valid_accuracy.values.tolist() == [
        last["data"]["full_valid_mean_token_accuracy"]]


@pytest.mark.parametrize("order", ["oldest_first", "shuffled", "as_list", "jsonl"])
def test_event_order_and_container_do_not_matter(tmp_path: Path, order: str) -> None:
    events = fixture_events()
    if order == "oldest_first":
        events = events[::-1]
    elif order == "shuffled":
        random.Random(3).shuffle(events)
    p = tmp_path / "events.txt"
    if order == "jsonl":
        p.write_text("".join(json.dumps(e) + "\n" for e in events))
    else:
        p.write_text(json.dumps(events if order == "as_list" else
                                {"object": "list", "data": events, "has_more": False}))
    assert_same_series(read_run(p), read_run(FIX / "openai_events.json"))


def test_overlapping_pages_as_jsonl_collapse(tmp_path: Path) -> None:
    events = fixture_events()
    pages = [events[i:i + 20] for i in range(0, len(events), 15)]  # each overlaps the next by 5
    p = tmp_path / "pages.jsonl"
    p.write_text("".join(json.dumps({"object": "list", "data": page, "has_more": True}) + "\n"
                         for page in pages))
    run = read_run(p)
    assert_same_series(run, read_run(FIX / "openai_events.json"))
    assert len(run.train_loss) == 30


def test_a_repeated_step_keeps_the_newest_event(tmp_path: Path) -> None:
    def event(step: int, loss: float, created: int) -> dict[str, Any]:
        return {"object": "fine_tuning.job.event", "created_at": created, "type": "metrics",
                "data": {"step": step, "train_loss": loss, "total_steps": 3}}

    p = tmp_path / "events.json"
    p.write_text(json.dumps([event(2, 0.5, 20), event(1, 0.9, 10), event(2, 0.7, 15)]))
    run = read_run(p)
    assert run.train_loss.steps.tolist() == [1, 2]
    assert run.train_loss.values.tolist() == [0.9, 0.5]
    assert run.total_steps == 3


# ---------------------------------------------------------------- checkpoints, trainer_state


def test_checkpoints_meta() -> None:
    run = read_run(FIX / "openai_checkpoints.json")
    assert run.meta["job_id"] == "ftjob-Zk3vB8mQ1xRt6YpLwN4cHs2e"
    models = run.meta["checkpoint_models"]
    assert isinstance(models, dict) and list(models) == [12, 24, 36]
    assert str(models[36]).endswith(":ckpt-step-36")


@pytest.mark.parametrize("name", ["trainer_state.json", "trl_trainer_state.json"])
def test_summary_entry_is_not_a_training_step(name: str) -> None:
    state = json.loads((FIX / name).read_text())
    summary = state["log_history"][-1]
    assert "train_loss" in summary and "loss" not in summary  # Trainer's end-of-run summary
    logged = [e["loss"] for e in state["log_history"] if "loss" in e]
    run = read_run(FIX / name)
    assert run.train_loss.values.tolist() == logged
    assert summary["train_loss"] not in run.train_loss.values.tolist()


def write_state(tmp_path: Path, history: list[dict[str, Any]], **top: Any) -> Path:
    p = tmp_path / "trainer_state.json"
    p.write_text(json.dumps({"log_history": history, **top}, indent=2, sort_keys=True))
    return p


@pytest.mark.parametrize(("top", "expected"), [
    ({"max_steps": 30, "save_steps": 10}, (10, 20, 30)),
    ({"max_steps": 30, "save_steps": 500}, (30,)),  # Trainer saves at the end too
    ({"max_steps": 35, "save_steps": 10}, (10, 20, 30, 35)),
    ({"max_steps": 30, "save_steps": 10, "global_step": 24}, (10, 20)),  # stopped early
    ({"max_steps": 30}, None),
    ({"save_steps": 10}, None),
    ({"max_steps": "many", "save_steps": 10}, None),
])
def test_trainer_state_checkpoint_steps(tmp_path: Path, top: dict[str, Any],
                                        expected: tuple[int, ...] | None) -> None:
    run = read_run(write_state(tmp_path, [{"loss": 1.0, "step": 1, "epoch": 0.1}], **top))
    assert run.checkpoint_steps == expected
    assert run.steps_per_epoch == 10


def test_trainer_state_nan_loss_is_kept(tmp_path: Path) -> None:
    history = [{"loss": 2.0, "step": 1}, {"loss": float("nan"), "step": 2},
               {"loss": float("inf"), "step": 3}, {"eval_loss": float("nan"), "step": 3}]
    p = write_state(tmp_path, history, max_steps=3)  # Python's json writes NaN and Infinity
    assert "NaN" in p.read_text()
    run = read_run(p)
    values = run.train_loss.values
    assert values[0] == 2.0 and math.isnan(values[1]) and math.isinf(values[2])
    assert run.valid_loss is not None and math.isnan(run.valid_loss.values[0])
    assert run.steps_per_epoch is None  # no epochs logged


# ---------------------------------------------------------------- generic tables


def test_generic_csv_needs_the_mapping() -> None:
    with pytest.raises(DataError) as info:
        read_run(FIX / "generic.csv")
    text = info.value.render()
    assert f"{FIX / 'generic.csv'}:1:" in text and "'step'" in text
    assert "--step-col iteration --train-col loss --valid-col val_loss" in text


def test_generic_without_validation_column(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("step,train_loss\n1,0.8\n2,\n3,0.6\n")
    run = read_run(p)
    assert run.valid_loss is None and run.train_loss.steps.tolist() == [1, 3]
    assert run.source == "generic"


def test_generic_json_list_and_forced_generic_on_trainer_state(tmp_path: Path) -> None:
    p = tmp_path / "rows.json"
    p.write_text(json.dumps([{"it": 1, "l": 0.9}, {"it": 2, "l": 0.8, "v": 0.85}]))
    run = read_run(p, fmt="generic", step_col="it", train_col="l", valid_col="v")
    assert run.train_loss.values.tolist() == [0.9, 0.8]
    assert run.valid_loss is not None and run.valid_loss.steps.tolist() == [2]
    forced = read_run(FIX / "trainer_state.json", fmt="generic", train_col="loss",
                      valid_col="eval_loss")
    auto = read_run(FIX / "trainer_state.json")
    for name in ("train_loss", "valid_loss"):
        np.testing.assert_array_equal(getattr(forced, name).steps, getattr(auto, name).steps)
        np.testing.assert_array_equal(getattr(forced, name).values, getattr(auto, name).values)
    assert forced.source == "generic" and forced.total_steps is None


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"fmt": "wandb"}, "unknown log format"),
    ({"step_col": "loss", "train_col": "loss"}, "must differ"),
])
def test_bad_options_are_config_errors(kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        read_run(FIX / "openai_result.csv", **kwargs)


# ---------------------------------------------------------------- errors


def _line_of(text: str, marker: str, offset: int = 0) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line) + offset


def _page_with_bad_event(tmp_path: Path) -> tuple[Path, int]:
    events = fixture_events()
    bad = {"id": "ftevent-bad", "object": "fine_tuning.job.event", "created_at": 1,
           "type": "metrics", "data": {"train_loss": 0.5}}
    events.insert(11, bad)
    p = tmp_path / "events.json"
    text = json.dumps({"object": "list", "data": events, "has_more": False}, indent=2)
    p.write_text(text)
    return p, _line_of(text, '"ftevent-bad"', -1)  # the line of the event's "{"


def _state_with_stepless_entry(tmp_path: Path) -> tuple[Path, int]:
    state = json.loads((FIX / "trainer_state.json").read_text())
    state["log_history"].insert(5, {"epoch": 0.3, "loss": 9.99})
    text = json.dumps(state, indent=2, sort_keys=True)
    p = tmp_path / "trainer_state.json"
    p.write_text(text)
    return p, _line_of(text, "9.99", -2)  # "{", "epoch", "loss"


OPENAI_HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
EVENT = '{"object": "fine_tuning.job.event", "type": "metrics", "data": %s}\n'

# name -> (file content, expected line or None, words the message must contain)
BROKEN: dict[str, tuple[str | bytes, int | None, str]] = {
    "empty": ("", None, "empty"),
    "blank": ("\n  \n\t\n", None, "empty"),
    "non_utf8": (OPENAI_HEADER.encode() + b"1,0.5,,,\n2,0.4\xff,,,\n", 3, "UTF-8"),
    "too_many_cells": (OPENAI_HEADER + "1,0.5,0.1,,\n2,0.4,0.2,,,9\n", 3, "6 cells"),
    "step_not_integer": (OPENAI_HEADER + "1,0.5,0.1,,\n1.5,0.4,0.2,,\n", 3, "whole number"),
    "step_text": ("step,train_loss\n1,0.5\nten,0.4\n", 3, "whole number"),
    "step_negative": ("step,train_loss\n-1,0.5\n", 2, "outside"),
    "values_without_step": ("step,train_loss\n1,0.5\n,0.4\n", 3, "no 'step'"),
    "generic_bad_valid": ("step,train_loss,valid_loss\n1,0.5,x\n", 2, "valid_loss is 'x'"),
    "header_only": (OPENAI_HEADER, None, "no training loss"),
    "forced_openai_csv_on_generic": ("step,loss\n1,0.5\n", 1, "OpenAI result file"),
    "jsonl_bad_line": (EVENT % '{"step": 1, "train_loss": 0.5}' * 2 + '{"object": \n', 3,
                       "not valid JSON"),
    "jsonl_not_object": (EVENT % '{"step": 1, "train_loss": 0.5}' + "[1, 2]\n", 2,
                         "not an object"),
    "jsonl_metrics_data_null": (EVENT % '{"step": 1, "train_loss": 0.5}' + EVENT % "null", 2,
                                "without data.step"),
    "jsonl_step_fraction": (EVENT % '{"step": 1, "train_loss": 0.5}'
                            + EVENT % '{"step": 2.5, "train_loss": 0.4}', 2, "whole number"),
    "only_message_events": ('[{"object": "fine_tuning.job.event", "type": "message", '
                            '"data": {}, "message": "Fine-tuning job started"}]', None,
                            "no metrics events"),
    "checkpoint_without_metrics": ('{"object": "list", "data": [\n{"object": '
                                   '"fine_tuning.job.checkpoint", "step_number": 3}\n]}', 2,
                                   "without metrics"),
    "log_history_not_list": ('{\n  "max_steps": 3,\n  "log_history": {"loss": 1}\n}', 3,
                             "not a list"),
    "no_loss_logged": ('{"log_history": [{"step": 10, "train_loss": 1.2, '
                       '"train_runtime": 3.0}], "max_steps": 10}', None, "no training loss"),
    "json_list_of_numbers": ("[1, 2, 3]", None, "not a training log ftlens knows"),
    "empty_page": ('{"object": "list", "data": [], "has_more": false}', None,
                   "an empty list"),
}
FORCED = {"forced_openai_csv_on_generic": "openai-csv"}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_input_names_file_and_line(tmp_path: Path, name: str) -> None:
    content, line, words = BROKEN[name]
    p = tmp_path / f"{name}.log"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    check_error(p, line, words, fmt=FORCED.get(name, "auto"))


def check_error(path: Path, line: int | None, words: str, **kwargs: str) -> DataError:
    with pytest.raises(DataError) as info:
        read_run(path, **kwargs)
    err = info.value
    text = err.render()
    assert str(path) in text and words in text, text
    assert err.line == line, text
    if line is not None:
        assert f"{path}:{line}: " in text
    assert "Traceback" not in text and (err.expected or err.hint), text
    return err


def test_truncated_json_fixture() -> None:
    path = FIX / "broken_truncated.json"
    last_line = path.read_text().count("\n") + 1
    check_error(path, last_line, "not valid JSON")


def test_bad_number_fixture() -> None:
    err = check_error(FIX / "broken_bad_number.csv", 8, "train_loss is 'abc'")
    assert err.hint is not None


def test_unknown_fixture_lists_known_formats() -> None:
    err = check_error(FIX / "unknown.json", None, "not a training log ftlens knows")
    assert err.expected is not None and "trainer_state.json" in err.expected
    assert err.hint is not None and "list_events" in err.hint  # it is a job object


def test_unknown_list_suggests_format_and_columns(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('[{"a": 1}]')
    err = check_error(p, None, "'a'")
    assert err.hint is not None and "--format" in err.hint and "--step-col" in err.hint


def test_bad_event_in_a_pretty_printed_page_is_found_by_line(tmp_path: Path) -> None:
    path, line = _page_with_bad_event(tmp_path)
    check_error(path, line, "without data.step")


def test_stepless_log_entry_is_found_by_line(tmp_path: Path) -> None:
    path, line = _state_with_stepless_entry(tmp_path)
    check_error(path, line, "no 'step'")


def test_bad_number_in_base64_names_the_decoded_line(tmp_path: Path) -> None:
    p = tmp_path / "result.b64"
    p.write_bytes(base64.b64encode((OPENAI_HEADER + "1,0.5,,,\n2,abc,,,\n").encode()))
    err = check_error(p, None, "line 3 of the base64-decoded CSV")
    assert "abc" in err.render()


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_run(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="directory"):
        read_run(tmp_path)


# ---------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
           | st.sampled_from(["1", "2.0", "nan", "-3", "", "1e400"]))
json_values = st.recursive(
    scalars, lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=16)
metric_keys = st.sampled_from(["step", "train_loss", "valid_loss", "total_steps", "loss",
                               "eval_loss", "epoch", "full_valid_loss", "step_number",
                               "train_mean_token_accuracy", "mean_token_accuracy"])
metrics = st.dictionaries(metric_keys, scalars | json_values, max_size=6)
event = st.fixed_dictionaries(
    {"type": st.sampled_from(["metrics", "message", None, "x"]), "data": metrics | json_values},
    optional={"object": st.just("fine_tuning.job.event"), "created_at": scalars})
checkpoint = st.fixed_dictionaries(
    {"object": st.just("fine_tuning.job.checkpoint"), "metrics": metrics | json_values},
    optional={"step_number": scalars, "fine_tuned_model_checkpoint": scalars})
near_logs = st.one_of(
    st.fixed_dictionaries({"object": st.just("list"),
                           "data": st.lists(event | checkpoint | json_values, max_size=6)}),
    st.lists(event, max_size=6),
    st.fixed_dictionaries({"log_history": st.lists(metrics | json_values, max_size=6) | scalars},
                          optional={"max_steps": scalars, "save_steps": scalars,
                                    "global_step": scalars}),
)


def _read_or_data_error(path: Path) -> None:
    try:
        run = read_run(path)
    except DataError as err:
        assert err.render()
        return
    assert isinstance(run, TrainingRun)
    assert_well_formed(run)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_logs")


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_raise_only_data_error(fuzz_dir: Path, data: bytes) -> None:
    path = fuzz_dir / "random.bin"
    path.write_bytes(data)
    _read_or_data_error(path)


@FUZZ
@given(value=json_values | near_logs)
def test_random_json_raises_only_data_error(fuzz_dir: Path, value: Any) -> None:
    path = fuzz_dir / "random.json"
    path.write_text(json.dumps(value))
    _read_or_data_error(path)


@FUZZ
@given(rows=st.lists(event | checkpoint | metrics, min_size=2, max_size=6))
def test_random_json_lines_raise_only_data_error(fuzz_dir: Path, rows: list[Any]) -> None:
    path = fuzz_dir / "random.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _read_or_data_error(path)


cells = st.sampled_from(["", "1", "0.5", "nan", "inf", "abc", "-2", "1.5", "8e-05", "1e999",
                         '"x,y"', " 3 "])


@FUZZ
@given(rows=st.lists(st.lists(cells, max_size=7), max_size=6),
       header=st.sampled_from([OPENAI_HEADER, "step,train_loss,valid_loss\n", "a,b\n"]))
def test_random_csv_rows_raise_only_data_error(fuzz_dir: Path, rows: list[list[str]],
                                               header: str) -> None:
    path = fuzz_dir / "random.csv"
    path.write_text(header + "".join(",".join(r) + "\n" for r in rows))
    _read_or_data_error(path)
