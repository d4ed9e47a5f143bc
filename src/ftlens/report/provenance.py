"""``provenance.json``: what a run was made from (data files with sha256 hashes, model,
hyperparameters, ftlens version, date), for the report's provenance section.

Example (what a demo or a training script calls once its run directory exists)::

    from ftlens.report.provenance import write_provenance
    write_provenance("runs/spam", {"train": "train.jsonl", "valid": "valid.jsonl"},
                     model="ft:smollm2-135m-instruct:ftlens:spam:ftjob-1",
                     base_model="smollm2-135m-instruct",
                     hyperparameters={"n_epochs": 2, "batch_size": 1})
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ftlens import __version__
from ftlens.errors import DataError
from ftlens.io.atomic import write_atomic
from ftlens.report import PROVENANCE_FILE

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"cannot read the file to hash it ({exc.strerror})", path=path) from exc
    return digest.hexdigest()


def build_provenance(
    data_files: Mapping[str, str | Path], *, model: str | None = None,
    base_model: str | None = None, hyperparameters: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None, now: datetime | None = None,
) -> dict[str, Any]:
    """The provenance record: ``data_files`` maps a role (train, valid, test, predictions) to
    a path; each is hashed. ``now`` defaults to the current time (UTC)."""
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return {
        "ftlens_version": __version__,
        "date": when.isoformat().replace("+00:00", "Z"),
        "model": model, "base_model": base_model,
        "hyperparameters": dict(hyperparameters or {}),
        "data": [{"name": name, "path": str(path), "sha256": sha256_file(path),
                  "bytes": Path(path).stat().st_size} for name, path in data_files.items()],
        "extra": dict(extra or {}),
    }


def write_provenance(run_dir: str | Path, data_files: Mapping[str, str | Path],
                     **kwargs: Any) -> Path:
    """Build the record (see :func:`build_provenance`) and write ``RUN_DIR/provenance.json``."""
    out = Path(run_dir) / PROVENANCE_FILE
    record = build_provenance(data_files, **kwargs)
    return write_atomic(out, orjson.dumps(record, option=orjson.OPT_INDENT_2, default=str)
                        + b"\n", what="the provenance")
