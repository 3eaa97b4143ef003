"""What operators watch: /healthz and /readyz for load balancers, /metrics for Prometheus (of a
`serve` and of a `worker` process), and JSON log lines naming the run they were written for, in
the many-process shape: `serve` without its worker, and a `headwater worker` beside it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, wait_for_run
from tests.support.python_packages import Dist, build_dist
from tests.support.server import PASSWORD, Headwater, free_port, run_headwater, serve_process
from tests.support.upstream import serve_directory

REPO_ROUTE = "/api/repo/{channel}/{rest:path}"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text; 0 when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        found = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if found is None or found.group(1) != name:
            continue
        has = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(2) or ""))
        if has == labels:
            return float(found.group(3))
    return 0.0


def scrape(client: httpx.Client, **headers: str) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    """The middleware counts a request once its last byte is out, a moment after the client
    may already have it."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.05)


# --- health ----------------------------------------------------------------------------------


def test_health_is_anonymous_and_readiness_names_the_blob_store_that_is_gone(
    headwater: Headwater,
) -> None:
    with headwater.client() as client:
        alive = client.get("/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert {name: check["ok"] for name, check in ready.json()["checks"].items()} == {
            "database": True,
            "blob_store": True,
        }
        assert ready.headers["cache-control"] == "no-store"

        blobs = headwater.settings.resolved_blob_dir
        blobs.rename(blobs.with_name("blobs-away"))
        try:
            down = client.get("/readyz")
            assert client.get("/healthz").status_code == 200  # alive all the same
        finally:
            blobs.with_name("blobs-away").rename(blobs)
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["blob_store"]["ok"] is False
        assert body["checks"]["blob_store"]["error"].startswith("PermissionError: ")
        assert "Traceback" not in down.text
        assert client.get("/readyz").status_code == 200


