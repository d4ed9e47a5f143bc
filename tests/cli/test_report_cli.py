"""``ftlens report`` end to end: files written, --out, --json, gates, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ftlens.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_RUN = ROOT / "tests" / "fixtures" / "report" / "run"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    return run


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["report", *args])


def test_writes_html_markdown_and_json_into_the_run_dir(run_dir: Path) -> None:
    result = invoke(str(run_dir))
    assert result.exit_code == 0, result.output
    for name in ("report.html", "report.md", "report.json"):
        assert (run_dir / name).is_file()
        assert f"wrote {run_dir / name}" in result.stdout
    assert "verdict: NOT READY\n  1. overfitting from about step 52" in result.stdout
    html = (run_dir / "report.html").read_text()
    assert html.startswith("<!doctype html>")
    # a second run reads the same inputs (its own outputs are not inputs)
    assert invoke(str(run_dir)).exit_code == 0


def test_out_puts_the_three_files_elsewhere(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "site" / "spam.html"
    assert invoke(str(run_dir), "--out", str(out)).exit_code == 0
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert json.loads(out.with_suffix(".json").read_text())["verdict"] == "not_ready"
    assert not (run_dir / "report.html").exists()


def test_json_prints_the_summary(run_dir: Path) -> None:
    result = invoke(str(run_dir), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == json.loads((run_dir / "report.json").read_text())
    assert data["verdict"] == "not_ready"


def test_fail_on_is_a_gate(run_dir: Path) -> None:
    assert invoke(str(run_dir), "--fail-on", "error").exit_code == 1
    assert (run_dir / "report.html").is_file()  # written before the gate trips


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(["report", *args]) or 0
    except SystemExit as exc:
        code = exc.code or 0
    return int(code), capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "not_html"])
def test_bad_input_is_one_clear_error(case: str, run_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    args = {"missing": [str(tmp_path / "nope")], "empty": [str(tmp_path)],
            "corrupt": [str(run_dir)], "not_html": [str(run_dir), "--out", "r.json"]}[case]
    if case == "corrupt":
        (run_dir / "curves.json").write_text('{"verdict": ')
    code, err = run_main(args, capsys)
    assert code == 2
    assert err.startswith("error:") and "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [err.splitlines()[0]]
    expected = {"missing": "no such run directory", "empty": "none of the files",
                "corrupt": f"{run_dir / 'curves.json'}:1: not valid JSON",
                "not_html": "must name an .html file"}[case]
    assert expected in err


def test_listed_in_the_help() -> None:
    out = subprocess.run([sys.executable, "-m", "ftlens", "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert "report" in out.stdout and "ftlens report runs/spam" in out.stdout
