"""The service's state: SQLite (WAL) for files, jobs, events and checkpoints, and a files
directory, both under the service home. Every process and thread opens its own connection.

Ids are generated here and checked against a strict pattern before any lookup, so a path can
never be built from user input.

A job's status changes only through the transitions below, each one conditional UPDATE, so a
job's row never contradicts itself (:func:`job_problems` states the rules). The service that
owns the home writes a fresh owner token at start; a worker claims and finishes jobs only
under its own service's token and only a job it is running, so a worker left over from a
killed service can neither take new jobs nor overwrite what the new service decided."""

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

from ftlens.server.home import partial_path, sweep_files

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, created_at INTEGER, filename TEXT, purpose TEXT, bytes INTEGER,
    examples INTEGER, expires_at INTEGER);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, created_at INTEGER, model TEXT, training_file TEXT,
    validation_file TEXT, hyperparameters TEXT, suffix TEXT, seed INTEGER, metadata TEXT,
    status TEXT, error TEXT, finished_at INTEGER, fine_tuned_model TEXT, trained_tokens INTEGER,
    result_files TEXT, estimated_finish INTEGER, control TEXT, resume_from TEXT,
    worker INTEGER, method TEXT, task_metrics TEXT, resolved_hyperparameters TEXT,
    integrations TEXT);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, job_id TEXT, created_at INTEGER,
    level TEXT, message TEXT, type TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, job_id TEXT, created_at INTEGER,
    step INTEGER, name TEXT UNIQUE, metrics TEXT, path TEXT);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, created_at INTEGER, input_file_id TEXT, endpoint TEXT,
    completion_window TEXT, metadata TEXT, model TEXT, status TEXT, errors TEXT,
    output_file_id TEXT, error_file_id TEXT, request_counts TEXT, in_progress_at INTEGER,
    finalizing_at INTEGER, completed_at INTEGER, failed_at INTEGER, cancelling_at INTEGER,
    cancelled_at INTEGER, expires_at INTEGER);
CREATE INDEX IF NOT EXISTS batches_status ON batches (status, created_at);
CREATE TABLE IF NOT EXISTS batch_lines (
    batch_id TEXT, line INTEGER, ok INTEGER, body BLOB, PRIMARY KEY (batch_id, line));
