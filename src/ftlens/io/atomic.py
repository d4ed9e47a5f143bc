"""Files written whole or not at all: a reader (or a process killed mid-write) never sees half
a file."""

from __future__ import annotations

import os
from pathlib import Path

from ftlens.errors import DataError


def write_atomic(path: Path, data: bytes, *, what: str = "the file",
                 hint: str = "write it to a folder you can write to (--out)") -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, rename it over
    ``path``. A failure is a :class:`DataError` saying it could not write ``what``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot write {what} ({exc.strerror or exc})", path=path,
                        hint=hint) from exc
    return path
