"""Run one ftlens command in tests: through click (``invoke``, ``as_json``) or through the
console-script entry point, which turns FtlensError into exit 2 (``run_main``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ftlens.cli import cli, main


def helpers(command: str) -> tuple[Callable[..., Result], Callable[..., dict[str, Any]],
                                   Callable[..., tuple[int, str, str]]]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [command, *args])

    def as_json(*args: str) -> dict[str, Any]:
        result = invoke(*args, "--json")
        assert result.exit_code == 0, (result.output, result.exception)
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        try:
            code = main([command, *args]) or 0
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return int(code), out.out, out.err

    return invoke, as_json, run_main
