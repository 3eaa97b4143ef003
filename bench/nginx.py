"""nginx serving a directory on a loopback port: the static-file baseline of the benchmarks.

Configured here, in a temporary directory, as one would serve a channel from disk: one worker
process (Headwater's server is one process too), `sendfile on`, `etag on`, keep-alive
connections kept for as long as wrk holds them, an access log written to a file as by default.
Debian's nginx is installed by scripts/ensure-nginx when missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.support.server import free_port

from bench.compare import die_with_parent
from bench.harness import ROOT


@dataclass(frozen=True)
class Nginx:
    url: str  # http://127.0.0.1:<port>, no trailing slash
    root: Path


def binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        subprocess.run([str(ROOT / "scripts" / "ensure-nginx")], check=True)
        found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found


def config(root: Path, prefix: Path, port: int, aliases: dict[str, str], access_log: bool) -> str:
    """`aliases`: URL prefix → a prefix under `root` it serves (a token's path, say)."""
    user = "user root root;\n" if os.geteuid() == 0 else ""
    log = f"access_log {prefix / 'access.log'};" if access_log else "access_log off;"
    locations = "".join(
        f"        location {url_prefix} {{ alias {root / target.strip('/')}/; }}\n"
        for url_prefix, target in aliases.items()
    )
    return f"""{user}worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    default_type application/octet-stream;
    types {{ application/json json; }}
    sendfile on;
    tcp_nopush on;
    etag on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    {log}
    client_body_temp_path {prefix / "body"};
    proxy_temp_path {prefix / "proxy"};
    fastcgi_temp_path {prefix / "fastcgi"};
    uwsgi_temp_path {prefix / "uwsgi"};
    scgi_temp_path {prefix / "scgi"};
    server {{
        listen 127.0.0.1:{port};
        root {root};
{locations}    }}
}}
"""


@contextmanager
def serve(
    root: Path, aliases: dict[str, str] | None = None, access_log: bool = True
) -> Iterator[Nginx]:
    """nginx serving `root` until the block ends."""
    nginx = binary()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as scratch:
        prefix = Path(scratch)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(config(root.resolve(), prefix, port, aliases or {}, access_log))
        process = subprocess.Popen(
            [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url, process, prefix)
            yield Nginx(url, root)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(url: str, process: subprocess.Popen[bytes], prefix: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            log = prefix / "error.log"
            raise RuntimeError(f"nginx stopped: {error}{log.read_text() if log.exists() else ''}")
        try:
            httpx.get(url + "/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not answer at {url}")
