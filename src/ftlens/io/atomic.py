"""Files written whole or not at all: a reader (or a process killed mid-write) never sees half
a file."""

from __future__ import annotations

import os
from pathlib import Path

from ftlens.errors import DataError


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, rename it over
    ``path``."""
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
        raise DataError(f"cannot write the file ({exc.strerror or exc})", path=path,
                        hint="write the run to a folder you can write to (--out)") from exc
    return path
