"""A SQLite cache of model responses, so that a rerun, or a run resumed after a crash or
Ctrl-C, never sends a request twice and loses no answer.

One row per request: ``key`` = sha256 of the endpoint, the model and the request as canonical
JSON (sorted keys, no whitespace); ``response`` = the response body as JSON. During a run,
:class:`CacheWriter` commits responses from a background thread as they arrive, in groups
of whatever arrived within 5 ms (WAL journal, ``synchronous=NORMAL``). A clean stop, an error
or Ctrl-C flushes everything first; a SIGKILL loses only the answers of the last few
milliseconds that had not reached a commit — a resumed run asks for those again, like the
requests that were still in flight. Nothing secret is stored:
the endpoint is kept without user/password, and the API key is never part of the key or the
row (requests carry it in a header, which is not cached). The ids of the batches that
``ftlens eval --batch`` sent and has not read back yet are kept too, so a killed client
follows them when it is run again.
"""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from ftlens.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
)
"""


def public_endpoint(base_url: str) -> str:
    """``base_url`` without user/password and without a trailing slash."""
    parts = urlsplit(base_url.strip())
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


def canonical(request: Mapping[str, Any]) -> bytes:
    return orjson.dumps(request, option=orjson.OPT_SORT_KEYS)


def request_key(endpoint: str, model: str, request: Mapping[str, Any] | bytes) -> str:
    """The cache key of a request (``request``, or its canonical JSON, includes the model; the
    model is hashed once more separately so that one model's rows never answer another's)."""
    payload = request if isinstance(request, bytes) else canonical(request)
    h = hashlib.sha256()
    for part in (public_endpoint(endpoint).encode(), model.encode(), payload):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise DataError(f"cannot open the response cache: {exc}", path=path,
                        hint="pass --cache PATH to a writable file, or delete a corrupt one "
                        "(it only holds responses that can be fetched again)") from exc
    return db


Row = tuple[str, str, str, bytes, bytes, float]
_INSERT = "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)"


class ResponseCache:
    """``get_many`` before a run, ``put`` for every response as it arrives."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = _connect(self.path)

    def get_many(self, keys: Iterable[str], *, raw: bool = False) -> dict[str, Any]:
        """Cached responses (decoded JSON, or with ``raw`` the JSON bytes) of those ``keys``
        that are present."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, body in self._db.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk):
                found[key] = bytes(body) if raw else orjson.loads(body)
        return found

    def put(self, key: str, endpoint: str, model: str, request: Mapping[str, Any] | bytes,
            response: bytes) -> None:
        """Store one response body (JSON bytes) and commit it."""
        self._db.execute(_INSERT, _row(key, endpoint, model, request, response))

    def add_batch(self, batch_id: str, endpoint: str, model: str) -> None:
        """A batch sent for ``model`` whose answers are not all in yet (``ftlens eval
        --batch``): a rerun follows it instead of sending the requests again."""
        self._db.execute("INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, 0)",
                         (batch_id, public_endpoint(endpoint), model, time.time()))

    def open_batches(self, endpoint: str, model: str) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT id FROM batches WHERE endpoint = ? AND model = ? AND done = 0 "
            "ORDER BY created", (public_endpoint(endpoint), model))]

    def close_batch(self, batch_id: str) -> None:
        """Its answers are in (or it ended without them)."""
        self._db.execute("UPDATE batches SET done = 1 WHERE id = ?", (batch_id,))

    def writer(self) -> CacheWriter:
        return CacheWriter(self.path)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row(key: str, endpoint: str, model: str, request: Mapping[str, Any] | bytes,
         response: bytes) -> Row:
    payload = request if isinstance(request, bytes) else canonical(request)
    return (key, public_endpoint(endpoint), model, payload, response, time.time())


class CacheWriter:
    """Commits rows from a background thread (its own connection), so the event loop never
    waits on the disk: the first row to arrive waits ``window`` seconds for others, then all
    go in one transaction (one wake-up and one commit per window, not per response).
    :meth:`close` flushes everything queued; a failed write is raised by the next :meth:`put`
    or by :meth:`close`."""

    def __init__(self, path: str | Path, window: float = 0.005) -> None:
        self.path = Path(path)
        self.window = window  # after a row arrives, wait this long for more to join the commit
        self._db = _connect(self.path)
        self._queue: queue.SimpleQueue[Row | threading.Event | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ftlens-cache", daemon=True)
        self._thread.start()

    def put(self, key: str, endpoint: str, model: str, request: Mapping[str, Any] | bytes,
            response: bytes) -> None:
        self._raise()
        self._queue.put(_row(key, endpoint, model, request, response))

    def flush(self) -> None:
        """Wait until every row put so far is committed."""
        done = threading.Event()
        self._queue.put(done)
        while self._thread.is_alive() and not done.wait(0.1):
            pass
        self._raise()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._db.close()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise DataError(f"cannot write to the response cache: {error}", path=self.path,
                            hint="free disk space or pass --cache PATH elsewhere") from error

    def _run(self) -> None:
        done = False
        while not done:
            rows = [self._queue.get()]
            if rows[0] is not None and self.window > 0:
                time.sleep(self.window)  # meanwhile puts are cheap: nobody waits to be woken
            while not self._queue.empty():
                rows.append(self._queue.get_nowait())
            done = rows[-1] is None
            batch = [r for r in rows if isinstance(r, tuple)]
            if batch and self._error is None:
                try:
                    with self._db:  # one transaction for everything that queued meanwhile
                        self._db.execute("BEGIN")
                        self._db.executemany(_INSERT, batch)
                except sqlite3.Error as exc:
                    self._error = exc
            for marker in rows:
                if isinstance(marker, threading.Event):  # flush(): these rows are in
                    marker.set()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
