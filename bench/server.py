"""`headwater serve` as a user starts it (one uvicorn process, SQLite, its embedded worker), on a
free loopback port, for the benchmarks that measure it from outside; and what they ask of it
through the REST API as a user would (signing in, a personal token, uploads, privacy).
BENCH_DATABASE and BENCH_BLOBS put it on PostgreSQL and S3 instead (bench/backends.py)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.support.server import free_port

from bench import backends
from bench.compare import die_with_parent, python_path
from bench.harness import ROOT

ADMIN_PASSWORD = "bench"  # bench.harness.bench_settings's


@dataclass
class HeadwaterServer:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    process: subprocess.Popen[bytes]
    log: Path
    session: str = ""  # the administrator's session token, once signed in

    def sign_in(self) -> str:
        response = httpx.post(
            self.url + "/api/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            timeout=60,
        )
        response.raise_for_status()
        self.session = str(response.json()["token"])
        return self.session

    def api(self) -> httpx.Client:
        if not self.session:
            self.sign_in()
        return httpx.Client(base_url=self.url, headers={"X-Auth": self.session}, timeout=600)

    def personal_token(self, name: str = "bench", channel: str | None = None) -> str:
        """A personal token that reads packages (limited to `channel` when given), as conda
        users make one for their `.condarc`."""
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        body: dict[str, Any] = {"name": name, "expires_at": expires}
        if channel:
            body["resources"] = [{"channel": channel, "role": "read"}]
        else:
            body["scopes"] = ["artifact:view"]
        with self.api() as client:
            response = client.post("/api/account/tokens", json=body)
            response.raise_for_status()
            return str(response.json()["token"])

    def set_privacy(self, channel: str, privacy: str) -> None:
        with self.api() as client:
            client.patch(f"/api/channels/{channel}", json={"privacy": privacy}).raise_for_status()

    def upload(self, channel: str, path: Path) -> dict[str, Any]:
        with self.api() as client, path.open("rb") as body:
            response = client.post(
                f"/api/channels/{channel}/files", files={"file": (path.name, body)}
            )
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer


@contextmanager
def serve(
    data_dir: Path, *, scheduler: bool = False, settings: dict[str, str] | None = None
) -> Iterator[HeadwaterServer]:
    """`python -m headwater serve` on `data_dir` with HEADWATER_<KEY> = value `settings`; its
    output goes to `data_dir/../serve-<port>.log`. The scheduler is off unless asked for (the
    benchmarks trigger what runs), the embedded worker on."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(
        HEADWATER_DATA_DIR=str(data_dir),
        HEADWATER_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HEADWATER_UPSTREAM_ALLOWLIST="http://127.0.0.1:*",
        # The server the figures of docs/performance.md were measured on (the default now).
        HEADWATER_SERVER=os.environ.get("HEADWATER_SERVER", "granian"),
        PYTHONPATH=python_path(ROOT),
    )
    env.update(backends.environment(data_dir))  # BENCH_DATABASE, BENCH_BLOBS
    env.update({f"HEADWATER_{key.upper()}": value for key, value in (settings or {}).items()})
    command = [sys.executable, "-m", "headwater", "serve", "--port", str(port)]
    if not scheduler:
        command.append("--no-scheduler")
    log = data_dir.parent / f"serve-{port}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=output, preexec_fn=die_with_parent
        )
    server = HeadwaterServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(server.url + "/api/channels", timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield server
    except BaseException:
        print(f"headwater serve's log ends:\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def download(client: httpx.Client, url: str, target: Path) -> int:
    """GET `url` into `target` (its directories made), streamed; the bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with client.stream("GET", url) as response, target.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            out.write(chunk)
            size += len(chunk)
    return size