class Relay:
    """A TCP relay to PostgreSQL that can refuse, or accept and never answer."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "relay"  # or "refuse", or "hang"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.mode == "refuse":
                client.close()
            elif self.mode == "relay":
                upstream = socket.create_connection(self.target)
                self.sockets.append(upstream)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self, mode: str) -> None:
        """From now on refuse or hang; connections open now are cut."""
        self.mode = mode
        for open_socket in self.sockets:
            with contextlib.suppress(OSError):
                open_socket.shutdown(socket.SHUT_RDWR)
            open_socket.close()
        self.sockets = []

    def close(self) -> None:
        self.closing = True
        self.cut("refuse")
        self.listener.close()


@pytest.mark.postgres
def test_readiness_names_a_database_that_refuses_or_hangs_within_the_timeout(
    tmp_path: Path, postgres_url: str
) -> None:
    relay = Relay(("127.0.0.1", 5432))
    assert "@127.0.0.1:5432/" in postgres_url
    relayed = postgres_url.replace(
        "postgres@127.0.0.1:5432/", f"postgres:pg-secret-word@127.0.0.1:{relay.port}/"
    )
    settings = make_settings(
        tmp_path / "var",
        database_url=relayed,
        readiness_timeout=1.0,
        embedded_worker=False,
        embedded_scheduler=False,
    )
    try:
        with run_headwater(settings) as headwater, headwater.client() as client:
            assert client.get("/readyz").status_code == 200

            relay.cut("refuse")
            refused = client.get("/readyz")
            assert refused.status_code == 503
            database = refused.json()["checks"]["database"]
            assert database["ok"] is False and "OperationalError" in database["error"]
            assert refused.json()["checks"]["blob_store"]["ok"] is True
            assert "pg-secret-word" not in refused.text

            relay.cut("hang")
            started = time.monotonic()
            hung = client.get("/readyz")
            assert time.monotonic() - started < 5
            assert hung.status_code == 503
            assert hung.json()["checks"]["database"]["error"] == "did not answer within 1 s"
            again = client.get("/readyz").json()["checks"]["database"]
            assert again["error"].startswith("still checking since a probe")
            assert client.get("/healthz").status_code == 200

            relay.cut("relay")  # the hung connection is cut: the stuck check ends
            eventually(lambda: client.get("/readyz").status_code == 200, timeout=30)
    finally:
        relay.close()


# --- metrics ---------------------------------------------------------------------------------


def test_requests_are_counted_by_route_template_with_the_bytes_served(
    headwater: Headwater, token: str, tmp_path: Path
) -> None:
    package = build_package(PackageSpec("hw-counted", "1.0", random_bytes=64 << 10), tmp_path)
    wheel = build_dist(tmp_path / "dist", Dist("countedpkg", "1.0"))
    with headwater.client(token) as admin, headwater.client() as anonymous:
        create_channel(admin, "zebrachan", privacy="public")
        for path in (package, wheel.path):
            with path.open("rb") as stream:
                sent = admin.post(
                    "/api/channels/zebrachan/files", files={"file": (path.name, stream)}
                )
            assert sent.status_code == 201, sent.text
        before = scrape(anonymous)
        size = package.stat().st_size
        for _ in range(2):
            got = anonymous.get(f"/api/repo/zebrachan/linux-64/{package.name}")
            assert got.status_code == 200 and len(got.content) == size
        # The second request for a page is answered by the fast path, before routing.
        for _ in range(2):
            assert anonymous.get("/api/repo/zebrachan/simple/countedpkg/").status_code == 200
        assert anonymous.get("/no/such/page").status_code == 404
        assert anonymous.delete("/api/channels/zebrachan").status_code == 401

        def counted() -> bool:
            after = scrape(anonymous)
            repo = {"route": REPO_ROUTE, "method": "GET", "status": "2xx"}

            def grew(name: str, **labels: str) -> float:
                return metric(after, name, **labels) - metric(before, name, **labels)

            return (
                grew("headwater_http_requests_total", **repo) == 4
                and grew("headwater_http_response_body_bytes_total", route=REPO_ROUTE) > 2 * size
                and grew(
                    "headwater_http_request_duration_seconds_count",
                    route=REPO_ROUTE,
                    method="GET",
                )
                == 4
                and grew(
                    "headwater_http_requests_total", route="unmatched", method="GET", status="4xx"
                )
                == 1
                and grew(
                    "headwater_http_requests_total",
                    route="/api/channels/{channel}",
                    method="DELETE",
                    status="4xx",
                )
                == 1
            )

        eventually(counted)
        text = scrape(anonymous)
        assert "zebrachan" not in text and "countedpkg" not in text  # templates, never paths
        assert metric(text, "headwater_info", version=metric_version(text)) == 1
        assert metric(text, "process_resident_memory_bytes") > 0


def metric_version(text: str) -> str:
    found = re.search(r'headwater_info\{version="([^"]+)"\}', text)
    assert found is not None
    return found.group(1)


def test_the_queue_and_runs_by_state_come_from_the_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", embedded_worker=False)
    with run_headwater(settings) as headwater, headwater.client(headwater.login()) as admin:
        create_channel(admin, "forge")
        create_mirror(admin, "forge", "http://127.0.0.1:9/", run_now=True)
        text = scrape(admin)
        assert metric(text, "headwater_database_gauges_up") == 1
        assert metric(text, "headwater_runs", kind="mirror", state="pending") == 1
        assert metric(text, "headwater_queue_depth") >= 1
        assert metric(text, "headwater_queue_oldest_pending_seconds") >= 0
        # A scrape within seconds of the last one does not ask the database again.
        create_mirror(admin, "forge", "http://127.0.0.1:9/", mirror_name="second", run_now=True)
        again = scrape(admin)
        assert metric(again, "headwater_runs", kind="mirror", state="pending") == 1


def test_a_metrics_token_is_asked_for_as_a_bearer_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var", metrics_token="scrape-secret")
    with run_headwater(settings) as headwater, headwater.client() as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="metrics"'
        assert "headwater_" not in refused.text
        administrator = headwater.login()
        assert client.get("/metrics", headers={"X-Auth": administrator}).status_code == 401
        wrong = {"Authorization": f"Bearer {administrator}"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        assert "headwater_http_requests_total" in scrape(
            client, Authorization="Bearer scrape-secret"
        )
        # The probes stay open for load balancers.
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


# --- the many-process shape: JSON logs, a worker's own metrics -----------------------------


@contextmanager
def worker_process(data_dir: Path, log: Path, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """`headwater worker` as an operator starts it, on the same settings as the server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
    env.update(
        HEADWATER_DATA_DIR=str(data_dir),
        HEADWATER_ADMIN_PASSWORD=PASSWORD,
        **{f"HEADWATER_{key.upper()}": value for key, value in settings.items()},
    )
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "worker"], env=env, stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line in {path.name}: {line!r}") from None
    return parsed


