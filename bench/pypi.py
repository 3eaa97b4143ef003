"""Issue 4's benchmarks: serving a 500-file project page, and an active run of 20 projects.

    python -m bench pypi [pages] [mirror-run] [--runs N] [--quick]

Pages: a channel holds one project of 500 real wheels and sdists (a passive mirror of a
loopback index); `headwater serve` runs as a user starts it, in its own process; wrk drives it
with 64 connections for 10 s per page (2 s with `--quick`) and reports the latency
distribution. Targets: p99 under 20 ms for the HTML and the JSON page. The baseline in the same
run is the cheapest route the same server has: a channel's (empty) noarch repodata.json, served
from its stored index. Issue 13 compares the HTML page, in the same run, with pypiserver
serving the same 500 files as its README runs it in production (gunicorn, four workers, its
directory cache; installed from PyPI into bench/.cache/pypiserver-venv) and with nginx serving
Headwater's page bytes from disk (bench/nginx.py). `--runs N` measures every server N times
in turn and reports medians.

Mirror run: 20 projects of 25 files each, every file downloaded and verified by an active run
from a loopback index. The baseline is the floor any mirror pays: fetching the same 500 files
with plain httpx at the same concurrency, without verifying or storing them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.python_packages import Dist, build_index
from tests.support.server import free_port
from tests.support.upstream import serve_directory

from bench import backends, nginx, wrk
from bench.compare import Options, die_with_parent, load_average, markdown_table, python_path
from bench.harness import ROOT, bench_settings, execute_one_run, in_child, setup_mirror

JSON_MEDIA = "application/vnd.pypi.simple.v1+json"
WRK_SECONDS = 10  # per measurement; 2 with --quick
TAGS = [
    "py3-none-any",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64",
    "cp311-cp311-musllinux_1_1_x86_64",
    "cp311-cp311-macosx_10_9_x86_64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp311-cp311-win_amd64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-win_amd64",
]


def big_project(name: str, versions: int) -> list[Dist]:
    """Each version: an sdist and a wheel per tag, as a compiled project publishes them."""
    dists = []
    for minor in range(versions):
        version = f"1.{minor}"
        dists.append(Dist(name, version, kind="sdist", license_expression="BSD-3-Clause"))
        dists += [Dist(name, version, tag=tag, license_expression="BSD-3-Clause") for tag in TAGS]
    return dists


def _setup(data_dir: Path, source_root: str, projects: list[str], mode: str) -> int:
    settings = bench_settings(data_dir)
    return setup_mirror(settings, source_root, {"projects": projects}, mode, "python_simple")


def _wrk(url: str, accept: str | None) -> dict[str, Any]:
    headers = [f"Accept: {accept}"] if accept else []
    result = wrk.run(url, connections=64, threads=2, seconds=WRK_SECONDS, headers=headers)
    return {
        "p50_ms": result.p50_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "requests_per_s": round(result.requests_per_s),
        "non_2xx": result.non_2xx_3xx,
        "socket_errors": result.socket_errors,
    }


def _serve(data_dir: Path, port: int, **settings: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_DATA_DIR=str(data_dir), HEADWATER_ADMIN_PASSWORD="bench")
    env.update(backends.environment(data_dir))  # BENCH_DATABASE, BENCH_BLOBS
    env.update({f"HEADWATER_{key.upper()}": value for key, value in settings.items()})
    server = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--port", str(port), "--no-scheduler"],
        env={**env, "PYTHONPATH": python_path(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/repo/bench/noarch/repodata.json")
    except RuntimeError:
        server.kill()
        raise
    return server


def pages(runs: int = 1) -> dict[str, Any]:
    """Every server of the comparison measured `runs` times in turn; each figure is the median
    of the runs (the runs themselves under `per_run`)."""
    wrk.require()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dists = big_project("big-project", 50)
        built = build_index(root / "index", dists, json_pages=True)
        with serve_directory(root / "index") as upstream:
            mirror_id = _setup(root / "var", upstream.url + "simple/", ["big-project"], "passive")
            run = execute_one_run(bench_settings(root / "var"), mirror_id)
        assert run["state"] == "completed", run
        measured: list[dict[str, Any]] = []
        for number in range(runs):
            one: dict[str, Any] = {}
            for label, settings in (("default", {}), ("access_log_off", {"access_log": "false"})):
                one[label] = _drive(root / "var", len(dists), settings)
            one["floor_bare_asgi_same_bytes"] = _floor(root)
            one["nginx_same_bytes"] = _nginx_page(root)
            one["pypiserver"] = _pypiserver(root, built)
            measured.append(one)
            print(f"pages: run {number + 1}/{runs} done", file=sys.stderr, flush=True)
        report: dict[str, Any] = {"files_on_page": len(dists), "runs": runs}
        report.update(_medians(measured))
        if runs > 1:
            report["per_run"] = measured
        return report


def _medians(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' reports merged: every number the median of its values across the runs."""
    first = measured[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [one[key] for one in measured]
        if isinstance(value, dict):
            merged[key] = _medians(values)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            present = [v for v in values if v is not None]
            merged[key] = statistics.median(present) if present else None
        else:
            merged[key] = value
    return merged


def comparison_table(report: dict[str, Any]) -> str:
    """The HTML page from each server: requests/s, p99, and Headwater's ratios to it (as it
    runs by default, and with its access log off)."""
    default, quiet = report["default"]["html"], report["access_log_off"]["html"]
    rows = []
    for label, figures in (
        ("Headwater, defaults (access log on)", default),
        ("Headwater, access log off", quiet),
        (
            f"pypiserver {report['pypiserver']['version']} under gunicorn "
            f"-w{report['pypiserver']['workers']}",
            report["pypiserver"]["html"],
        ),
        ("nginx, Headwater's page bytes from disk", report["nginx_same_bytes"]),
        ("bare ASGI app, same bytes (floor)", report["floor_bare_asgi_same_bytes"]),
    ):
        rate = figures["requests_per_s"]
        rows.append(
            [
                label,
                f"{rate:,.0f}",
                f"{figures['p50_ms']} ms",
                f"{figures['p99_ms']} ms",
                f"{default['requests_per_s'] / rate:.2f}" if rate else "—",
                f"{quiet['requests_per_s'] / rate:.2f}" if rate else "—",
            ]
        )
    headers = [
        "HTML page, 64 connections",
        "requests/s",
        "p50",
        "p99",
        "Headwater ÷ it",
        "Headwater (log off) ÷ it",
    ]
    return markdown_table(headers, rows)


def _floor(root: Path) -> dict[str, Any]:
    """The same HTML page's bytes from a bare ASGI app: what any Python server here can do."""
    body = root / "page.html"  # written by _drive
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.constant_asgi:app", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--no-access-log", "--log-level", "warning"],
        env={**os.environ, "PYTHONPATH": python_path(ROOT), "HEADWATER_BENCH_BODY": str(body)},
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/")
        return _wrk(f"http://127.0.0.1:{port}/", None)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _nginx_page(root: Path) -> dict[str, Any]:
    """The same HTML page's bytes from nginx (bench/nginx.py), at the same path."""
    page = root / "static" / "api" / "repo" / "bench" / "simple" / "big-project" / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "page.html", page)  # written by _drive
    with nginx.serve(root / "static") as server:
        url = f"{server.url}/api/repo/bench/simple/big-project/"
        assert httpx.get(url).content == page.read_bytes()
        return _wrk(url, "text/html")


