"""A real Headwater server under uvicorn on a free loopback port, for tests with real clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from headwater.app import create_app
from headwater.settings import Settings

ADMIN = "admin"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Headwater:
    url: str
    settings: Settings
    app: object

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"X-Auth": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def login(self, username: str = ADMIN, password: str = PASSWORD) -> str:
        with self.client() as client:
            response = client.post(
                "/api/auth/login", json={"username": username, "password": password}
            )
            response.raise_for_status()
            return str(response.json()["token"])

    def add_user(self, username: str, password: str, *, admin: bool = False) -> None:
        """A user created as an administrator does it, through the API."""
        with self.client(self.login()) as client:
            created = client.post(
                "/api/users", json={"username": username, "password": password, "is_admin": admin}
            )
            assert created.status_code == 201, created.text

    @property
    def resources(self) -> object:
        return self.app.state.resources  # type: ignore[attr-defined]


@contextmanager
def run_headwater(settings: Settings) -> Iterator[Headwater]:
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("headwater did not start")
        time.sleep(0.02)
    try:
        yield Headwater(url=f"http://127.0.0.1:{port}", settings=settings, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class ServeProcess:
    """`headwater serve` as a user starts it, in a process of its own."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def login(self, username: str = ADMIN, password: str = PASSWORD) -> str:
        response = httpx.post(
            self.url + "/api/auth/login", json={"username": username, "password": password}
        )
        response.raise_for_status()
        return str(response.json()["token"])


@contextmanager
def serve_process(data_dir: Path, **settings: str) -> Iterator[ServeProcess]:
    """Start `python -m headwater serve` on a free port with HEADWATER_<KEY> = value settings,
    its output in `data_dir/serve.log`, and wait until it answers."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
    env.update(
        HEADWATER_DATA_DIR=str(data_dir),
        HEADWATER_ADMIN_PASSWORD=PASSWORD,
        HEADWATER_PORT=str(port),
        **{f"HEADWATER_{key.upper()}": value for key, value in settings.items()},
    )
    log = data_dir / "serve.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "serve"], env=env, stdout=output, stderr=output
        )
    server = ServeProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(server.url + "/api/channels", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def memory_kib(pid: int) -> dict[str, int]:
    """A process's own memory figures in KiB: VmRSS now, VmHWM the peak since the last
    `reset_peak_memory` (or since it started)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def reset_peak_memory(pid: int) -> None:
    """Start the process's VmHWM again from its present size (Linux `clear_refs`)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
