"""A real uvicorn server on a free loopback port (the embedded service), for the official
openai SDK to talk to (tests/server and tests/cli use it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ftlens.server.embedded import embedded_service, free_port

KEY = "sk-test-7f3a9c-secret"
__all__ = ["KEY", "Service", "free_port", "serve", "service"]


@dataclass
class Service:
    url: str
    home: Path


def serve(home: Path, **options: object) -> Iterator[Service]:
    with embedded_service(home, **options) as url:
        yield Service(url, home)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service with a job worker and an API key, shared by a module's tests."""
    home = tmp_path_factory.mktemp("service")
    yield from serve(home, api_key=KEY, workers=1)