PYPISERVER_VENV = ROOT / "bench" / ".cache" / "pypiserver-venv"
PYPISERVER_WORKERS = 4  # its README's gunicorn command


def pypiserver_venv() -> Path:
    """pypiserver with its directory cache (`pypiserver[cache]`, which its README recommends
    for thousands of packages) and gunicorn, from PyPI into a venv of their own (cached)."""
    python = PYPISERVER_VENV / "bin" / "python"
    if not (PYPISERVER_VENV / "bin" / "gunicorn").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYPISERVER_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "pypiserver[cache]", "gunicorn"],
            check=True,
        )
    return PYPISERVER_VENV


def _pypiserver(root: Path, built: list[Any]) -> dict[str, Any]:
    """The same 500 files served by pypiserver as its README runs it in production: under
    gunicorn (`gunicorn -w4 'pypiserver:app(root=...)'`), with its directory cache."""
    venv = pypiserver_venv()
    packages = root / "pypiserver-packages"
    if not packages.exists():
        packages.mkdir()
        for item in built:
            shutil.copyfile(item.path, packages / item.path.name)
    port = free_port()
    app = f"pypiserver:app(root={str(packages)!r})"
    command = [str(venv / "bin" / "gunicorn"), f"-w{PYPISERVER_WORKERS}", "-b", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, app],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=root,
        preexec_fn=die_with_parent,
    )
    try:
        url = f"http://127.0.0.1:{port}/simple/big-project/"
        _wait_for(url)
        page = httpx.get(url, timeout=60)
        files = page.text.count("<a ")
        assert page.status_code == 200 and files == len(built), (page.status_code, files)
        version = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import pypiserver; print(pypiserver.__version__)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return {
            "version": version,
            "workers": PYPISERVER_WORKERS,
            "html_bytes": len(page.content),
            "html": _wrk(url, "text/html"),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _drive(data_dir: Path, files: int, settings: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    server = _serve(data_dir, port, **settings)
    try:
        base = f"http://127.0.0.1:{port}/api/repo/bench"
        page = httpx.get(f"{base}/simple/big-project/", headers={"Accept": JSON_MEDIA})
        assert len(page.json()["files"]) == files, len(page.json()["files"])
        html = httpx.get(f"{base}/simple/big-project/").content
        (data_dir.parent / "page.html").write_bytes(html)
        return {
            "html_bytes": len(html),
            "json_bytes": len(page.content),
            "html": _wrk(f"{base}/simple/big-project/", "text/html"),
            "json": _wrk(f"{base}/simple/big-project/", JSON_MEDIA),
            # Last: the slow route leaves requests queued in the server after wrk stops.
            "baseline_noarch_repodata": _wrk(f"{base}/noarch/repodata.json", None),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _fetch_all(urls: list[str], concurrency: int) -> int:
    semaphore = asyncio.Semaphore(concurrency)
    total = 0
    async with httpx.AsyncClient(timeout=300) as client:

        async def one(url: str) -> None:
            nonlocal total
            async with semaphore:
                response = await client.get(url)
                response.raise_for_status()
                total += len(response.content)

        await asyncio.gather(*(one(url) for url in urls))
    return total


def mirror_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        dists = [d for n in range(20) for d in big_project(f"project-{n:02d}", 3)[:25]]
        built = build_index(root / "index", dists, json_pages=True)
        with serve_directory(root / "index") as upstream:
            urls = [f"{upstream.url}files/{item.path.name}" for item in built]
            started = time.perf_counter()
            fetched = asyncio.run(_fetch_all(urls, bench_settings(root).download_concurrency))
            floor = time.perf_counter() - started
            run = in_child("bench.pypi", "child", scratch, upstream.url + "simple/")
        return {
            "projects": 20,
            "files": len(dists),
            "bytes": fetched,
            "baseline_plain_fetch_s": round(floor, 3),
            "active_run": run,
        }


def child(scratch: str, source_root: str) -> None:
    root = Path(scratch)
    projects = [f"project-{n:02d}" for n in range(20)]
    mirror_id = _setup(root / "var", source_root, projects, "active")
    print(json.dumps(execute_one_run(bench_settings(root / "var"), mirror_id)))


def main(argv: list[str]) -> None:
    if argv[:1] == ["child"]:
        child(*argv[1:])
        return
    options = Options.parse(argv, runs=1)
    global WRK_SECONDS
    WRK_SECONDS = 2 if options.quick else 10
    parts = options.rest or ["pages", "mirror-run"]
    report: dict[str, Any] = {"load_average_at_start": load_average()}
    if "pages" in parts:
        report["pages"] = pages(options.runs)
        print(comparison_table(report["pages"]))
    if "mirror-run" in parts:
        report["mirror_run"] = mirror_run()
    report["load_average_at_end"] = load_average()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
