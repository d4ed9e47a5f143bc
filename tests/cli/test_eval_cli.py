"""``ftlens eval`` end to end against a loopback OpenAI-compatible endpoint: JSON shape,
exit codes, the baseline comparison, predictions that ``ftlens metrics`` reads, resuming after
SIGKILL and Ctrl-C, and the API key never written anywhere."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support import cli_run
from tests.support.fake_openai import FakeOpenAI

from ftlens.cli import cli

ROOT = Path(__file__).resolve().parents[2]
N = 80
SECRET = "sk-proj-TOPSECRET-4f9a8b7c6d5e"


def write_data(path: Path, n: int = N) -> Path:
    lines = []
    for i in range(n):
        label = "spam" if i % 4 == 0 else "ham"
        lines.append(json.dumps({"messages": [
            {"role": "system", "content": "Classify the SMS as spam or ham."},
            {"role": "user", "content": f"SMS {i} [{label}] see you at {i % 12} pm"},
            {"role": "assistant", "content": label, "weight": 1}]}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "test.jsonl")


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default cache goes under a temporary XDG_CACHE_HOME, never the real home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path / "xdg" / "ftlens" / "responses.sqlite"


invoke, as_json, run_main = cli_run.helpers("eval")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **extra}


def test_json_shape_and_baseline(server: FakeOpenAI, data: Path, cache_home: Path) -> None:
    out = as_json("--model", "tuned", "--baseline", "base", "--data", str(data),
                  "--base-url", server.base_url, "--positive", "spam")
    assert out["verdict"] in ("ready", "not_ready", "inconclusive")
    assert out["positive"] == "spam"
    m = out["metrics"]
    assert m["n"] == N and m["confusion"]["rows"] == ["ham", "spam"]
    assert sum(map(sum, m["confusion"]["matrix"])) == N
    assert out["threshold"]["positive"] == "spam" and len(out["threshold"]["scores"]) == N
    cmp = out["comparison"]
    assert cmp["n"] == N and 0 <= cmp["mcnemar_p"] <= 1
    assert {d["name"] for d in cmp["differences"]} >= {"accuracy", "macro_f1"}
    assert out["baseline_metrics"]["n"] == N
    assert out["baseline_metrics"]["accuracy"] < m["accuracy"]  # the base model errs more
    run = out["run"]
    assert run["model"] == "tuned" and run["baseline"] == "base"
    assert run["labels"] == ["ham", "spam"] and run["n"] == N
    assert run["endpoint"] == server.base_url
    assert run["requests"] == {"distinct": 2 * N, "cached": 0, "sent": 2 * N,
                               "attempts": 2 * N, "retries": {}}
    assert run["predictions"] == str(data.with_name("test.tuned.predictions.jsonl"))
    assert run["baseline_predictions"] == str(data.with_name("test.base.predictions.jsonl"))
    assert Path(run["cache"]) == cache_home and cache_home.exists()
    for f in out["findings"]:
        assert set(f) >= {"id", "severity", "title", "evidence", "advice"}
    # the rerun comes from the cache
    again = as_json("--model", "tuned", "--baseline", "base", "--data", str(data),
                    "--base-url", server.base_url, "--positive", "spam")
    assert again["run"]["requests"]["cached"] == 2 * N and again["run"]["requests"]["sent"] == 0
    assert again["metrics"] == m and again["comparison"] == cmp


def test_predictions_file_is_what_ftlens_metrics_reads(server: FakeOpenAI, data: Path,
                                                       tmp_path: Path) -> None:
    out_path = tmp_path / "out" / "tuned.jsonl"
    ev = as_json("--model", "tuned", "--baseline", "base", "--data", str(data),
                 "--base-url", server.base_url, "--out", str(out_path), "--positive", "spam")
    base_path = tmp_path / "out" / "tuned.baseline.jsonl"
    assert ev["run"]["baseline_predictions"] == str(base_path)
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert len(rows) == N and rows[0]["id"] == 1
    assert set(rows[0]) >= {"id", "label", "prediction", "answer", "probs"}
    unparseable = [r for r in rows if r["prediction"] is None]
    assert unparseable and all(r["answer"] for r in unparseable)
    assert all(sum(r["probs"].values()) == pytest.approx(1) for r in rows)
    result = CliRunner().invoke(cli, ["metrics", str(out_path), "--compare", str(base_path),
                                      "--positive", "spam", "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["metrics"] == ev["metrics"]
    assert again["threshold"]["chosen"] == ev["threshold"]["chosen"]
    assert again["comparison"] == ev["comparison"]


def test_terminal_output(server: FakeOpenAI, data: Path) -> None:
    result = invoke("--model", "tuned", "--baseline", "base", "--data", str(data),
                    "--base-url", server.base_url)
    assert result.exit_code == 0, result.output
    for words in ("tuned on", "requests: 160 sent, 0 from the cache", "baseline base:",
                  "ftlens eval", "confusion matrix", "against the baseline", "verdict:"):
        assert words in result.stdout, words


def test_without_probabilities(server: FakeOpenAI, data: Path) -> None:
    out = as_json("--model", "tuned", "--data", str(data), "--base-url", server.base_url,
                  "--top-logprobs", "0", "--labels", "spam,ham,eggs")
    assert out["threshold"] is None and out["comparison"] is None
    assert out["run"]["labels"] == ["spam", "ham", "eggs"]
    assert "probs" not in json.loads(Path(out["run"]["predictions"]).read_text().split("\n")[0])


@pytest.mark.parametrize(("require", "code"), [("accuracy>=0.99", 1), ("accuracy>=0.5", 0)])
def test_require_sets_the_exit_code(server: FakeOpenAI, data: Path, require: str,
                                    code: int) -> None:
    result = invoke("--model", "tuned", "--data", str(data), "--base-url", server.base_url,
                    "--require", require, "--json")
    assert result.exit_code == code, result.output
    failed = [f for f in json.loads(result.stdout)["findings"] if f["id"] == "requirement_failed"]
    assert bool(failed) == (code == 1)


def one_clear_error(err: str) -> str:
    assert "Traceback" not in err
    assert err.startswith("error:") and len([ln for ln in err.splitlines()
                                             if ln.startswith("error:")]) == 1, err
    return err


def test_bad_data_file_names_file_and_line(server: FakeOpenAI, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_data(tmp_path / "bad.jsonl", 5)
    lines = bad.read_text().splitlines()
    lines[2] = '{"messages": [{"role": "user", "content": "hi"}'
    bad.write_text("\n".join(lines) + "\n")
    code, out, err = run_main(["--model", "m", "--data", str(bad), "--base-url",
                               server.base_url], capsys)
    assert code == 2 and out == ""
    assert f"{bad}:3" in one_clear_error(err)
    assert sum(server.arrivals.values()) == 0


def test_answer_must_come_last(server: FakeOpenAI, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"messages": [{"role": "user", "content": "a"},
                                          {"role": "assistant", "content": "spam"},
                                          {"role": "user", "content": "b"}]}) + "\n")
    code, _, err = run_main(["--model", "m", "--data", str(p), "--base-url", server.base_url],
                            capsys)
    assert code == 2
    assert f"{p}:1" in one_clear_error(err) and "not the assistant's answer" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--openai"], "OPENAI_API_KEY is not set"),
    ([], "no endpoint to ask"),
    (["--base-url", "URL", "--openai"], "are alternatives"),
    (["--base-url", "URL", "--concurrency", "0"], "--concurrency 0 must be at least 1"),
    (["--base-url", "URL", "--top-logprobs", "-1"], "--top-logprobs -1"),
    (["--base-url", "URL", "--retries", "-1"], "--retries must not be negative"),
    (["--base-url", "URL", "--baseline", "m"], "the same model"),
    (["--base-url", "URL", "--labels", "spam"], "not in --labels"),
    (["--base-url", "URL", "--target-recall", "0.9", "--target-precision", "0.9"],
     "are alternatives"),
    (["--base-url", "URL", "--positive", "fraud"], "'fraud'"),
])
def test_bad_options_are_exit_2(server: FakeOpenAI, data: Path, args: list[str], message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    args = [server.base_url if a == "URL" else a for a in args]
    code, out, err = run_main(["--model", "m", "--data", str(data), *args], capsys)
    assert code == 2 and out == ""
    assert message in one_clear_error(err)


def test_endpoint_errors_are_exit_2(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenAI(api_key=SECRET, models={"tuned"}) as server:
        os.environ["OPENAI_API_KEY"] = "sk-wrong-key-1234567890"
        try:
            code, _, err = run_main(["--model", "tuned", "--data", str(data), "--base-url",
                                     server.base_url], capsys)
        finally:
            del os.environ["OPENAI_API_KEY"]
        assert code == 2
        assert "refused the API key (401" in one_clear_error(err)
        assert "sk-wrong-key-1234567890" not in err
        os.environ["MY_KEY"] = SECRET
        try:
            code, _, err = run_main(["--model", "nope", "--data", str(data), "--base-url",
                                     server.base_url, "--api-key-env", "MY_KEY"], capsys)
        finally:
            del os.environ["MY_KEY"]
        assert code == 2
        assert "model 'nope' was not found" in one_clear_error(err)
        port = server.port
    code, _, err = run_main(["--model", "tuned", "--data", str(data), "--base-url",
                             f"http://127.0.0.1:{port}/v1"], capsys)
    assert code == 2
    assert "cannot reach" in one_clear_error(err)


def secret_free(*paths: Path) -> None:
    for p in paths:
        for f in [p, *p.parent.glob(p.name + "-*")]:  # SQLite's -wal and -shm too
            if f.exists():
                assert SECRET.encode() not in f.read_bytes(), f


def test_the_api_key_is_written_nowhere(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    out = tmp_path / "preds.jsonl"
    with FakeOpenAI(api_key=SECRET) as server:
        args = [sys.executable, "-m", "ftlens", "--debug", "eval", "--model", "tuned",
                "--baseline", "base", "--data", str(data), "--base-url", server.base_url,
                "--cache", str(cache), "--out", str(out), "--api-key-env", "FT_KEY"]
        ok = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120,
                            env=env(FT_KEY=SECRET, OPENAI_LOG="info"))
        assert ok.returncode == 0, ok.stderr
        assert sum(server.ok.values()) == 2 * N  # the key was used
        text = subprocess.run(args, capture_output=True, text=True, timeout=120,
                              env=env(FT_KEY=SECRET, OPENAI_LOG="info"))
        assert text.returncode == 0, text.stderr
        for stream in (ok.stdout, ok.stderr, text.stdout, text.stderr):
            assert SECRET not in stream
        secret_free(cache, out, tmp_path / "preds.baseline.jsonl")
        # a wrong key that the server echoes back, with --debug tracebacks on
        wrong = SECRET[::-1]
        bad = subprocess.run([*args, "--cache", str(tmp_path / "c2.sqlite")],
                             capture_output=True, text=True, timeout=120,
                             env=env(FT_KEY=wrong, OPENAI_LOG="info"))
        assert bad.returncode != 0
        assert "401" in bad.stderr and wrong not in bad.stderr + bad.stdout
        secret_free(tmp_path / "c2.sqlite")


def cached(path: Path) -> int:
    try:
        return int(sqlite3.connect(path).execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # the run has not created its table yet
        return 0


def start_eval(server: FakeOpenAI, data: Path, cache: Path, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ftlens", "eval", "--model", "tuned", "--data", str(data),
         "--base-url", server.base_url, "--cache", str(cache), "--out", str(out),
         "--concurrency", "4", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        preexec_fn=_ctrl_c_as_in_a_terminal)


def _ctrl_c_as_in_a_terminal() -> None:
    """The child gets SIGINT's default action, as a command typed in a terminal does: when
    the tests themselves run in the background of a script, they inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(cache: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not cache.exists() or cached(cache) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_killed_run_resumes_from_the_cache(tmp_path: Path, how: str) -> None:
    data = write_data(tmp_path / "big.jsonl", 300)
    cache, out = tmp_path / "c.sqlite", tmp_path / "p.jsonl"
    with FakeOpenAI(latency=0.02) as server:
        proc = start_eval(server, data, cache, out)
        wait_for(cache, 60, proc)
        proc.send_signal(getattr(signal, how))
        _, err = proc.communicate(timeout=60)
        if how == "SIGINT":  # Ctrl-C: says how to resume, no traceback
            assert proc.returncode == 130
            assert "rerun the same command to resume" in err and "Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL
        time.sleep(0.3)  # let the server finish answers already in flight to the dead client
        kept = cached(cache)
        answered = sum(server.ok.values())
        # every answer received was kept: only those in flight (4 workers) or, for SIGKILL,
        # not yet committed by the background writer can be missing
        assert 60 <= kept <= answered and answered - kept <= 8
        ok_before = dict(server.ok)
        resumed = invoke("--model", "tuned", "--data", str(data), "--base-url",
                         server.base_url, "--cache", str(cache), "--out", str(out), "--json")
        assert resumed.exit_code == 0, resumed.output
        requests = json.loads(resumed.stdout)["run"]["requests"]
        assert requests["cached"] == kept and requests["sent"] == 300 - kept
        assert sum(server.ok.values()) - sum(ok_before.values()) == 300 - kept
        assert max(server.ok.values()) <= 2  # twice only for answers lost in flight
    with FakeOpenAI() as clean:
        fresh = invoke("--model", "tuned", "--data", str(data), "--base-url", clean.base_url,
                       "--cache", str(tmp_path / "clean.sqlite"), "--out",
                       str(tmp_path / "clean.jsonl"))
        assert fresh.exit_code == 0, fresh.output
    assert out.read_text() == (tmp_path / "clean.jsonl").read_text()


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["eval", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    for option in ("--base-url", "--openai", "--baseline", "--concurrency", "--top-logprobs",
                   "--cache", "--out", "--require", "--json"):
        assert option in result.stdout
    assert "ftlens eval --model" in CliRunner().invoke(cli, ["--help"]).stdout


def leaky_train(test: Path, path: Path) -> Path:
    """Training data holding the first 12 test inputs: 9 as they are, 3 reworded."""
    test_rows = [json.loads(line) for line in test.read_text().splitlines()]
    train_rows = [json.loads(json.dumps(r)) for r in test_rows[:12]]
    for r in train_rows[9:]:
        r["messages"][1]["content"] += " ok"
    train_rows += [{"messages": [{"role": "user", "content": f"other text {i} about trains"},
                                 {"role": "assistant", "content": "ham"}]} for i in range(20)]
    path.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    return path


def test_rows_seen_in_training_are_left_out_and_metrics_agree(server: FakeOpenAI, data: Path,
                                                               tmp_path: Path) -> None:
    """A train file holding 12 of the 80 test inputs (9 exactly, 3 reworded): eval and metrics
    on its predictions judge the same 68 unseen rows, and show all rows beside them."""
    test_rows = [json.loads(line) for line in data.read_text().splitlines()]
    train = leaky_train(data, tmp_path / "train.jsonl")
    out_path = tmp_path / "preds.jsonl"
    ev = as_json("--model", "tuned", "--data", str(data), "--base-url", server.base_url,
                 "--out", str(out_path), "--positive", "spam", "--train", str(train))
    leak = ev["leakage"]
    assert (leak["seen_rows"], leak["unseen_rows"]) == (12, 68) and ev["metrics"]["n"] == 68
    assert [r["row"] for r in leak["rows"]] == list(range(12))
    assert [r["how"] for r in leak["rows"]] == ["exact"] * 9 + ["near"] * 3
    assert leak["metrics_all_rows"]["n"] == N
    assert "leakage_inflates_metrics" in {f["id"] for f in ev["findings"]}
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert rows[0]["messages"] == test_rows[0]["messages"][:2]  # each row carries its input
    again = cli_run.helpers("metrics")[1](str(out_path), "--positive", "spam", "--train",
                                          str(train))
    assert again["metrics"] == ev["metrics"] and again["leakage"] == leak


def test_valid_answers_choose_the_threshold(server: FakeOpenAI, data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    valid = write_data(tmp_path / "valid.jsonl", 60)
    valid.write_text(valid.read_text().replace("SMS ", "Text message "))  # other inputs
    out_path = tmp_path / "preds.jsonl"
    ev = as_json("--model", "tuned", "--data", str(data), "--base-url", server.base_url,
                 "--positive", "spam", "--valid", str(valid), "--out", str(out_path))
    t = ev["threshold"]
    assert t["tuned_on"] == "60 validation rows" and t["held_out"] and t["n_reported"] == N
    assert "threshold_tuned_on_test" not in {f["id"] for f in ev["findings"]}
    assert ev["leakage"] is None  # no test input is in the validation file
    valid_preds = tmp_path / "preds.valid.jsonl"
    assert len(valid_preds.read_text().splitlines()) == 60
    again = cli_run.helpers("metrics")[1](str(out_path), "--positive", "spam", "--tune-on",
                                          str(valid_preds))
    assert again["threshold"]["chosen"] == t["chosen"]
    assert again["metrics"] == ev["metrics"]
    code, _, err = run_main(["--model", "tuned", "--data", str(data), "--base-url",
                             server.base_url, "--valid", str(valid), "--tune-cv", "5"], capsys)
    assert code == 2 and "pick one" in err


def test_an_audit_of_the_files_marks_the_same_rows(server: FakeOpenAI, data: Path,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``--audit audit.json`` instead of ``--train``: the leaks the audit found are the rows
    left out, in eval and in metrics (matched by the lines ftlens eval wrote, or row for row
    with --data)."""
    train = leaky_train(data, tmp_path / "train.jsonl")
    audited = CliRunner().invoke(cli, ["audit", str(train), "--test", str(data), "--json"])
    audit = tmp_path / "audit.json"
    audit.write_text(audited.stdout)
    out_path = tmp_path / "preds.jsonl"
    by_train = as_json("--model", "tuned", "--data", str(data), "--base-url", server.base_url,
                       "--out", str(out_path), "--positive", "spam", "--train", str(train))
    by_audit = as_json("--model", "tuned", "--data", str(data), "--base-url", server.base_url,
                       "--out", str(out_path), "--positive", "spam", "--audit", str(audit))
    assert by_audit["leakage"] == by_train["leakage"] and by_audit["leakage"]["seen_rows"] == 12
    metrics = cli_run.helpers("metrics")
    assert metrics[1](str(out_path), "--positive", "spam", "--audit",
                      str(audit))["leakage"] == by_train["leakage"]
    plain = tmp_path / "plain.jsonl"  # no ids, no inputs: rows are the test file's lines
    plain.write_text("".join(json.dumps({"label": r["label"], "prediction": r["prediction"]})
                             + "\n" for r in map(json.loads, out_path.read_text().splitlines())))
    assert metrics[1](str(plain), "--positive", "spam", "--audit", str(audit), "--data",
                      str(data))["leakage"]["seen_rows"] == 12
    short = tmp_path / "short.jsonl"
    short.write_text("".join(plain.read_text().splitlines(keepends=True)[:50]))
    code, _, err = metrics[2]([str(short), "--audit", str(audit), "--data", str(data)],
                              capsys)
    assert code == 2 and "80 test examples but 50 predictions" in err
    code, _, err = metrics[2]([str(plain), "--audit", str(audit)], capsys)
    assert code == 2 and "do not say which test lines they are" in err  # ids could be anything
    code, _, err = metrics[2]([str(out_path), "--audit", str(data)], capsys)
    assert code == 2 and "not valid JSON" in err and "ftlens audit ... --json" in err
    code, _, err = run_main(["--model", "tuned", "--data", str(data), "--base-url",
                             server.base_url, "--audit", str(audit), "--train", str(train)],
                            capsys)
    assert code == 2 and "pick one" in err
