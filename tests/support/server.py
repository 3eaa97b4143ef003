"""A real Headwater server under uvicorn on a free loopback port, for tests with real clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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
