"""``ftlens audit`` on preference (DPO) files: every line checked, tokens of both answers,
duplicates and leakage on the input, and files that mix the two kinds."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_audit_cli import audit_json, by_id, invoke, one
from tests.support.toy_chat import TOY, TOY_PREFERENCES, chat, preference, write_jsonl


def test_a_clean_preference_file_audits_as_pairs(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", TOY_PREFERENCES)
    report = audit_json(str(train))
    split = report["splits"]["train"]
    assert split["format"] == "preference" and split["examples"] == len(TOY)
    assert split["format_errors"] == {}
    ids = by_id(report)
    assert "format_error" not in ids and "mixed_formats" not in ids
    assert split["tokens"]["mean"] > 0
    text = invoke(str(train)).output
    assert f"{len(TOY)} pairs" in text


def test_duplicates_and_leakage_are_found_on_the_input(tmp_path: Path) -> None:
    rows = [*TOY_PREFERENCES, preference(TOY[0][0], "spam", "maybe")]  # same prompt again
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", [preference(TOY[1][0], "ham", "spam"),
                                                 preference("a prompt only here", "a", "b")])
    report = audit_json(str(train), "--test", str(test))
    dup = one(report, "duplicates")
    assert "train" in dup["title"]
    leak = one(report, "leakage")
    assert "1 of 2 test inputs" in leak["title"] + leak["evidence"]


def test_a_line_missing_its_non_preferred_output_is_a_format_error(tmp_path: Path) -> None:
    rows = [*TOY_PREFERENCES]
    rows[4] = {k: v for k, v in rows[4].items() if k != "non_preferred_output"}
    report = audit_json(str(write_jsonl(tmp_path / "train.jsonl", rows)))
    found = one(report, "format_error")
    issue = found["details"]["issues"][0]
    assert issue["line"] == 5 and issue["code"] == "missing_preference_output"


def test_chat_examples_and_preference_pairs_do_not_mix(tmp_path: Path) -> None:
    mixed = write_jsonl(tmp_path / "mixed.jsonl",
                        [*TOY_PREFERENCES, chat("hello there", "ham")])
    found = one(audit_json(str(mixed)), "mixed_formats")
    assert found["severity"] == "fail"
    assert found["details"] == {"split": "train", "preference": len(TOY), "chat": 1}
    train = write_jsonl(tmp_path / "train.jsonl", TOY_PREFERENCES)
    valid = write_jsonl(tmp_path / "valid.jsonl", [chat(t, y) for t, y in TOY])
    found = one(audit_json(str(train), "--valid", str(valid)), "mixed_formats")
    assert found["details"] == {"train": "preference", "valid": "chat"}