"""

PATTERNS = {"file": re.compile(r"file-[0-9a-f]{24}"), "ftjob": re.compile(r"ftjob-[0-9a-f]{24}"),
            "ftevent": re.compile(r"ftevent-[0-9a-f]{24}"),
            "ftckpt": re.compile(r"ftckpt-[0-9a-f]{24}"),
            "batch": re.compile(r"batch_[0-9a-f]{24}"),
            "batch_req": re.compile(r"batch_req_[0-9a-f]{24}")}
JSON_COLUMNS = ("hyperparameters", "resolved_hyperparameters", "integrations", "task_metrics",
                "metadata", "error", "result_files", "data", "metrics", "errors",
                "request_counts")
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.$~])/(?:[^\s'\"/:]+/)+([^\s'\"/:]*)")
STATUSES = ("validating_files", "queued", "running", "paused", "succeeded", "failed",
            "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
BATCH_STATUSES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired",
                  "cancelling", "cancelled")
IDLE = ("validating_files", "queued", "paused")  # cancelled at once, no worker involved
# What a finished job's row holds besides its status: the rest is reset.
_FINISH = {"control": None, "estimated_finish": None}


def new_id(kind: str) -> str:
    """``file-…``, ``ftjob-…`` and so on; batch ids are ``batch_…`` as OpenAI writes them."""
    return f"{kind}{'_' if kind.startswith('batch') else '-'}{secrets.token_hex(12)}"


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
            if "expires_at" not in {r[1] for r in db.execute("PRAGMA table_info(files)")}:
                db.execute("ALTER TABLE files ADD COLUMN expires_at INTEGER")  # none expire
            columns = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
            if "method" not in columns:  # a home made before DPO jobs: its jobs are supervised
                db.execute("ALTER TABLE jobs ADD COLUMN method TEXT")
            for column in ("task_metrics", "resolved_hyperparameters", "integrations"):
                if column not in columns:  # a home made before these: none were set
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")

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

    def write_file(self, file_id: str, data: bytes) -> None:
        """A file's bytes, written under a temporary name and renamed into place."""
        path = self.file_path(file_id)
        partial = partial_path(path)
        partial.write_bytes(data)
        partial.replace(path)

    def sweep_files(self) -> list[str]:
        """Remove unregistered leftovers from the files folder, and expired files (the
        home's owner, at start)."""
        self.expire_files()
        with self.connect() as db:
            ids = {r[0] for r in db.execute("SELECT id FROM files")}
        return sweep_files(self.files_dir, ids)

    def public_text(self, text: str) -> str:
        """``text`` as a client may see it: no absolute path of this machine (a path inside
        the home becomes relative to ``$FTLENS_HOME``, any other its last part)."""
        for home in {str(self.home.resolve()), str(self.home)}:
            text = text.replace(home + "/", "$FTLENS_HOME/").replace(home, "$FTLENS_HOME")
        return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)

    def add_file(self, file_id: str, filename: str, purpose: str, size: int,
                 examples: int | None = None, expires_after: int | None = None
                 ) -> dict[str, Any]:
        """``examples``: how many valid chat examples a fine-tune file holds;
        ``expires_after``: seconds from now until the file goes (None: it stays until
        deleted)."""
        created = now()
        row = {"id": file_id, "created_at": created, "filename": filename, "purpose": purpose,
               "bytes": size, "examples": examples,
               "expires_at": None if expires_after is None else created + expires_after}
        with self.connect() as db:
            db.execute("INSERT INTO files (id, created_at, filename, purpose, bytes, examples, "
                       "expires_at) VALUES (:id, :created_at, :filename, :purpose, :bytes, "
                       ":examples, :expires_at)", row)
        return row

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        """A file's row (None when there is none, or it expired)."""
        if not valid_id("file", file_id):
            return None
        self.expire_files()
        return self._one("SELECT * FROM files WHERE id = ?", (file_id,))

    def list_files(self, purpose: str | None = None) -> list[dict[str, Any]]:
        self.expire_files()
        where, args = (" WHERE purpose = ?", (purpose,)) if purpose else ("", ())
        return self._all(f"SELECT * FROM files{where} ORDER BY created_at DESC, rowid DESC",
                         args)

    def expire_files(self) -> list[str]:
        """Remove the files whose ``expires_at`` has passed, rows and bytes; their ids. Run
        on every file lookup and listing, so an expired file is never shown."""
        gone = [r["id"] for r in self._all(
            "SELECT id FROM files WHERE expires_at IS NOT NULL AND expires_at <= ?", (now(),))]
        if gone:  # a lookup takes no write lock unless a file is due
            with self.connect() as db:
                db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in gone])
        for file_id in gone:
            self.file_path(file_id).unlink(missing_ok=True)
        return gone

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
        """Progress of a job (estimated finish, trained tokens): never its status."""
        assert "status" not in values and "error" not in values, "use a transition"
        self._update(job_id, values, "1")

    # job transitions ---------------------------------------------------------------------
    def take_ownership(self) -> str:
        """A new owner token for the service starting on this home (it holds the home's lock)."""
        token = secrets.token_hex(8)
        with self.connect() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('owner', ?)", (token,))
        return token

    def queue_job(self, job_id: str) -> bool:
        """validating_files -> queued, or paused -> queued (resume)."""
        return self._update(job_id, {"status": "queued"},
                            "status IN ('validating_files', 'paused')")

    def requeue_interrupted(self, job_id: str, resume_from: str, step: int) -> bool:
        """running -> queued, to resume from ``resume_from`` (a resume point at ``step``):
        the events and checkpoints of later steps, which the job does again, are dropped."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute("UPDATE jobs SET status = 'queued', resume_from = ?, worker = NULL,"
                             " control = NULL, estimated_finish = NULL WHERE id = ? AND "
                             "status = 'running'", (resume_from, job_id))
            if cur.rowcount:
                first = db.execute(
                    "SELECT MIN(seq) FROM events WHERE job_id = ? AND type = 'metrics' AND "
                    "json_extract(data, '$.step') > ?", (job_id, step)).fetchone()[0]
                if first is not None:
                    db.execute("DELETE FROM events WHERE job_id = ? AND seq >= ?",
                               (job_id, first))
                db.execute("DELETE FROM checkpoints WHERE job_id = ? AND step > ?",
                           (job_id, step))
            db.execute("COMMIT")
        return bool(cur.rowcount)

    def cancel_idle_job(self, job_id: str) -> bool:
        """A job no worker runs (validating, queued, paused) -> cancelled."""
        marks = ", ".join(f"'{s}'" for s in IDLE)
        return self._update(job_id, {"status": "cancelled", "finished_at": now(), **_FINISH},
                            f"status IN ({marks})")

    def set_control(self, job_id: str, control: str, *, when: tuple[str, ...]) -> bool:
        """Ask a job to stop (``cancel``/``pause``) if its status is one of ``when``."""
        marks = ", ".join(f"'{s}'" for s in when if s in STATUSES)
        return self._update(job_id, {"control": control}, f"status IN ({marks})")

    def claim_next_job(self, worker: int, owner: str) -> dict[str, Any] | None:
        """The oldest queued job, marked running by ``worker`` (a pid) in one transaction;
        nothing when ``owner`` is no longer the home's owner token."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT id FROM jobs WHERE status = 'queued' AND "
                             "(SELECT value FROM meta WHERE key = 'owner') = ? "
                             "ORDER BY created_at, rowid LIMIT 1", (owner,)).fetchone()
            if row is not None:
                db.execute("UPDATE jobs SET status = 'running', worker = ?, control = NULL "
                           "WHERE id = ?", (worker, row["id"]))
            db.execute("COMMIT")
        return None if row is None else self.get_job(row["id"])

    def finish_job(self, job_id: str, status: str, *, worker: int | None = None,
                   owner: str | None = None, error: dict[str, Any] | None = None,
                   **values: Any) -> bool:
        """running -> succeeded, failed, cancelled or paused. With ``worker`` and ``owner``
        (the worker itself), only while the job is still that worker's under that owner;
        without them (the service, after a worker died), whoever ran it. False if the job
        was not in that state any more (nothing is written then)."""
        assert status in (*TERMINAL, "paused")
        assert (error is not None) == (status == "failed")
        assert (status == "succeeded") == bool(values.get("fine_tuned_model"))
        row = {**values, **_FINISH, "status": status, "error": error}
        if status in TERMINAL:
            row["finished_at"] = now()
        where, args = "status = 'running'", {}
        if worker is not None:
            where += (" AND worker = :_worker AND "
                      "(SELECT value FROM meta WHERE key = 'owner') = :_owner")
            args = {"_worker": worker, "_owner": owner}
        return self._update(job_id, row, where, args)

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

    def all_checkpoints(self) -> list[dict[str, Any]]:
        """Every job's checkpoints whose folder still exists, oldest first."""
        rows = self._all("SELECT * FROM checkpoints ORDER BY created_at, seq")
        return [r for r in rows if Path(r["path"]).exists()]

    def job_of_model(self, name: str) -> dict[str, Any] | None:
        """The succeeded job whose fine-tuned model is ``name``."""
        row = self._one("SELECT id FROM jobs WHERE fine_tuned_model = ? AND "
                        "status = 'succeeded'", (name,))
        return None if row is None else self.get_job(row["id"])

    def find_model(self, name: str) -> Path | None:
        """The folder of a fine-tuned model or checkpoint name, if it exists (a deleted
        model's does not)."""
        row = self._one("SELECT id FROM jobs WHERE fine_tuned_model = ? AND "
                        "status = 'succeeded'", (name,))
        if row is not None:
            folder = self.jobs_dir / row["id"] / "model"
            return folder if folder.exists() else None
        row = self._one("SELECT path FROM checkpoints WHERE name = ?", (name,))
        if row is not None and Path(row["path"]).exists():
            return Path(row["path"])
        return None

    # batches -----------------------------------------------------------------------------
    def add_batch(self, batch: dict[str, Any]) -> None:
        row = {key: _dump(key, value) for key, value in batch.items()}
        with self.connect() as db:
            db.execute(f"INSERT INTO batches ({', '.join(row)}) VALUES "
                       f"({', '.join(':' + c for c in row)})", row)

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        if not valid_id("batch", batch_id):
            return None
        return self._one("SELECT * FROM batches WHERE id = ?", (batch_id,))

    def list_batches(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM batches ORDER BY created_at DESC, rowid DESC")

    def open_batches(self) -> list[dict[str, Any]]:
        """Batches with work left (oldest first): to validate, to run, to finish, to cancel."""
        return self._all("SELECT * FROM batches WHERE status IN ('validating', 'in_progress', "
                         "'finalizing', 'cancelling') ORDER BY created_at, rowid")

    def update_batch(self, batch_id: str, *, when: tuple[str, ...], **values: Any) -> bool:
        """Change a batch whose status is one of ``when`` (False, and nothing written, if it
        is not: a cancel that came first wins)."""
        marks = ", ".join(f"'{s}'" for s in when if s in BATCH_STATUSES)
        return self._update(batch_id, values, f"status IN ({marks})", table="batches")

    def add_batch_lines(self, batch_id: str, lines: list[tuple[int, bool, bytes]]) -> None:
        """The result lines of some requests (input line, ok, output or error line), and the
        batch's request counts with them, in one transaction."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO batch_lines VALUES (?, ?, ?, ?)",
                           [(batch_id, line, int(ok), body) for line, ok, body in lines])
            done, failed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(1 - ok), 0) FROM batch_lines WHERE batch_id = ?",
                (batch_id,)).fetchone()
            counts = json.loads(db.execute("SELECT request_counts FROM batches WHERE id = ?",
                                           (batch_id,)).fetchone()[0])
            counts.update(completed=done - failed, failed=failed)
            db.execute("UPDATE batches SET request_counts = ? WHERE id = ?",
                       (json.dumps(counts), batch_id))
            db.execute("COMMIT")

    def batch_lines_done(self, batch_id: str) -> set[int]:
        with self.connect() as db:
            return {r[0] for r in db.execute("SELECT line FROM batch_lines WHERE batch_id = ?",
                                             (batch_id,))}

    def batch_lines(self, batch_id: str, ok: bool) -> list[bytes]:
        """The output (``ok``) or error lines of a batch, in input order."""
        with self.connect() as db:
            return [bytes(r[0]) for r in db.execute(
                "SELECT body FROM batch_lines WHERE batch_id = ? AND ok = ? ORDER BY line",
                (batch_id, int(ok)))]

    # helpers -----------------------------------------------------------------------------
    def _update(self, ident: str, values: dict[str, Any], where: str,
                args: dict[str, Any] | None = None, table: str = "jobs") -> bool:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        row = {k: _dump(k, v) for k, v in values.items()}
        with self.connect() as db:
            cur = db.execute(f"UPDATE {table} SET {sets} WHERE id = :_id AND ({where})",
                             {**row, **(args or {}), "_id": ident})
            return cur.rowcount == 1

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


def job_problems(job: dict[str, Any]) -> list[str]:
    """How a job's row contradicts itself (empty when it does not)."""
    status, problems = job["status"], []
    if status not in STATUSES:
        problems.append(f"unknown status {status!r}")
    if (job["error"] is not None) != (status == "failed"):
        problems.append(f"{status} with error {job['error']!r}")
    if (job["finished_at"] is not None) != (status in TERMINAL):
        problems.append(f"{status} with finished_at {job['finished_at']!r}")
    if (job["fine_tuned_model"] is not None) != (status == "succeeded"):
        problems.append(f"{status} with fine_tuned_model {job['fine_tuned_model']!r}")
    if job["control"] is not None and status != "running":
        problems.append(f"{status} with a pending {job['control']!r}")
    if status == "running" and job["worker"] is None:
        problems.append("running without a worker")
    return problems
