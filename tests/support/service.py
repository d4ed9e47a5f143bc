"""A real uvicorn server on a free loopback port, for the official openai SDK to talk to
(tests/server and tests/cli use it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from ftlens.server.app import create_app

KEY = "sk-test-7f3a9c-secret"


@dataclass
class Service:
    url: str
    home: Path
    app: object


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(home: Path, **options: object) -> Iterator[Service]:
    app = create_app(home, **options)  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Service(f"http://127.0.0.1:{port}/v1", home, app)
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service with a job worker and an API key, shared by a module's tests."""
    home = tmp_path_factory.mktemp("service")
    yield from serve(home, api_key=KEY, workers=1)
