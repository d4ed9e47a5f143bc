"""Run directories for the report tests (see tests/support/report_run.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.support.browser import browser  # noqa: F401
from tests.support.report_run import ROOT, leaky_run, spam_run, xss_run

FIXTURE_RUN = ROOT / "tests" / "fixtures" / "report" / "run"


@pytest.fixture
def fixture_run(tmp_path: Path) -> Path:
    """A copy of the committed run directory (audit, curves, eval, provenance)."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    return run


@pytest.fixture(scope="session")
def spam(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A run directory made now by the real commands, and the files it was made from."""
    base = tmp_path_factory.mktemp("spam-run")
    run = base / "run"
    return run, spam_run(run, base / "work")


@pytest.fixture(scope="session")
def xss(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("xss")
    run = base / 'run "><img src=x onerror=alert(1)>'
    xss_run(run, base / "work")
    return run


@pytest.fixture(scope="session")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spam run, evaluated against training data that holds 15 of its 120 test inputs."""
    base = tmp_path_factory.mktemp("leaky-run")
    leaky_run(base / "run", base / "work")
    return base / "run"
