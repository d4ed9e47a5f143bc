"""The one exception tree of ftlens.

Every error a user can cause is an :class:`FtlensError`. The CLI catches it and prints one clear
message: where (file and line), what was found, what was expected, and how to fix it. Tracebacks
are shown only with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path


class FtlensError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with (2: usage or unreadable input)."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The message as the CLI prints it."""
        text = self.message
        if self.hint:
            text += f"\n  how to fix: {self.hint}"
        return text


class DataError(FtlensError):
    """Input data that cannot be read or does not have the expected shape."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = None if path is None else str(path)
        self.line = line
        self.expected = expected

    def render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        text = where + self.message
        if self.expected:
            text += f"\n  expected: {self.expected}"
        if self.hint:
            text += f"\n  how to fix: {self.hint}"
        return text


class ConfigError(FtlensError):
    """Options that contradict each other or name something unknown."""


class BackendError(FtlensError):
    """A model or API endpoint answered with an error."""

    def __init__(
        self, message: str, *, status_code: int | None = None, body: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.body = body


class MissingDependencyError(FtlensError):
    """An optional dependency (an extra) is not installed."""

    def __init__(self, package: str, *, extra: str | None = None,
                 pip: str | None = None) -> None:
        super().__init__(
            f"this feature needs the Python package '{package}', which is not installed",
            hint=pip or f"pip install 'ftlens[{extra}]'",
        )
        self.package = package
        self.extra = extra
