"""The service's state: SQLite (WAL) for files, jobs, events and checkpoints, and a files
directory, both under the service home. Every process and thread opens its own connection.

Ids are generated here and checked against a strict pattern before any lookup, so a path can
never be built from user input."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, created_at INTEGER, filename TEXT, purpose TEXT, bytes INTEGER,
    examples INTEGER);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created_at INTEGER, model TEXT, training_file TEXT,
    validation_file TEXT, hyperparameters TEXT, suffix TEXT, seed INTEGER, metadata TEXT,
    status TEXT, error TEXT, finished_at INTEGER, fine_tuned_model TEXT, trained_tokens INTEGER,
    result_files TEXT, estimated_finish INTEGER, control TEXT, resume_from TEXT,
    worker INTEGER);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, job_id TEXT, created_at INTEGER,
    level TEXT, message TEXT, type TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, job_id TEXT, created_at INTEGER,
    step INTEGER, name TEXT UNIQUE, metrics TEXT, path TEXT);
"""

PATTERNS = {"file": re.compile(r"file-[0-9a-f]{24}"), "ftjob": re.compile(r"ftjob-[0-9a-f]{24}"),
            "ftevent": re.compile(r"ftevent-[0-9a-f]{24}"),
            "ftckpt": re.compile(r"ftckpt-[0-9a-f]{24}")}
JSON_COLUMNS = ("hyperparameters", "metadata", "error", "result_files", "data", "metrics")


def new_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def valid_id(kind: str, value: str) -> bool:
    return PATTERNS[kind].fullmatch(value) is not None


def now() -> int:
    return int(time.time())


class Store:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.files_dir = home / "files"
        self.jobs_dir = home / "jobs"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = home / "ftlens.db"
        with self.connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        try:
            yield db
        finally:
            db.close()

    # files -------------------------------------------------------------------------------
    def file_path(self, file_id: str) -> Path:
        if not valid_id("file", file_id):
            raise KeyError(file_id)
        return self.files_dir / file_id

    def add_file(self, file_id: str, filename: str, purpose: str, size: int,
                 examples: int | None = None) -> dict[str, Any]:
        """``examples``: how many valid chat examples a fine-tune file holds."""
        row = {"id": file_id, "created_at": now(), "filename": filename, "purpose": purpose,
               "bytes": size, "examples": examples}
        with self.connect() as db:
            db.execute("INSERT INTO files VALUES (:id, :created_at, :filename, :purpose, "
                       ":bytes, :examples)", row)
        return row

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        if not valid_id("file", file_id):
            return None
        return self._one("SELECT * FROM files WHERE id = ?", (file_id,))

    def list_files(self, purpose: str | None = None) -> list[dict[str, Any]]:
        where, args = (" WHERE purpose = ?", (purpose,)) if purpose else ("", ())
        return self._all(f"SELECT * FROM files{where} ORDER BY created_at DESC, rowid DESC",
                         args)

    def delete_file(self, file_id: str) -> bool:
        if self.get_file(file_id) is None:
            return False
        with self.connect() as db:
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.file_path(file_id).unlink(missing_ok=True)
        return True

    # jobs --------------------------------------------------------------------------------
    def add_job(self, job: dict[str, Any]) -> None:
        row = {key: _dump(key, value) for key, value in job.items()}
        cols = ", ".join(row)
        with self.connect() as db:
            db.execute(f"INSERT INTO jobs ({cols}) VALUES ({', '.join(':' + c for c in row)})",
                       row)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        if not valid_id("ftjob", job_id):
            return None
        return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def list_jobs(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC")

    def update_job(self, job_id: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        row = {k: _dump(k, v) for k, v in values.items()}
        with self.connect() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = :id", {**row, "id": job_id})

    def set_control(self, job_id: str, control: str, *, when: tuple[str, ...]) -> bool:
        """Ask a job to stop (``cancel``/``pause``) if its status is one of ``when``."""
        marks = ", ".join("?" * len(when))
        with self.connect() as db:
            cur = db.execute(f"UPDATE jobs SET control = ? WHERE id = ? AND status IN ({marks})",
                             (control, job_id, *when))
            return cur.rowcount == 1

    def claim_next_job(self, worker: int) -> dict[str, Any] | None:
        """The oldest queued job, marked running by ``worker`` (a pid) in one transaction."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT id FROM jobs WHERE status = 'queued' "
                             "ORDER BY created_at, rowid LIMIT 1").fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            db.execute("UPDATE jobs SET status = 'running', worker = ? WHERE id = ?",
                       (worker, row["id"]))
            db.execute("COMMIT")
        return self.get_job(row["id"])

    # events and checkpoints --------------------------------------------------------------
    def add_event(self, job_id: str, message: str, *, type: str = "message",
                  level: str = "info", data: dict[str, Any] | None = None) -> None:
        with self.connect() as db:
            db.execute("INSERT INTO events (id, job_id, created_at, level, message, type, data)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (new_id("ftevent"), job_id, now(), level, message, type,
                        None if data is None else json.dumps(data)))

    def list_events(self, job_id: str) -> list[dict[str, Any]]:
        """Newest first, like OpenAI."""
        return self._all("SELECT * FROM events WHERE job_id = ? ORDER BY seq DESC", (job_id,))

    def add_checkpoint(self, job_id: str, step: int, name: str, metrics: dict[str, Any],
                       path: str) -> None:
        with self.connect() as db:
            db.execute("INSERT OR REPLACE INTO checkpoints (id, job_id, created_at, step, name,"
                       " metrics, path) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (new_id("ftckpt"), job_id, now(), step, name, json.dumps(metrics), path))

    def list_checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        """Newest first; only those whose folder still exists (the last few are kept)."""
        rows = self._all("SELECT * FROM checkpoints WHERE job_id = ? ORDER BY step DESC",
                         (job_id,))
        return [r for r in rows if Path(r["path"]).exists()]

    def find_model(self, name: str) -> Path | None:
        """The folder of a fine-tuned model or checkpoint name, if it exists."""
        row = self._one("SELECT id FROM jobs WHERE fine_tuned_model = ? AND "
                        "status = 'succeeded'", (name,))
        if row is not None:
            return self.jobs_dir / row["id"] / "model"
        row = self._one("SELECT path FROM checkpoints WHERE name = ?", (name,))
        if row is not None and Path(row["path"]).exists():
            return Path(row["path"])
        return None

    # helpers -----------------------------------------------------------------------------
    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.connect() as db:
            return [_load(dict(r)) for r in db.execute(sql, args).fetchall()]


def _dump(key: str, value: Any) -> Any:
    return json.dumps(value) if key in JSON_COLUMNS and value is not None else value


def _load(row: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_COLUMNS:
        if row.get(key) is not None:
            row[key] = json.loads(row[key])
    return row
