"""``ftlens audit`` end to end on the bundled example files (examples/broken/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ftlens import __version__
from ftlens.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "examples" / "broken"
SPAM = ROOT / "examples" / "spam"
SPAM_ARGS = [str(SPAM / "train.jsonl"), "--valid", str(SPAM / "valid.jsonl"),
             "--test", str(SPAM / "test.jsonl")]
BROKEN_ARGS = [str(BROKEN / "train.jsonl"), "--test", str(BROKEN / "test.jsonl")]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


def audit_json(*args: str) -> dict[str, Any]:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftlens", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def by_id(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        out.setdefault(f["id"], []).append(f)
    return out


def one(report: dict[str, Any], fid: str) -> dict[str, Any]:
    found = by_id(report).get(fid, [])
    assert len(found) == 1, (fid, [f["id"] for f in report["findings"]])
    return found[0]


def places(group: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["split"], p["line"]) for p in group["places"]}


@pytest.fixture(scope="module")
def broken_pair() -> dict[str, Any]:
    return audit_json(*BROKEN_ARGS)


@pytest.fixture(scope="module")
def spam() -> dict[str, Any]:
    return audit_json(*SPAM_ARGS)


# --- examples/broken --------------------------------------------------------------------------

PLANTED_FORMAT = {4: "invalid_json", 5: "not_an_object", 6: "missing_messages", 7: "missing_role",
                  8: "unknown_key", 9: "unknown_role", 10: "content_not_string",
                  11: "no_assistant", 12: "invalid_weight", 13: "messages_not_list"}


def test_format_errors_each_planted_line() -> None:
    report = audit_json(str(BROKEN / "format_errors.jsonl"))
    finding = one(report, "format_error")
    assert finding["severity"] == "fail"
    got = {i["line"]: i["code"] for i in finding["details"]["issues"]}
    assert got == PLANTED_FORMAT
    assert all(i["message"] and i["hint"] for i in finding["details"]["issues"])
    split = report["splits"]["train"]
    assert split["lines"] == 14 and split["examples"] == 4  # lines 1-3 and 14
    assert split["format_errors"] == {code: 1 for code in PLANTED_FORMAT.values()}
    assert report["verdict"] == "not_ready"


def test_train_test_leakage(broken_pair: dict[str, Any]) -> None:
    leak = one(broken_pair, "leakage")
    assert leak["severity"] == "fail"
    assert [places(g) for g in leak["details"]["groups"]] == [{("train", 9), ("test", 3)}]
    assert broken_pair["verdict"] == "not_ready"


def test_train_duplicates(broken_pair: dict[str, Any]) -> None:
    dup = one(broken_pair, "duplicates")
    assert dup["severity"] == "warn" and dup["details"]["split"] == "train"
    assert [places(g) for g in dup["details"]["groups"]] == [{("train", 5), ("train", 17)}]
    assert dup["details"]["groups"][0]["labels"] == ["ham", "ham"]


def test_near_duplicate_leakage(broken_pair: dict[str, Any]) -> None:
    near = one(broken_pair, "near_duplicate_leakage")
    assert near["details"]["pairs"] == [
        {"a": {"split": "train", "line": 12}, "b": {"split": "test", "line": 8},
         "similarity": 0.863}]
    assert broken_pair["near_duplicates"]["pairs"] == near["details"]["pairs"]
    # the exact leak (train 9 = test 3) is not reported again as a near-duplicate
    assert 0.8 <= near["details"]["pairs"][0]["similarity"] < 0.95


def test_conflicting_labels(broken_pair: dict[str, Any]) -> None:
    conflict = one(broken_pair, "conflicting_labels")
    (group,) = conflict["details"]["groups"]
    assert places(group) == {("train", 20), ("train", 22)}
    assert sorted(group["labels"]) == ["ham", "spam"]
    # a conflict is not also counted as a duplicate
    dup_places = [places(g) for g in one(broken_pair, "duplicates")["details"]["groups"]]
    assert {("train", 20), ("train", 22)} not in dup_places


def test_rare_and_unseen_labels(broken_pair: dict[str, Any]) -> None:
    rare = one(broken_pair, "rare_class")
    assert rare["details"]["classes"]["phishing"] == 2
    unseen = one(broken_pair, "unseen_label")
    assert unseen["details"] == {"split": "test", "labels": ["scam"]}
    labels = broken_pair["labels"]
    assert labels["counts"] == {"train": {"ham": 15, "spam": 7, "phishing": 2},
                                "test": {"ham": 7, "spam": 4, "scam": 1}}
    assert labels["majority"] == "ham"


def test_broken_pair_has_nothing_unplanted(broken_pair: dict[str, Any]) -> None:
    ids = set(by_id(broken_pair))
    assert "format_error" not in ids and "non_utf8" not in ids and "bom" not in ids
    assert {"no_validation", "cost_estimate"} <= ids
    assert broken_pair["splits"]["train"]["examples"] == 24
    assert broken_pair["splits"]["test"]["examples"] == 12


def test_bom_file() -> None:
    report = audit_json(str(BROKEN / "bom.jsonl"))
    assert one(report, "bom")["severity"] == "fail"
    split = report["splits"]["train"]
    assert split["bom"] is True
    assert split["examples"] == 12 and split["format_errors"] == {}  # line 1 still parsed


def test_latin1_file() -> None:
    report = audit_json(str(BROKEN / "latin1.jsonl"))
    finding = one(report, "non_utf8")
    assert finding["severity"] == "fail"
    assert [(i["line"], i["code"]) for i in finding["details"]["issues"]] == [(7, "non_utf8")]
    assert "format_error" not in by_id(report)
    assert report["splits"]["train"]["examples"] == 11


def test_empty_file() -> None:
    report = audit_json(str(BROKEN / "empty.jsonl"))
    assert one(report, "empty_file")["severity"] == "fail"
    assert report["splits"]["train"]["lines"] == 0
    assert report["verdict"] == "not_ready"


def test_too_few_file() -> None:
    report = audit_json(str(BROKEN / "too_few.jsonl"))
    finding = one(report, "too_few_examples")
    assert finding["severity"] == "fail" and finding["details"]["count"] == 5
    assert report["verdict"] == "not_ready"


def test_no_system_file_is_a_warning() -> None:
    report = audit_json(str(BROKEN / "no_system.jsonl"))
    finding = one(report, "no_system_message")
    assert finding["severity"] == "warn"
    assert finding["details"]["lines"] == list(range(1, 13))
    assert not [f for f in report["findings"] if f["severity"] == "fail"]
    assert report["verdict"] == "ready"


# --- examples/spam ----------------------------------------------------------------------------

def test_spam_is_ready(spam: dict[str, Any]) -> None:
    assert spam["verdict"] == "ready"
    assert [f["id"] for f in spam["findings"] if f["severity"] == "fail"] == []
    ids = set(by_id(spam))
    assert ids.isdisjoint({"leakage", "duplicates", "near_duplicate_leakage",
                           "conflicting_labels", "format_error", "no_validation"})
    assert one(spam, "class_imbalance")["severity"] == "warn"
    assert spam["near_duplicates"]["pairs"] == []
    assert {s: v["examples"] for s, v in spam["splits"].items()} == {
        "train": 260, "valid": 60, "test": 100}


def test_json_shape(spam: dict[str, Any]) -> None:
    assert {"verdict", "findings", "splits", "cost", "labels"} <= set(spam)
    assert set(spam["splits"]) == {"train", "valid", "test"}
    assert spam["cost"]["estimate"] is True and spam["cost"]["epochs"] == 3
    assert spam["cost"]["billed_tokens"] == spam["splits"]["train"]["tokens"][
        "billed_per_epoch"] * 3
    assert spam["labels"]["labels"] == ["ham", "spam"]
    for f in spam["findings"]:
        assert set(f) == {"id", "severity", "title", "evidence", "advice", "inconclusive",
                          "details"}
        assert f["severity"] in {"fail", "warn", "info"}


def test_text_report_names_findings_and_verdict() -> None:
    result = invoke(*BROKEN_ARGS)
    assert result.exit_code == 0
    out = result.stdout
    for fid in ("leakage", "duplicates", "near_duplicate_leakage", "conflicting_labels"):
        assert f"({fid})" in out
    assert "NOT READY" in out
    assert not out.lstrip().startswith("{")


# --- gates and exit codes ---------------------------------------------------------------------

@pytest.mark.parametrize(("args", "fail_on", "code"), [
    (BROKEN_ARGS, "error", 1),
    (SPAM_ARGS, "error", 0),
    (SPAM_ARGS, "warn", 1),
])
def test_fail_on_with_click_runner(args: list[str], fail_on: str, code: int) -> None:
    result = invoke(*args, "--fail-on", fail_on, "--json")
    assert result.exit_code == code
    assert json.loads(result.stdout)["verdict"] in {"ready", "not_ready"}


@pytest.mark.parametrize(("args", "fail_on", "code"), [
    (BROKEN_ARGS, "error", 1),
    (SPAM_ARGS, "error", 0),
    (SPAM_ARGS, "warn", 1),
])
def test_main_entry_point_gives_the_gate_exit_code(args: list[str], fail_on: str, code: int,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # the console-script entry point: it may exit, or return the code for sys.exit()
    try:
        got = main(["audit", *args, "--fail-on", fail_on, "--json"]) or 0
    except SystemExit as exc:
        got = exc.code or 0
    assert got == code
    assert json.loads(capsys.readouterr().out)["verdict"]


@pytest.mark.parametrize(("args", "fail_on", "code"), [
    (BROKEN_ARGS, "error", 1),
    (SPAM_ARGS, "error", 0),
    (SPAM_ARGS, "warn", 1),
])
def test_fail_on_with_python_dash_m(args: list[str], fail_on: str, code: int) -> None:
    proc = run_module("audit", *args, "--fail-on", fail_on, "--json")
    assert json.loads(proc.stdout)["verdict"]
    assert proc.returncode == code, proc.stderr


def test_missing_file_is_one_clear_error() -> None:
    proc = run_module("audit", "no/such/train.jsonl")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    error_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1
    assert "no/such/train.jsonl" in error_lines[0]
    assert proc.stderr.startswith("error:")


def test_missing_valid_file_names_it() -> None:
    proc = run_module("audit", str(SPAM / "train.jsonl"), "--valid", "missing-valid.jsonl")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "missing-valid.jsonl" in proc.stderr.splitlines()[0]


def test_directory_is_a_usage_error() -> None:
    proc = run_module("audit", str(BROKEN))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "directory" in proc.stderr


def test_debug_shows_traceback_and_keeps_the_exit_code() -> None:
    plain = run_module("audit", "no/such/train.jsonl")
    proc = run_module("--debug", "audit", "no/such/train.jsonl")
    assert plain.returncode == proc.returncode == 2
    assert "Traceback" in proc.stderr and "DataError" in proc.stderr
    # the one clear message still ends the output
    assert proc.stderr.rstrip().splitlines()[-1] == plain.stderr.rstrip().splitlines()[-1]
    assert plain.stderr.startswith("error:") and "no/such/train.jsonl" in plain.stderr


def test_identical_problems_are_one_row_and_evidence_hangs_under_its_title(
        tmp_path: Path) -> None:
    good = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": "a"}]} for i in range(12)]
    lines = [json.dumps(r) for r in good] + [json.dumps({"prompt": f"p{i}", "completion": "c"})
                                             for i in range(15)] + ["{bad"]
    path = tmp_path / "legacy.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wide = CliRunner().invoke(cli, ["audit", str(path)], env={"COLUMNS": "250"}).output
    assert wide.count('no "messages" key') == 2  # one table row and the finding's evidence
    assert "train:13–27" in wide and "15 lines: the object has no" in wide
    assert "train:28" in wide
    # every wrapped line of a finding's evidence and advice starts under the title's text
    out = CliRunner().invoke(cli, ["audit", str(path)], env={"COLUMNS": "80"}).output
    block = out[out.index("✗ fail"):out.index("verdict:")]
    assert len(block.splitlines()) > 12  # it did wrap
    for line in block.splitlines():
        if line and not line.startswith(("✗", "!", "i ")):
            assert line.startswith(" " * 9) and line[9] != " ", repr(line)
            assert line == line.rstrip(), "no padding to the terminal's width"


def test_bad_option_value_is_exit_2_without_traceback() -> None:
    proc = run_module("audit", str(SPAM / "train.jsonl"), "--epochs", "0")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and "--epochs" in proc.stderr


# --- --write-clean ----------------------------------------------------------------------------

def test_write_clean_drops_leak_near_dup_and_later_duplicate(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    result = invoke(*BROKEN_ARGS, "--write-clean", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    train_lines = (BROKEN / "train.jsonl").read_bytes().splitlines(keepends=True)
    expected = b"".join(ln for n, ln in enumerate(train_lines, 1) if n not in {9, 12, 17})
    assert (out / "train.jsonl").read_bytes() == expected
    assert (out / "test.jsonl").read_bytes() == (BROKEN / "test.jsonl").read_bytes()
    kept = (out / "train.jsonl").read_bytes()
    assert train_lines[19] in kept and train_lines[21] in kept  # conflicting 20/22 both kept
    assert train_lines[4] in kept  # the first copy of the duplicate stays
    assert report["clean"]["train"] == {"path": str(out / "train.jsonl"), "kept": 21,
                                        "removed": 3}
    assert report["clean"]["test"]["removed"] == 0
    assert report["splits"]["train"]["removable_lines"] == [9, 12, 17]


def test_write_clean_result_audits_clean_of_leaks(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    assert invoke(*BROKEN_ARGS, "--write-clean", str(out)).exit_code == 0
    again = audit_json(str(out / "train.jsonl"), "--test", str(out / "test.jsonl"))
    ids = set(by_id(again))
    assert ids.isdisjoint({"leakage", "duplicates", "near_duplicate_leakage"})
    assert "conflicting_labels" in ids  # left for the user to decide


# --- help and version -------------------------------------------------------------------------

def test_help_shows_examples() -> None:
    proc = run_module("--help")
    assert proc.returncode == 0
    assert "Examples:" in proc.stdout
    assert "ftlens audit" in proc.stdout
    assert "audit" in proc.stdout


def test_audit_help_shows_examples() -> None:
    result = CliRunner().invoke(cli, ["audit", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert "ftlens audit train.jsonl --valid valid.jsonl --test test.jsonl" in result.stdout
    for option in ("--valid", "--test", "--json", "--fail-on", "--write-clean"):
        assert option in result.stdout
    short = CliRunner().invoke(cli, ["audit", "-h"])
    assert short.exit_code == 0 and "Examples:" in short.stdout


def test_version() -> None:
    proc = run_module("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout
    assert "ftlens" in proc.stdout


# --- leakage counted per pair of splits, readable on large files ---------------------------

def _rows(texts: list[str], label: str = "ham") -> str:
    return "".join(json.dumps({"messages": [
        {"role": "user", "content": t}, {"role": "assistant", "content": label}]}) + "\n"
        for t in texts)


def _unique(prefix: str, n: int) -> list[str]:
    """Inputs that share no 5-byte shingle run long enough to be near-duplicates."""
    return [f"{prefix} {i} " + " ".join(f"w{(i * 7919 + k * 104729) % 99991}" for k in range(8))
            for i in range(n)]


def test_leakage_counts_every_pair_of_splits(tmp_path: Path) -> None:
    """Planted: 9 test inputs also in train, 4 valid inputs in train, 2 test inputs in valid
    (one of which is in train too)."""
    train, valid, test = _unique("tr", 60), _unique("va", 40), _unique("te", 80)
    test[:9] = train[:9]
    valid[:4] = train[10:14]
    test[20:22] = [valid[30], train[0]]  # train[0] is in test already (row 1)
    valid[5] = train[0]
    files = {}
    for name, texts in (("train", train), ("valid", valid), ("test", test)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text(_rows(texts))
    report = audit_json(str(files["train"]), "--valid", str(files["valid"]), "--test",
                        str(files["test"]))
    leak = one(report, "leakage")
    pairs = {(p["other"], p["held_out"]): p for p in leak["details"]["pairs"]}
    assert {k: (p["rows"], p["of"]) for k, p in pairs.items()} == {
        ("train", "valid"): (5, 40), ("train", "test"): (10, 80), ("valid", "test"): (3, 80)}
    assert pairs[("train", "test")]["lines"] == [*range(1, 10), 22]
    assert pairs[("valid", "test")]["lines"] == [1, 21, 22]  # row 1 = train[0] = valid[5]
    assert pairs[("train", "valid")]["share"] == 0.125
    assert leak["title"] == "10 of 80 test inputs (12.5%) also in train"
    assert "5 of 40 valid inputs (12.5%) also in train" in leak["evidence"]
    assert "3 of 80 test inputs (3.8%) also in valid" in leak["evidence"]


def test_duplicate_and_leakage_evidence_stays_short_on_large_files(tmp_path: Path) -> None:
    train = _unique("tr", 3000)
    train[1500:2700] = train[:1200]  # 1,200 duplicate groups
    test = train[:400] + _unique("te", 100)  # 400 leaked test inputs
    (tmp_path / "train.jsonl").write_text(_rows(train))
    (tmp_path / "test.jsonl").write_text(_rows(test))
    report = audit_json(str(tmp_path / "train.jsonl"), "--test", str(tmp_path / "test.jsonl"))
    dup, leak = one(report, "duplicates"), one(report, "leakage")
    assert dup["title"] == "train: 1,200 duplicate examples in 1,200 groups"
    assert dup["evidence"].endswith("… and 1,197 more groups")
    assert dup["evidence"].startswith('same input (ignoring case, punctuation, spacing): "tr 0 w')
    assert leak["title"] == "400 of 500 test inputs (80.0%) also in train"
    assert "… and 397 more groups" in leak["evidence"]
    for finding in (dup, leak):
        assert len(finding["evidence"]) < 600, finding["evidence"]
    assert leak["details"]["pairs"][0]["lines"] == list(range(1, 401))  # all of it in --json