def test_a_worker_process_logs_json_naming_its_runs_and_serves_its_own_metrics(
    tmp_path: Path,
) -> None:
    build_channel(tmp_path / "upstream", CHAIN)
    data_dir = tmp_path / "var"
    common = {
        "upstream_allowlist": "http://127.0.0.1:*",
        "log_format": "json",
        "worker_poll_interval": "0.1",
        "metrics_token": "scrape-secret",
    }
    metrics_port = free_port()
    with (
        serve_directory(tmp_path / "upstream") as upstream,
        serve_process(data_dir, embedded_worker="false", **common) as server,
        worker_process(
            data_dir, tmp_path / "worker.log", worker_metrics_port=str(metrics_port), **common
        ),
    ):
        client = httpx.Client(base_url=server.url, headers={"X-Auth": server.login()})
        create_channel(client, "forge")
        mirror = create_mirror(client, "forge", upstream.url, mirror_mode="active", run_now=True)
        run = wait_for_run(client, mirror["run"]["id"])
        assert run["state"] == "completed", run
        downloaded = run["counters"]["bytes"]
        assert downloaded > 0
        assert client.get(f"/api/repo/t/{server.login()}/forge/noarch/repodata.json").is_success

        worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        assert httpx.get(worker_metrics).status_code == 401
        text = httpx.get(worker_metrics, headers={"Authorization": "Bearer scrape-secret"}).text
        assert metric(text, "headwater_upstream_downloaded_bytes_total") == downloaded
        assert metric(text, "headwater_runs", kind="mirror", state="completed") == 1
        # The server downloaded nothing itself: each process counts its own.
        served = scrape(client, Authorization="Bearer scrape-secret")
        assert metric(served, "headwater_upstream_downloaded_bytes_total") == 0

    worker_lines = json_lines(tmp_path / "worker.log")
    for line in worker_lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    of_the_run = [line for line in worker_lines if line.get("run_id") == run["id"]]
    messages = [line["message"] for line in of_the_run]
    assert f"mirror run {run['id']} started" in messages, worker_lines
    assert f"mirror run {run['id']} completed" in messages, worker_lines
    for line in of_the_run:
        assert line["job_kind"] == "mirror" and line["mirror_id"] == mirror["id"]
        assert line["worker_id"].startswith(socket.gethostname())
    assert any(line["message"].startswith("worker ") for line in worker_lines)

    server_lines = json_lines(data_dir / "serve.log")
    assert any("is starting at" in line["message"] for line in server_lines)
    access = [line for line in server_lines if line["logger"] == "headwater.access"]
    assert any(
        line["method"] == "GET" and line["path"].startswith("/api/runs/") and line["status"] == 200
        for line in access
    ), access[:5]
    token_paths = [line["path"] for line in access if line["path"].startswith("/api/repo/t/")]
    assert token_paths == ["/api/repo/t/***/forge/noarch/repodata.json"]
    assert not [line for line in server_lines if "run_id" in line]  # the server ran no run


def test_text_logs_stay_the_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with serve_process(data_dir, embedded_worker="false", embedded_scheduler="false") as server:
        assert httpx.get(server.url + "/healthz").status_code == 200
    written = (data_dir / "serve.log").read_text()
    assert "Headwater is starting at" in written
    assert not written.lstrip().startswith("{")
