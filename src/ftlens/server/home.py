"""One service owns a home at a time, and starts it clean.

The owner holds an exclusive ``flock`` on ``HOME/service.lock`` for as long as it runs; the
kernel drops the lock when the process dies, however it dies, so a killed service never leaves
a stale lock behind. A second service on the same home refuses to start before it touches any
job. At start, the owner sweeps what a killed process left half-written in the files folder:
temporary uploads and files that were never registered."""

from __future__ import annotations

import os
from pathlib import Path

from ftlens.errors import ConfigError

LOCK_NAME = "service.lock"
PARTIAL_SUFFIX = ".part"


class HomeLock:
    """The exclusive lock on a service home (see the module docstring)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"another ftlens service (pid {holder}) is already using the home {self.home}",
                hint="stop that service first, or give this one a home of its own "
                     "(--home DIR or $FTLENS_HOME)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def partial_path(path: Path) -> Path:
    """Where a file is written before it is renamed into place (never a valid id)."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


def sweep_files(files_dir: Path, registered: set[str]) -> list[str]:
    """Remove what is in ``files_dir`` but not registered: partial uploads and files whose
    registration a kill cut off. Returns the names removed. Only the home's owner may call
    this, before its workers start."""
    removed = []
    for entry in files_dir.iterdir():
        if entry.name not in registered and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return sorted(removed)
