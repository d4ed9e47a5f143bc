"""A real uvicorn server on a free loopback port (the embedded service), for the official
openai SDK to talk to (tests/server and tests/cli use it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from ftlens.server.embedded import embedded_service, free_port

KEY = "sk-test-7f3a9c-secret"
__all__ = ["KEY", "Service", "ServiceProcess", "free_port", "process_gone", "serve", "service",
           "start_service_process", "stop_service_process"]


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


@dataclass
class ServiceProcess:
    """``ftlens serve`` as a process of its own, in a session of its own."""

    url: str
    home: Path
    proc: subprocess.Popen[str]

    def worker_pid(self) -> int:
        return int((self.home / "worker.pid").read_text())


def start_service_process(home: Path, *args: str, key: str = KEY, env_key: str | None = None,
                          timeout: float = 120) -> ServiceProcess:
    """Starts ``ftlens serve --home HOME ARGS`` on a free port and waits until it answers
    ``key``. $FTLENS_API_KEY is ``env_key``, else ``key``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftlens", "serve", "--home", str(home), "--port", str(port),
         *args], env={**os.environ, "FTLENS_API_KEY": env_key or key}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"},
                         timeout=1).status_code == 200:
                return ServiceProcess(url, home, proc)
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "ftlens serve did not start"
        time.sleep(0.2)


def stop_service_process(svc: ServiceProcess) -> None:
    """SIGKILL to the service's whole session (whatever is left of it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(svc.proc.pid, signal.SIGKILL)
    svc.proc.wait(30)
    if svc.proc.stderr:
        svc.proc.stderr.close()


def process_gone(pid: int) -> bool:
    """The process has exited (a zombie that nobody reaps yet counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status
