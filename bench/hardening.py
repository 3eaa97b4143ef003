"""Issue 9's figures: package downloads while sign-ins flood the server, and what decompression
bombs cost it.

    python -m bench hardening                    # both parts
    python -m bench hardening sign-in [--compare REV]
    python -m bench hardening bombs

Sign-in: `headwater serve` as a user starts it (SQLite, its own process) holds a channel with a
package; wrk asks for its noarch/repodata.json with 16 connections for 10 s. The baseline is
that alone; then the same while a second wrk sends 48 connections of sign-ins with a wrong
password, once with the default limits (most attempts are refused with 429 before any hashing)
and once with the limits lifted (every attempt hashes a password). `--compare REV` measures a
checkout of another revision the same way (the code before issue 9, say), in the same run.

Bombs: the same server takes three uploads that each expand to 1 GiB (a .tar.bz2 whose
info/index.json is 1 GiB, one whose earlier member is, and a wheel whose METADATA is); the
figure is the server's peak resident memory during them (VmHWM, reset before) above its idle
size, and how long each refusal takes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.support.archives import Member, index_json, tar_bz2_bomb, wheel_bomb
from tests.support.conda_packages import PackageSpec, build_package
from tests.support.server import free_port, memory_kib, reset_peak_memory

from bench import backends
from bench.harness import ROOT

INDEX = "info/index.json"
LUA = """
wrk.method = "POST"
wrk.body = '{"username": "bob", "password": "not the password"}'
wrk.headers["Content-Type"] = "application/json"
"""


@contextmanager
def serve(data_dir: Path, source: Path, **settings: str) -> Any:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(
        PYTHONPATH=str(source),
        HEADWATER_DATA_DIR=str(data_dir),
        HEADWATER_ADMIN_PASSWORD="bench",
        HEADWATER_PORT=str(port),
        HEADWATER_EMBEDDED_SCHEDULER="false",
        HEADWATER_ACCESS_LOG="false",
        **backends.environment(data_dir),  # BENCH_DATABASE, BENCH_BLOBS
        **{f"HEADWATER_{key.upper()}": value for key, value in settings.items()},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve"],
        env=env,
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/api/channels", timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("serve did not start") from None
            time.sleep(0.2)
    try:
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _admin(url: str) -> httpx.Client:
    token = httpx.post(url + "/api/auth/login", json={"username": "admin", "password": "bench"})
    return httpx.Client(base_url=url, headers={"X-Auth": token.json()["token"]}, timeout=300)


def _wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> dict[str, Any]:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
        url,
    ]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    return {
        "p50_ms": _ms(latency["50"]) if "50" in latency else None,
        "p99_ms": _ms(latency["99"]) if "99" in latency else None,
        "requests_per_s": round(float(rate.group(1))) if rate else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "timeouts": int(timeouts.group(1)) if timeouts else 0,
    }


def _ms(text: str) -> float:
    number = float(re.sub(r"[a-z]+$", "", text))
    unit = re.search(r"[a-z]+$", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit.group() if unit else "s"]
    return round(number * scale, 2)


def sign_in(source: Path, scratch: Path) -> dict[str, Any]:
    package = build_package(PackageSpec("bench-tool", "1.0", subdir="noarch"), scratch / "pkg")
    script = scratch / "login.lua"
    script.write_text(LUA)
    figures: dict[str, Any] = {}
    lifted = {
        "sign_in_limit_per_account": "1000000 per minute",
        "sign_in_limit_per_address": "1000000 per minute",
    }
    for label, settings in (("default limits", {}), ("limits lifted", lifted)):
        data = scratch / label.replace(" ", "-")
        data.mkdir()
        with serve(data, source, **settings) as (url, _), _admin(url) as admin:
            admin.post("/api/channels", json={"name": "bench"})
            with package.open("rb") as stream:
                admin.post("/api/channels/bench/files", files={"file": (package.name, stream)})
            _add_user(admin, source, data, "bob", "pw")
            repodata = url + "/api/repo/bench/noarch/repodata.json"
            if label == "default limits":
                figures["repodata alone"] = _wrk(repodata, 16, 10)
            flood = subprocess.Popen(
                [
                    *("wrk", "-t1", "-c48", "-d14s", "--timeout", "30s", "-s", str(script)),
                    url + "/api/auth/login",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(2)
            figures[f"repodata during a sign-in flood, {label}"] = _wrk(repodata, 16, 10)
            out, _ = flood.communicate()
            rate = re.search(r"Requests/sec:\s+(\S+)", out)
            figures[f"sign-ins per second, {label}"] = round(float(rate.group(1))) if rate else None
    return figures


def _add_user(admin: httpx.Client, source: Path, data: Path, name: str, password: str) -> None:
    """Through the REST API; revisions before issue 10 had none for it, and their CLI worked
    on the database directly."""
    made = admin.post("/api/users", json={"username": name, "password": password})
    if made.status_code == 201:
        return
    assert made.status_code in (404, 405), made.text
    subprocess.run(
        [sys.executable, "-m", "headwater", "user", "create", name, "--password", password],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
            "PYTHONPATH": str(source),
            "HEADWATER_DATA_DIR": str(data),
        },
        cwd=data,
        check=True,
        capture_output=True,
    )


def bombs(source: Path, scratch: Path) -> dict[str, Any]:
    made = [
        ("tar.bz2, info/index.json of 1 GiB", tar_bz2_bomb(scratch / "a-1.0-0.tar.bz2", INDEX)),
        (
            "tar.bz2, a 1 GiB member before info/index.json",
            tar_bz2_bomb(
                scratch / "b-1.0-0.tar.bz2",
                "info/filler",
                after=[Member(INDEX, index_json("b"))],
            ),
        ),
        ("wheel, METADATA of 1 GiB", wheel_bomb(scratch / "c-1.0-py3-none-any.whl")),
    ]
    figures: dict[str, Any] = {}
    data = scratch / "bombs"
    data.mkdir()
    with serve(data, source) as (url, pid), _admin(url) as admin:
        admin.post("/api/channels", json={"name": "bench"})
        idle = memory_kib(pid)["VmRSS"]
        reset_peak_memory(pid)
        for label, path in made:
            started = time.perf_counter()
            with path.open("rb") as stream:
                answer = admin.post(
                    "/api/channels/bench/files", files={"file": (path.name, stream)}
                )
            figures[label] = {
                "upload_kib": round(path.stat().st_size / 1024, 1),
                "status": answer.status_code,
                "refused_in_s": round(time.perf_counter() - started, 2),
            }
        figures["peak above idle, MiB"] = round((memory_kib(pid)["VmHWM"] - idle) / 1024, 1)
        figures["idle, MiB"] = round(idle / 1024, 1)
    return figures


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """Another revision's source tree, for a measurement in the same run."""
    with tempfile.TemporaryDirectory() as place:
        tree = Path(place) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
            check=True,
            capture_output=True,
        )
        try:
            yield tree / "src"
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )


def main(args: list[str]) -> None:
    parts = [a for a in args if not a.startswith("--") and a not in _option_values(args)]
    compare = _option(args, "--compare")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        here = ROOT / "src"
        if not parts or "sign-in" in parts:
            (Path(scratch) / "now").mkdir()
            results["sign-in"] = sign_in(here, Path(scratch) / "now")
            if compare:
                (Path(scratch) / "before").mkdir()
                with checkout(compare) as source:
                    results[f"sign-in at {compare}"] = sign_in(source, Path(scratch) / "before")
        if not parts or "bombs" in parts:
            results["bombs"] = bombs(here, Path(scratch))
    print(json.dumps(results, indent=2))


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def _option_values(args: list[str]) -> set[str]:
    return {args[i + 1] for i, a in enumerate(args) if a.startswith("--") and i + 1 < len(args)}
