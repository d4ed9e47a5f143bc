"""``ftlens train``, ``ftlens curves --follow`` and ``ftlens serve`` against real servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner
from openai import OpenAI
from tests.support.cli_run import helpers
from tests.support.service import KEY, Service, free_port
from tests.support.toy_chat import TOY, TOY_PREFERENCES, chat, distinct, write_jsonl

from ftlens.cli import cli
from ftlens.cli.train import _loopback
from ftlens.server.embedded import embedded_service

_, _, run_main = helpers("serve")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    return (write_jsonl(folder / "train.jsonl", [chat(t, y) for t, y in TOY]),
            write_jsonl(folder / "valid.jsonl", [chat(t + "!", y) for t, y in TOY[:5]]))


@pytest.fixture(scope="module")
def trained(service: Service, data: tuple[Path, Path],
            tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    """`ftlens train --json` run once: (its JSON, the out folder, its output)."""
    out_dir = tmp_path_factory.mktemp("train-out")
    train, valid = data
    mp = pytest.MonkeyPatch()
    mp.setenv("FTLENS_API_KEY", KEY)
    result = CliRunner().invoke(cli, [
        "train", str(train), "--valid", str(valid), "--model", "tiny-random-llama",
        "--base-url", service.url, "--epochs", "2", "--batch-size", "4",
        "--learning-rate-multiplier", "5", "--suffix", "cli", "--out", str(out_dir),
        "--json"])
    mp.undo()
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out_dir, result.output


def test_train_follows_the_job_and_diagnoses_it(service: Service,
                                                trained: tuple[dict, Path, str],
                                                tmp_path: Path) -> None:
    out, out_dir, output = trained
    job = out["job"]
    assert job["status"] == "succeeded" and job["fine_tuned_model"].endswith(
        f":cli:{job['id'][6:14]}")
    csv_path = Path(out["results_csv"])
    assert csv_path.parent == out_dir and csv_path.read_text().startswith("step,train_loss,")
    events = [json.loads(line) for line in Path(out["events"]).read_text().splitlines()]
    assert events[-1]["message"] == "The job has successfully completed"
    assert [e["data"]["step"] for e in events if e["type"] == "metrics"] == list(range(1, 7))
    assert out["diagnosis"]["train"]["points"] == 6
    assert KEY not in output

    followed = CliRunner().invoke(cli, ["curves", "--follow", job["id"], "--base-url",
                                        service.url, "--out", str(tmp_path), "--json"],
                                  env={"FTLENS_API_KEY": KEY})
    assert followed.exit_code == 0, followed.output
    again = json.loads(followed.stdout)
    assert again["job"]["id"] == job["id"]
    assert Path(again["results_csv"]).read_bytes() == csv_path.read_bytes()


def test_eval_asks_the_served_tuned_and_base_models(service: Service,
                                                    trained: tuple[dict, Path, str],
                                                    data: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    model = trained[0]["job"]["fine_tuned_model"]
    result = CliRunner().invoke(cli, [
        "eval", "--model", model, "--baseline", "tiny-random-llama", "--data", str(data[0]),
        "--base-url", service.url, "--api-key-env", "FTLENS_API_KEY", "--max-tokens", "3",
        "--cache", str(tmp_path / "cache.sqlite"), "--out", str(tmp_path / "preds.jsonl"),
        "--json"], env={"FTLENS_API_KEY": KEY})
    assert result.exit_code in (0, 1), result.output
    out = json.loads(result.stdout)
    assert out["verdict"] in ("ready", "not_ready", "inconclusive")
    assert out["comparison"] is not None
    rows = [json.loads(line) for line in (tmp_path / "preds.jsonl").read_text().splitlines()]
    assert len(rows) == len(TOY) and all(set(r["probs"]) == {"spam", "ham"} for r in rows)
    assert KEY.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_train_reports_a_refused_file_clearly(service: Service, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [}\n')
    proc = subprocess.run([sys.executable, "-m", "ftlens", "train", str(bad), "--model",
                           "tiny-random-llama", "--base-url", service.url],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FTLENS_API_KEY": KEY})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "failed (400): bad.jsonl, line 1: not valid JSON" in proc.stderr
    assert "ftlens audit bad.jsonl" in proc.stderr and str(service.home) not in proc.stderr


def test_train_with_an_unreachable_endpoint_fails_cleanly(data: tuple[Path, Path]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ftlens", "train", str(data[0]), "--model",
                           "tiny-random-llama", "--base-url",
                           f"http://127.0.0.1:{free_port()}/v1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot reach the endpoint" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_refuses_a_base_url_that_is_not_a_url(data: tuple[Path, Path]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ftlens", "train", str(data[0]), "--model",
                           "tiny-random-llama", "--base-url", "127.0.0.1:8000/v1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not an http(s) URL" in proc.stderr
    assert "uploading" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_bad_arguments_fail_before_any_service_starts(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["train", str(tmp_path / "nope.jsonl"), "--model",
                                       "tiny-random-llama"])
    assert "no such file" in str(missing.exception)
    assert not (tmp_path / "ftlens.db").exists() and "uploading" not in missing.output
    port = CliRunner().invoke(cli, ["serve", "--port", "99999"])
    assert port.exit_code == 2 and "1<=x<=65535" in port.output


def test_a_file_of_the_other_kind_for_the_method_fails_before_any_upload(
        tmp_path: Path, data: tuple[Path, Path]) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", TOY_PREFERENCES)
    sft = CliRunner().invoke(cli, ["train", str(pairs), "--model", "tiny-random-llama"])
    assert sft.exit_code == 2 and "holds preference pairs (DPO data): add --method dpo" in \
        sft.output
    dpo = CliRunner().invoke(cli, ["train", str(data[0]), "--model", "tiny-random-llama",
                                   "--method", "dpo"])
    assert dpo.exit_code == 2 and "holds chat examples; --method dpo trains on preference" in \
        dpo.output
    beta = CliRunner().invoke(cli, ["train", str(pairs), "--model", "tiny-random-llama",
                                    "--beta", "0.1"])
    assert beta.exit_code == 2 and "--beta is a DPO hyperparameter" in beta.output
    for result in (sft, dpo, beta):
        assert "uploading" not in result.output


def test_train_with_task_metrics_selects_the_checkpoint_by_them(
        service: Service, tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [chat(t, y) for t, y in TOY])
    valid = write_jsonl(tmp_path / "valid.jsonl", distinct(10, seed=4))
    mp = pytest.MonkeyPatch()
    mp.setenv("FTLENS_API_KEY", KEY)
    result = CliRunner().invoke(cli, [
        "train", str(train), "--valid", str(valid), "--model", "tiny-random-llama",
        "--base-url", service.url, "--epochs", "3", "--batch-size", "4",
        "--learning-rate-multiplier", "10", "--task-metrics", "--positive", "spam",
        "--f-beta", "2", "--select", "recall(spam)", "--out", str(tmp_path), "--json"])
    mp.undo()
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["job"]["classification_betas"] == [2.0]
    header = Path(out["results_csv"]).read_text(encoding="utf-8").splitlines()[0]
    assert "classification/f2.0" in header and "classification/recall/spam" in header
    d = out["diagnosis"]
    assert d["best_checkpoint"]["metric"] == "classification/recall/spam"
    assert d["best_checkpoint"]["rule"] == "recall(spam) (as asked)"
    recall = d["task_metrics"]["curves"]["classification/recall/spam"]
    assert recall["steps"] and any(f["id"] == "task_metric_peak" for f in d["findings"])


@pytest.mark.parametrize(("args", "words"), [
    (["--positive", "spam"], "--positive and --f-beta apply to task metrics"),
    (["--task-metrics"], "add --valid FILE"),
    (["--task-metrics", "--openai"], "OpenAI's current fine-tuning API computes no task"),
    (["--select", "bogus"], "cannot read the selection rule"),
])
def test_task_metric_options_that_cannot_work_fail_before_any_upload(
        data: tuple[Path, Path], args: list[str], words: str) -> None:
    result = CliRunner().invoke(cli, ["train", str(data[0]), "--model", "tiny-random-llama",
                                      *args])
    assert result.exit_code == 2 and words in result.output, result.output
    assert "uploading" not in result.output


def test_curves_needs_a_file_or_a_job() -> None:
    assert CliRunner().invoke(cli, ["curves"]).exit_code == 2


def test_serve_binds_loopback_and_requires_its_key(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FTLENS_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "ftlens", "serve", "--port", str(port),
                             "--home", str(tmp_path), "--workers", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                models = OpenAI(base_url=url, api_key=KEY, max_retries=0).models.list()
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
        assert "smollm2-135m-instruct" in [m.id for m in models]
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/v1" in output and "bearer key required" in output
    assert KEY not in output
    assert (tmp_path / "ftlens.db").exists()


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"), ("", "the API key file is empty"),
    ("  \nsecond line\n", "the API key file is empty")])
def test_serve_refuses_an_unusable_key_file(tmp_path: Path, content: str | None, message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    code, _, err = run_main(["--api-key-file", str(key_file), "--home", str(tmp_path / "h")],
                            capsys)
    assert code == 2 and message in err and str(key_file) in err and "Traceback" not in err
    assert not (tmp_path / "h").exists()  # refused before the service touched its home


def test_only_loopback_counts_as_private() -> None:
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.1.4")


def test_the_embedded_service_starts_and_stops(tmp_path: Path) -> None:
    with embedded_service(tmp_path, workers=0) as url:
        assert OpenAI(base_url=url, api_key="x", max_retries=0).models.list().data
    with pytest.raises(openai.APIConnectionError):
        OpenAI(base_url=url, api_key="x", max_retries=0, timeout=2).models.list()
