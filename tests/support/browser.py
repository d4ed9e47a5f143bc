"""A headless chromium for the browser tests: Debian's chromium driven by Playwright (pip
``playwright``, the dev extra; never ``playwright install``, which downloads). Without either,
each test fails saying how to fix it (never skips)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def missing() -> str | None:
    """Why the browser test cannot run here, with how to fix it; None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("the browser tests need the Python package playwright: "
                "pip install playwright (it is in ftlens' dev extra); do not run "
                "`playwright install`, the test uses Debian's chromium")
    if not CHROMIUM.is_file():
        return (f"the browser tests need Debian's chromium at {CHROMIUM}: "
                "apt-get install -y chromium")
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium, or the reason there is none (each test then fails with it)."""
    why = missing()
    if why is not None:
        yield why
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()
