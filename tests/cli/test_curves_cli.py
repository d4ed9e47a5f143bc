"""``ftlens curves`` end to end on the fixture logs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support.curve_generator import generate

from ftlens.cli import cli

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "curves"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftlens", "curves", *args],
                          capture_output=True, text=True, timeout=120)


GENERIC_MAP = ["--step-col", "iteration", "--train-col", "loss", "--valid-col", "val_loss"]


@pytest.mark.parametrize(("name", "extra"), [
    ("openai_result.csv", []), ("openai_result.b64", []), ("openai_events.json", []),
    ("openai_events.jsonl", []), ("openai_checkpoints.json", []), ("trainer_state.json", []),
    ("trl_trainer_state.json", []), ("generic.csv", GENERIC_MAP), ("generic.jsonl", [])])
def test_every_fixture_format_is_diagnosed(name: str, extra: list[str]) -> None:
    result = CliRunner().invoke(cli, ["curves", str(FIXTURES / name), "--json", *extra])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["verdict"] in ("ready", "not_ready", "inconclusive")
    assert data["train"]["points"] >= 3
    assert {f["id"] for f in data["findings"]} & {"loss_decreasing", "loss_stuck",
                                                  "memorization"}


def test_terminal_output_has_sparklines_and_verdict() -> None:
    result = CliRunner().invoke(cli, ["curves", str(FIXTURES / "openai_result.csv")])
    assert result.exit_code == 0
    assert "train smoothed" in result.output and "verdict:" in result.output
    assert any(ch in result.output for ch in "▁▂▃▄▅▆▇█")


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_plot_is_written(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"loss{suffix}"
    result = CliRunner().invoke(cli, ["curves", str(FIXTURES / "trainer_state.json"),
                                      "--plot", str(out)])
    assert result.exit_code == 0, result.output
    head = out.read_bytes()[:200]
    assert (b"<svg" in head or b"<?xml" in head) if suffix == ".svg" else head[:4] == b"\x89PNG"


def test_overfit_run_fails_the_gate_and_names_the_onset(tmp_path: Path) -> None:
    run, truth = generate("overfit", 2)
    rows = ["step,train_loss,valid_loss"]
    valid = dict(zip(run.valid_loss.steps.tolist(), run.valid_loss.values.tolist(),
                     strict=True))
    for s, v in zip(run.train_loss.steps.tolist(), run.train_loss.values.tolist(),
                    strict=True):
        rows.append(f"{s},{v},{valid.get(s, '')}")
    log = tmp_path / "log.csv"
    log.write_text("\n".join(rows) + "\n")
    proc = run_cli(str(log), "--json", "--fail-on", "error")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["overfitting"]["onset_step"] == pytest.approx(truth.overfit_onset,
                                                              abs=0.1 * len(run.train_loss))


def test_mapping_columns_of_a_generic_csv(tmp_path: Path) -> None:
    log = tmp_path / "custom.csv"
    log.write_text("it,l,vl\n" + "\n".join(f"{i},{2 - i / 60},{2.1 - i / 70}"
                                           for i in range(1, 61)) + "\n")
    result = CliRunner().invoke(cli, ["curves", str(log), "--step-col", "it", "--train-col",
                                      "l", "--valid-col", "vl", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["valid"]["points"] == 60


@pytest.mark.parametrize("name", ["broken_truncated.json", "broken_bad_number.csv",
                                  "unknown.json"])
def test_broken_logs_exit_2_with_one_message(name: str) -> None:
    proc = run_cli(str(FIXTURES / name))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert name in proc.stderr


def test_generic_csv_without_mapping_suggests_one() -> None:
    proc = run_cli(str(FIXTURES / "generic.csv"))
    assert proc.returncode == 2 and "--step-col iteration" in proc.stderr


def test_bad_plot_name_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_cli(str(FIXTURES / "generic.jsonl"), "--plot", str(tmp_path / "loss.gif"))
    assert proc.returncode == 2 and ".svg or .png" in proc.stderr


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["curves", "--help"])
    assert result.exit_code == 0 and "Examples:" in result.output


def test_epochs_from_examples_and_batch_size() -> None:
    result = CliRunner().invoke(cli, ["curves", str(FIXTURES / "openai_result.csv"), "--json",
                                      "--examples", "50", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["epoch_steps"][:2] == [13, 26]
    assert data["checkpoint_steps"] == [*data["epoch_steps"][-2:], data["train"]["steps"][-1]]


def test_a_legacy_openai_file_with_task_metrics_is_read_plotted_and_selected(
        tmp_path: Path) -> None:
    legacy = str(FIXTURES / "openai_legacy_classification.csv")
    out = tmp_path / "loss.svg"
    result = CliRunner().invoke(cli, ["curves", legacy, "--json", "--plot", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == "openai-legacy-csv"
    assert data["best_checkpoint"]["step"] == 60
    assert data["best_checkpoint"]["metric"] == "classification/f1.0"
    assert "the default when task metrics are logged" in data["best_checkpoint"]["rule"]
    assert data["task_metrics"]["curves"]["classification/recall"]["steps"] == [30, 60, 90, 120]
    assert {f["id"] for f in data["findings"]} >= {"task_metric_peak", "task_metric_disagrees"}
    assert "validation recall" in out.read_text(encoding="utf-8")  # the task axis's legend
    by_loss = CliRunner().invoke(cli, ["curves", legacy, "--json", "--select", "loss"])
    assert json.loads(by_loss.stdout)["best_checkpoint"]["by"] == "validation loss"
    terminal = CliRunner().invoke(cli, ["curves", legacy])
    assert "peak 0.960 at step 60" in terminal.output


@pytest.mark.parametrize(("rule", "words"), [
    ("f1 > 2", "cannot read the selection rule"), ("recall(fraud)", "no recall is logged"),
])
def test_a_selection_rule_that_does_not_fit_is_a_clear_error(rule: str, words: str) -> None:
    proc = run_cli(str(FIXTURES / "openai_legacy_classification.csv"), "--select", rule)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    assert 'e.g. "f1(spam)"' in proc.stderr
