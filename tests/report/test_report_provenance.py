"""provenance.json: hashes, the record's fields, and reading it back."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ftlens import __version__
from ftlens.errors import DataError
from ftlens.report import model
from ftlens.report.provenance import build_provenance, sha256_file, write_provenance


def test_record(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_bytes(b'{"messages": []}\n' * 1000)
    when = datetime(2026, 3, 4, 5, 6, 7, 891, tzinfo=timezone(timedelta(hours=2)))
    record = build_provenance({"train": train}, model="ft:m", base_model="m",
                              hyperparameters={"n_epochs": 3}, extra={"seed": 1}, now=when)
    assert record == {
        "ftlens_version": __version__, "date": "2026-03-04T03:06:07Z", "model": "ft:m",
        "base_model": "m", "hyperparameters": {"n_epochs": 3},
        "data": [{"name": "train", "path": str(train),
                  "sha256": hashlib.sha256(train.read_bytes()).hexdigest(),
                  "bytes": train.stat().st_size}],
        "extra": {"seed": 1}}


def test_default_date_is_now_in_utc(tmp_path: Path) -> None:
    record = build_provenance({})
    date = datetime.fromisoformat(record["date"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - date) < timedelta(minutes=5)


def test_written_file_reads_back_into_the_model(tmp_path: Path) -> None:
    data = tmp_path / "valid.jsonl"
    data.write_text("x\n")
    path = write_provenance(tmp_path / "run", {"valid": data}, model="ft:x",
                            hyperparameters={"lora": {"r": 16}})
    assert path == tmp_path / "run" / "provenance.json"
    prov = model.provenance(json.loads(path.read_text()))
    assert prov.model == "ft:x" and prov.base_model is None
    assert prov.hyperparameters == {"lora": {"r": 16}}
    assert prov.data == (model.DataFile("valid", str(data), sha256_file(data), 2),)


def test_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        build_provenance({"train": tmp_path / "gone.jsonl"})
    assert "gone.jsonl" in info.value.render() and "cannot read" in info.value.render()
