"""Run the service inside this process (a uvicorn thread on a free loopback port): what
``ftlens train`` starts when no service is running, and what the demo drives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftlens.errors import BackendError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def embedded_service(home: Path, *, start_timeout: float = 60, **options: Any
                     ) -> Iterator[str]:
    """Yields the base URL (``http://127.0.0.1:PORT/v1``); stops the service on exit.
    ``options`` go to :func:`ftlens.server.app.create_app` (workers, api_key, ...)."""
    import uvicorn

    from ftlens.server.app import create_app

    app = create_app(home, **options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="ftlens-embedded", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise BackendError("the embedded ftlens service did not start",
                               hint="run `ftlens serve` yourself and pass --base-url")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
