"""``ftlens run`` on a small user data set with the tiny model, end to end through an embedded
``ftlens serve``; ``--job`` judging that finished job again without training; and the bad
inputs that must stop a run before it trains, with one clear message and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.support import cli_run
from tests.support.toy_chat import chat, distinct, write_jsonl

from ftlens.cli import cli

invoke, as_json, run_main = cli_run.helpers("run")
STEPS_PER_EPOCH = 6  # 24 training examples at batch size 4


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user-data")
    write_jsonl(folder / "train.jsonl", distinct(24, seed=1))
    write_jsonl(folder / "valid.jsonl", distinct(10, seed=2))
    test = distinct(15, seed=3)
    test[4] = json.loads((folder / "train.jsonl").read_text().splitlines()[7])  # one leak
    write_jsonl(folder / "test.jsonl", test)
    return folder


@pytest.fixture(scope="module")
def finished(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(cli, [
        "run", "--train", str(data / "train.jsonl"), "--valid", str(data / "valid.jsonl"),
        "--test", str(data / "test.jsonl"), "--model", "tiny-random-llama", "--epochs", "2",
        "--batch-size", "4", "--positive", "spam", "--checkpoint", str(STEPS_PER_EPOCH),
        "--out", str(out), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return {"out": out, "report": json.loads(result.stdout)}


def test_a_run_on_user_data_writes_one_directory_and_argues_its_verdict(
        finished: dict[str, Any]) -> None:
    out, report = finished["out"], finished["report"]
    assert report == json.loads((out / "report.json").read_text())  # --json prints it
    assert report["verdict"] in ("ready", "not_ready", "inconclusive") and report["reasons"]
    assert set(report["sections"]) == {"audit", "curves", "eval"}
    for name in ("audit.json", "curves.json", "eval.json", "results.csv", "provenance.json",
                 "predictions.jsonl", "predictions.baseline.jsonl",
                 "predictions.checkpoint.jsonl", "predictions.valid.jsonl", "report.html",
                 "report.md"):
        assert (out / name).is_file(), name
    ev = json.loads((out / "eval.json").read_text())
    assert ev["run"]["baseline"] == "tiny-random-llama"
    assert ev["run"]["model"].startswith("ft:tiny-random-llama:")
    assert ev["leakage"]["seen_rows"] == 1 and ev["leakage"]["rows"][0]["row"] == 4
    assert ev["threshold"] is None or ev["threshold"]["tuned_on"] == "10 validation rows"
    ckpt = ev["checkpoint"]
    assert ckpt["step"] == STEPS_PER_EPOCH and ckpt["rows"] == 14  # the unseen rows
    assert ckpt["model"] == f"{ev['run']['model']}:ckpt-step-{STEPS_PER_EPOCH}"
    ids = {f["id"] for f in ev["findings"]}
    assert ids & {"checkpoint_better", "checkpoint_no_better", "final_model_better"}
    assert "threshold_tuned_on_test" not in ids
    html = (out / "report.html").read_text()
    assert 'id="checkpoint"' in html and 'id="reasons"' in html and 'id="leakage"' in html
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["extra"]["job"].startswith("ftjob-")


def test_job_judges_a_finished_job_again_without_training(
        finished: dict[str, Any], data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the job id and the test file: the job's training and validation files, result
    file and checkpoints come from the service, where the job still is the only one."""
    first = json.loads((finished["out"] / "eval.json").read_text())
    job_id = json.loads((finished["out"] / "provenance.json").read_text())["extra"]["job"]
    monkeypatch.setenv("FTLENS_HOME", str(finished["out"] / "service"))
    out = tmp_path / "again"
    report = as_json("--job", job_id, "--test", str(data / "test.jsonl"), "--out", str(out),
                     "--positive", "spam", "--checkpoint", str(STEPS_PER_EPOCH))
    assert report["reasons"]
    assert (out / "data" / "training.jsonl").read_bytes() == (data / "train.jsonl").read_bytes()
    assert (out / "data" / "validation.jsonl").is_file()
    ev = json.loads((out / "eval.json").read_text())
    assert ev["run"]["model"] == first["run"]["model"]
    assert ev["metrics"] == first["metrics"] and ev["leakage"] == first["leakage"]
    assert ev["checkpoint"]["model"] == first["checkpoint"]["model"]
    jobs = json.loads((out / f"{job_id}.events.jsonl").read_text().splitlines()[0])
    assert jobs["object"] == "fine_tuning.job.event"
    home_jobs = list((finished["out"] / "service" / "jobs").iterdir())
    assert len(home_jobs) == 1  # nothing was trained again


def _unlabelled(path: Path) -> Path:
    rows = distinct(6, seed=5)
    rows[3] = {"messages": rows[3]["messages"][:2]}  # type: ignore[index]
    return write_jsonl(path, rows)


def test_bad_inputs_stop_the_run_before_it_trains(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTLENS_HOME", str(tmp_path / "home"))
    train = str(data / "train.jsonl")
    other = write_jsonl(tmp_path / "sentiment.jsonl", [chat(f"a film {i}", y) for i, y in
                                                       enumerate(["positive", "negative"] * 6)])
    cases = [
        (["--train", train, "--test", str(_unlabelled(tmp_path / "t.jsonl"))],
         ["t.jsonl:4", "no assistant message"]),
        (["--train", str(other), "--test", str(data / "test.jsonl")],
         ["sentiment.jsonl", "another task", "'ham', 'spam'"]),
        (["--test", str(data / "test.jsonl")], ["needs --train"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--checkpoint", "best"],
         ["--checkpoint 'best'"]),
        (["--job", "ftjob-x", "--epochs", "3", "--test", str(data / "test.jsonl")],
         ["already ran"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--require", "bogus"],
         ["requirement"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--positive", "Spam"],
         ["--positive names 'Spam'", "its labels: ham, spam"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--require",
          "recall(fraud)>=0.9"], ["names 'fraud'"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--openai"],
         ["--openai needs --model"]),
        (["--job", "ftjob-x", "--model", "m", "--test", str(data / "test.jsonl")],
         ["already ran"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--task-metrics"],
         ["--task-metrics scores the validation rows", "--valid FILE"]),
        (["--train", train, "--valid", str(data / "valid.jsonl"), "--test",
          str(data / "test.jsonl"), "--task-metrics", "--openai", "--model", "m"],
         ["OpenAI's current fine-tuning API computes no task metrics"]),
        (["--train", train, "--test", str(data / "test.jsonl"), "--select", "f1>0.5"],
         ["cannot read the selection rule"]),
    ]
    for args, words in cases:
        code, _, err = run_main([*args, "--out", str(tmp_path / "out")], capsys)
        assert code == 2, (args, err)
        assert all(w in err for w in words), (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "out" / "service").exists()  # no service was started for them


def test_a_job_that_does_not_exist_is_exit_2(data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTLENS_HOME", str(tmp_path / "home"))
    code, _, err = run_main(["--job", "ftjob-nope", "--test", str(data / "test.jsonl"),
                             "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "ftjob-nope" in err and "404" in err and "Traceback" not in err
    assert "FTLENS_HOME=RUN_DIR/service" in err


def test_help_shows_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "ftlens run --train train.jsonl" in result.output and "--job" in result.output
