"""A Headwater deployment of many processes on loopback, under load and faults (issue 13).

`run_scenario` starts K `headwater serve` replicas and M `headwater worker` processes on one
PostgreSQL schema and one S3 bucket (no embedded worker, no scheduler: runs are asked for
through the REST API), N small conda channels upstream (one HTTP server, one folder each) with
an active mirror each, and C reader threads reading through the replicas in turn. Then:

1. **Load**: rounds of runs (every mirror asked to run, the upstream changed between rounds so
   each run publishes a new revision) while the readers read. Every run must complete, and
   every request must be answered and consistent.
2. **Faults**: more rounds, while workers running a run are killed with SIGKILL (a replacement
   is started at once), workers' database connections are cut (`pg_terminate_backend` on the
   backends named by each worker's `application_name`), and the S3 endpoint is stopped for a
   few seconds, once a round. Every run must end `completed` or `failed` with a reason.
3. **After**: one more round (all complete), the readers stopped, revisions pruned and a
   collection with a grace of 0 (`blob-collect`): every key in the bucket has its `blobs` row
   and is referenced, every row its key, every reference its bytes, every package blob hashes
   to its key; then one more round (all complete) while the readers read again, and every
   channel's head read in full through the replicas.

Throughout, from the database and the workers' JSON logs: every run was claimed once (one
"claimed by" line in its log, one "run N started" line in all the workers' logs), no two runs of
one mirror were running at once (their [started, finished] intervals do not overlap), and only
completed runs made revisions (one each).

**What a reader counts as a failure.** Anything but 200 or 304, a connection error or a body
cut short; and always (the *torn* ones) an answer whose bytes disagree with what names them: a
repodata.json whose sha256 is not its ETag or that does not parse as the subdir's index, a
package file whose sha256 and size are not what that revision's repodata says, a shard index or
shard not matching its digest, a shard whose records differ from the repodata of the same
revision. One 404 is expected: linux-64 of a channel no run has published yet (noarch answers
an empty index then, linux-64 "no packages"), decided by what was known before the request was
sent: the driver saw no run of the channel complete and no reader saw its linux-64 answered,
or one did less than HEAD_STALENESS ago (a replica's fast path serves a channel's head from
memory for up to 10 s after another process moved it, repo/heads.py). A package file and a
shard are read as clients read them, at the plain URL; when the head has moved on since the
index named them and no longer holds them (a 404), they are read at the revision that named
them (`/api/repo/<c>@<n>/...`), which must answer. While the S3 endpoint is away (and for
a few seconds after), the replicas cannot read blobs: failures of requests that overlapped
that window are counted apart; torn answers are never allowed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import httpx
import msgspec
import psycopg
import zstandard
from sqlalchemy import select, text

from headwater.db import Database
from headwater.models import Blob, PackageFile, RevisionIndex
from headwater.services import blobs
from headwater.services.indexes import artifact_keys
from headwater.storage import content_key
from tests.support import s3 as moto_settings
from tests.support.conda_packages import PackageSpec, build_package
from tests.support.server import PASSWORD, free_port
from tests.support.upstream import Fault, Upstream, serve_directory

SUBDIRS = ("linux-64", "noarch")
SHARD_INDEX = "repodata_shards.msgpack.zst"
REVISION_HEADER = "X-Headwater-Revision"
# After the S3 endpoint comes back, requests that began while it was away may still fail
# (obstore gives up after about 3 s of retries, a stream may be cut): this long after.
OUTAGE_MARGIN = 5.0
# A replica's conda fast path keeps each channel's head in memory: past 1 s it is read again in
# the background while the old one is still served, and past 10 s it is not served any more
# (repo/heads.py, `ttl` and `limit`). So another process's publish shows within this long.
HEAD_STALENESS = 12.0


class S3Service(Protocol):
    """What the scenario needs of an S3 endpoint (tests/support/s3.py's S3Endpoint)."""

    url: str

    def settings(self, bucket: str) -> dict[str, object]: ...

    def new_bucket(self) -> str: ...

    def client(self) -> Any: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass(frozen=True)
class Size:
    replicas: int
    workers: int
    mirrors: int
    readers: int
    load_rounds: int = 2
    fault_rounds: int = 2
    fault_interval: float = 1.0  # seconds between two faults while runs are under way
    kills: int = 2  # workers killed per fault round, at most (the other faults: cuts)
    outage: float = 3.0  # seconds the S3 endpoint is away, once per fault round
    file_delay: float = 0.4  # the upstream's delay on each new file in fault rounds
    # Short, so that runs of killed workers are reaped quickly; not so short that a live
    # worker's heartbeat misses it on a loaded machine.
    heartbeat_timeout: float = 8.0
    round_timeout: float = 240.0


REDUCED = Size(replicas=2, workers=2, mirrors=6, readers=8)
FULL = Size(
    replicas=2,
    workers=4,
    mirrors=50,
    readers=64,
    load_rounds=3,
    fault_rounds=3,
    fault_interval=0.5,
    kills=6,
    outage=5.0,
    round_timeout=900.0,
)


def say_nothing(message: str) -> None:
    pass


# --- S3 in a process of its own ----------------------------------------------------------------

_MOTO = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
print("ok", flush=True)
for line in sys.stdin:
    if line.strip() == "stop":
        server.stop()
    elif line.strip() == "start":
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
    print("ok", flush=True)
server.stop()
"""


class MotoProcess:
    """moto's S3 server (tests/support/s3.py's endpoint) in a process of its own, so that its
    work does not compete with the readers for this process's interpreter; `stop()` and
    `start()` take it away and bring it back on the same port, its buckets kept."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MOTO, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._answer()

    def _answer(self) -> None:
        assert self._process.stdout is not None
        answer = self._process.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"moto's server did not answer ({answer!r})")

    def _say(self, word: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(word + "\n")
        self._process.stdin.flush()
        self._answer()

    def stop(self) -> None:
        self._say("stop")

    def start(self) -> None:
        self._say("start")

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=moto_settings.REGION,
            aws_access_key_id=moto_settings.KEY_ID,
            aws_secret_access_key=moto_settings.SECRET,
        )

    def new_bucket(self) -> str:
        name = f"headwater-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str) -> dict[str, object]:
        return {
            "blob_backend": "s3",
            "s3_bucket": bucket,
            "s3_endpoint": self.url,
            "s3_region": moto_settings.REGION,
            "s3_access_key_id": moto_settings.KEY_ID,
            "s3_secret_access_key": moto_settings.SECRET,
        }


@contextlib.contextmanager
def moto_process() -> Iterator[MotoProcess]:
    endpoint = MotoProcess()
    try:
        yield endpoint
    finally:
        endpoint.close()


# --- the upstream ------------------------------------------------------------------------------


class Channels:
    """N small conda channels under `root/c<i>/`, moved one round on by `advance()`: each holds
    its own `lf-c<i>-base` (always), its own `lf-c<i>` of this round and the last, and
    `lf-shared` of this round and the last, the same bytes in every channel (so runs of many
    mirrors write one blob key at once). Repodata is written whole (a rename), and only
    between rounds, when no run reads it."""

    def __init__(self, root: Path, count: int) -> None:
        self.root = root
        self.count = count
        self.round = -1
        self._pool = root / ".pool"
        self._records: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
        self.new_files: list[str] = []  # upstream paths of the files this round added

    def name(self, index: int) -> str:
        return f"c{index}"

    def advance(self) -> None:
        self.round += 1
        number = self.round
        shared = _record_of(
            PackageSpec("lf-shared", f"1.{number}", subdir="noarch", random_bytes=3000),
            self._pool,
        )
        self.new_files = []
        for index in range(self.count):
            folder = self.root / self.name(index)
            if number == 0:
                base = PackageSpec(f"lf-c{index}-base", "1.0", random_bytes=1000)
                self._records[(index, "linux-64")] = dict([_record_of(base, folder / "linux-64")])
                self._records[(index, "noarch")] = {}
            own = PackageSpec(
                f"lf-c{index}", f"1.{number}", depends=("lf-shared >=1.0",), random_bytes=2000
            )
            mine = _record_of(own, folder / "linux-64")
            target = folder / "noarch" / shared[0]
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(self._pool / shared[0], target)
            for subdir, added in (("linux-64", mine), ("noarch", shared)):
                records = self._records[(index, subdir)]
                records[added[0]] = added[1]
                old = (added[1]["name"], f"1.{number - 2}")
                for gone in [f for f, r in records.items() if (r["name"], r["version"]) == old]:
                    del records[gone]
                    (folder / subdir / gone).unlink(missing_ok=True)
                _write_repodata(folder / subdir, subdir, records)
                self.new_files.append(f"/{self.name(index)}/{subdir}/{added[0]}")


def _record_of(spec: PackageSpec, folder: Path) -> tuple[str, dict[str, Any]]:
    """Build the package into `folder`; its repodata record, as an indexer writes it."""
    path = build_package(spec, folder)
    content = path.read_bytes()
    record: dict[str, Any] = {
        "build": spec.build,
        "build_number": spec.build_number,
        "depends": list(spec.depends),
        "license": spec.license,
        "license_family": spec.license_family,
        "md5": hashlib.md5(content).hexdigest(),
        "name": spec.name,
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "subdir": spec.subdir,
        "timestamp": spec.timestamp,
        "version": spec.version,
    }
    if spec.subdir == "noarch":
        record["noarch"] = "generic"
    return spec.filename, record


def _write_repodata(folder: Path, subdir: str, records: dict[str, dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "info": {"subdir": subdir},
        "packages": {},
        "packages.conda": dict(sorted(records.items())),
        "repodata_version": 1,
    }
    body = json.dumps(document, sort_keys=True).encode()
    for name, content in (
        ("repodata.json", body),
        ("repodata.json.zst", zstandard.ZstdCompressor().compress(body)),
    ):
        scratch = folder / f".{name}.tmp"
        scratch.write_bytes(content)
        os.replace(scratch, folder / name)


# --- the processes -----------------------------------------------------------------------------


@dataclass
class Process:
    role: str  # "serve" or "worker"
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    application_name: str
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


def with_query(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


class Cluster:
    """The processes of one deployment, on one database schema and one bucket."""

    def __init__(
        self,
        base: Path,
        database_url: str,
        s3_settings: dict[str, object],
        size: Size,
        *,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.base = base
        self.database_url = database_url
        self.s3_settings = s3_settings
        self.size = size
        self.tag = f"hwlf-{uuid.uuid4().hex[:8]}"  # names this deployment's database sessions
        self.extra = extra or {}
        self.replicas: list[Process] = []
        self.workers: list[Process] = []  # alive or not: every worker ever started
        self.db = Database(database_url)
        self._serial = itertools.count()
        self._lock = threading.RLock()
        # Workers this harness killed, and those that ended by themselves (restarted), with
        # when that was seen.
        self._killed: dict[str, dt.datetime] = {}
        self._ended: dict[str, dt.datetime] = {}

    def env(self, name: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
        settings: dict[str, object] = {
            "data_dir": self.base / name,
            "database_url": with_query(self.database_url, "application_name", f"{self.tag}-{name}"),
            "admin_password": PASSWORD,
            "upstream_allowlist": "http://127.0.0.1:*",
            "embedded_worker": "false",
            "embedded_scheduler": "false",
            "worker_poll_interval": "0.2",
            "heartbeat_interval": "0.5",
            "heartbeat_timeout": str(self.size.heartbeat_timeout),
            "http_timeout": "10",
            "http_attempts": "2",
            "http_backoff": "0.1",
            "gc_grace_hours": "0",
            "revisions_kept": "2",
            "log_format": "json",
            "access_log": "false",
            **self.s3_settings,
            **self.extra,
        }
        env.update({f"HEADWATER_{key.upper()}": str(value) for key, value in settings.items()})
        return env

    def _spawn(self, role: str, port: int | None = None) -> Process:
        name = f"{role}-{next(self._serial)}"
        env = self.env(name)
        command = [sys.executable, "-m", "headwater", role]
        if port is not None:
            env["HEADWATER_PORT"] = str(port)
        (self.base / name).mkdir(parents=True, exist_ok=True)
        log = self.base / f"{name}.log"
        with log.open("wb") as output:
            popen = subprocess.Popen(command, env=env, stdout=output, stderr=output)
        process = Process(role, name, popen, log, f"{self.tag}-{name}")
        if port is not None:
            process.url = f"http://127.0.0.1:{port}"
        return process

    def start(self) -> None:
        """Every process at once (migrations take turns), then wait until each is ready."""
        self.replicas = [self._spawn("serve", free_port()) for _ in range(self.size.replicas)]
        self.workers = [self._spawn("worker") for _ in range(self.size.workers)]
        deadline = time.monotonic() + 120
        for process in self.replicas:
            while True:
                try:
                    if httpx.get(process.url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                self._still_starting(process, deadline)
        for process in self.workers:
            while not _worker_started(process.log):
                self._still_starting(process, deadline)

    def _still_starting(self, process: Process, deadline: float) -> None:
        if not process.alive() or time.monotonic() > deadline:
            tail = process.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{process.name} did not start:\n{tail}")
        time.sleep(0.1)

    def start_worker(self) -> Process:
        process = self._spawn("worker")
        with self._lock:
            self.workers.append(process)
        return process

    def live_workers(self) -> list[Process]:
        with self._lock:
            return [process for process in self.workers if process.alive()]

    def worker_by_pid(self, pid: int) -> Process | None:
        return next((p for p in self.live_workers() if p.pid == pid), None)

    def kill(self, process: Process, *, replace: bool = True) -> None:
        """SIGKILL, and reap it (a zombie's pid would still look alive to the next worker);
        then start another in its place."""
        with self._lock:
            self._killed[process.name] = dt.datetime.now(dt.UTC)
            process.popen.send_signal(signal.SIGKILL)
            process.popen.wait(timeout=30)
            if replace:
                self.start_worker()

    def supervise(self) -> list[str]:
        """What systemd's `Restart=always` does: a worker that ended by itself (one whose
        connection was cut while it migrated at start exits, as it should) is started again.
        Returns how each newly ended one ended (its last log line)."""
        ended = []
        with self._lock:
            for process in self.workers:
                if process.alive() or process.name in self._killed.keys() | self._ended.keys():
                    continue
                self._ended[process.name] = dt.datetime.now(dt.UTC)
                lines = process.log.read_text(errors="replace").strip().splitlines() or [""]
                ended.append(f"{process.name} exited {process.popen.returncode}: {lines[-1]}")
            while len(self.live_workers()) < self.size.workers:
                self.start_worker()
        return ended

    def worker_backends(self) -> list[tuple[int, str, str]]:
        """(backend pid, application_name, state) of every live worker's database session."""
        with self._admin_connection() as connection:
            rows = connection.execute(
                "SELECT pid, application_name, coalesce(state, '') FROM pg_stat_activity "
                "WHERE application_name LIKE %s",
                (f"{self.tag}-worker-%",),
            ).fetchall()
        return [(int(pid), str(name), str(state)) for pid, name, state in rows]

    def terminate_backend(self, pid: int) -> bool:
        with self._admin_connection() as connection:
            row = connection.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        return bool(row and row[0])

    def _admin_connection(self) -> psycopg.Connection[Any]:
        plain = self.database_url.replace("+psycopg", "").split("?", 1)[0]
        return psycopg.connect(plain, autocommit=True, application_name=f"{self.tag}-harness")

    def stop(self) -> None:
        everything = [*self.replicas, *self.workers]
        for process in everything:
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)
        for process in everything:
            try:
                process.popen.wait(timeout=45)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
        self.db.dispose()


def _worker_started(log: Path) -> bool:
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line).get("message", "")
            if message.startswith("worker ") and message.endswith(" started"):
                return True
    return False


def json_lines(log: Path) -> Iterator[dict[str, Any]]:
    """A JSON log's lines (a process killed mid-line leaves half of one: skipped)."""
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                yield entry


# --- the readers -------------------------------------------------------------------------------


@dataclass
class Failure:
    phase: str
    kind: str  # "error" (no answer, or cut short), "status", "torn"
    path: str
    detail: str
    began: float  # time.monotonic()
    ended: float

    def describe(self) -> str:
        return f"[{self.phase}] {self.kind} {self.path}: {self.detail}"


@dataclass
class PhaseStats:
    requests: int = 0
    unpublished_404: int = 0
    moved_on_404: int = 0  # a file or shard the head no longer held, then read pinned
    latencies: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class _Cached:
    etag: str
    revision: int
    document: dict[str, Any]


class Readers:
    """`count` threads reading repodata, a file, the shard index and a shard of random
    channels, each request through the next replica in turn."""

    def __init__(self, urls: list[str], channels: list[str], count: int, seed: int) -> None:
        self.urls = urls
        self.channels = channels
        self.count = count
        self.seed = seed
        self.published: dict[str, float] = {}  # channel → when it was first known published
        self.stats: dict[str, PhaseStats] = {}
        self.phase = "load"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, phase: str) -> None:
        self.phase = phase
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._read, args=(n,), name=f"reader-{n}", daemon=True)
            for n in range(self.count)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def mark_published(self, channel: str) -> None:
        with self._lock:
            self.published.setdefault(channel, time.monotonic())

    def _read(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        clients = [httpx.Client(base_url=url, timeout=60) for url in self.urls]
        turn = itertools.cycle(range(number, number + len(clients)))
        cache: dict[tuple[str, str], _Cached] = {}
        try:
            while not self._stop.is_set():
                channel = rng.choice(self.channels)
                subdir = rng.choice(SUBDIRS)
                self._once(lambda: clients[next(turn) % len(clients)], rng, cache, channel, subdir)
        finally:
            for client in clients:
                client.close()

    def _once(
        self,
        client: Callable[[], httpx.Client],
        rng: random.Random,
        cache: dict[tuple[str, str], _Cached],
        channel: str,
        subdir: str,
    ) -> None:
        cached = cache.get((channel, subdir))
        # repodata.json comes as the client's Accept-Encoding asks (httpx decodes it), each
        # coding with its own ETag naming the document's sha256.
        headers = {"Accept-Encoding": rng.choice(ENCODINGS)}
        if cached and rng.random() < 0.3:
            headers["If-None-Match"] = cached.etag
        path = f"/api/repo/{channel}/{subdir}/repodata.json"
        response = self._get(client(), path, headers, channel, subdir)
        if response is None:
            return
        revision = int(response.headers.get(REVISION_HEADER, "0"))
        etag = response.headers.get("ETag", "")
        if response.status_code == 304:
            assert cached is not None
            if etag_digest(etag) != etag_digest(cached.etag):
                return self._torn(path, f"304 with ETag {etag}, the client had {cached.etag}")
            current = _Cached(cached.etag, revision, cached.document)
        else:
            digest = hashlib.sha256(response.content).hexdigest()
            if etag_digest(etag) != digest:
                return self._torn(path, f"sha256 {digest} but ETag {etag} (revision {revision})")
            try:
                document = json.loads(response.content)
                assert document["info"]["subdir"] == subdir
                assert isinstance(document["packages.conda"], dict)
            except (ValueError, KeyError, AssertionError, TypeError) as error:
                return self._torn(path, f"not {subdir}'s repodata: {error!r}")
            current = _Cached(etag, revision, document)
        cache[(channel, subdir)] = current
        if subdir == "linux-64" and revision > 0:
            self.mark_published(channel)
        records = {**current.document["packages"], **current.document["packages.conda"]}
        if not records or revision == 0:
            return
        filename = rng.choice(sorted(records))
        record = records[filename]
        path = f"/{subdir}/{filename}"
        got = self._get_or_pinned(client, channel, revision, path, subdir)
        if got is not None:
            digest = hashlib.sha256(got.content).hexdigest()
            if (digest, len(got.content)) != (record["sha256"], record["size"]):
                self._torn(path, f"sha256 {digest} size {len(got.content)}, index: {record}")
        if rng.random() < 0.5:
            self._shards(client, channel, subdir, record["name"], current)

    def _shards(
        self,
        client: Callable[[], httpx.Client],
        channel: str,
        subdir: str,
        name: str,
        repodata: _Cached,
    ) -> None:
        path = f"/api/repo/{channel}/{subdir}/{SHARD_INDEX}"
        response = self._get(client(), path, {}, channel, subdir)
        if response is None or response.status_code != 200:
            return
        revision = int(response.headers.get(REVISION_HEADER, "0"))
        digest = hashlib.sha256(response.content).hexdigest()
        if etag_digest(response.headers.get("ETag", "")) != digest:
            return self._torn(path, f"sha256 {digest} but ETag {response.headers.get('ETag')}")
        try:
            index = _decode_zst_msgpack(response.content)
            shards = {key: bytes(value).hex() for key, value in index["shards"].items()}
        except (ValueError, KeyError, TypeError, msgspec.DecodeError, zstandard.ZstdError) as error:
            return self._torn(path, f"not a shard index: {error!r}")
        if name not in shards:
            if revision == repodata.revision:
                self._torn(path, f"revision {revision} has no shard for {name}")
            return
        shard_path = f"/{subdir}/shards/{shards[name]}.msgpack.zst"
        shard = self._get_or_pinned(client, channel, revision, shard_path, subdir)
        if shard is None:
            return
        if hashlib.sha256(shard.content).hexdigest() != shards[name]:
            return self._torn(shard_path, "content does not match its name")
        try:
            document = _decode_zst_msgpack(shard.content)
            files = {
                filename: bytes(entry["sha256"]).hex()
                for key in ("packages", "packages.conda")
                for filename, entry in document[key].items()
            }
        except (ValueError, KeyError, TypeError, msgspec.DecodeError, zstandard.ZstdError) as error:
            return self._torn(shard_path, f"not a shard: {error!r}")
        if revision == repodata.revision:
            listed = {
                filename: entry["sha256"]
                for key in ("packages", "packages.conda")
                for filename, entry in repodata.document[key].items()
                if entry["name"] == name
            }
            if files != listed:
                self._torn(shard_path, f"shard {files} but repodata {listed} at {revision}")

    def _get_or_pinned(
        self,
        client: Callable[[], httpx.Client],
        channel: str,
        revision: int,
        path: str,
        subdir: str,
    ) -> httpx.Response | None:
        """What an index named, as a client asks for it (the plain URL: the head's, answered
        from the replica's memory); if the head has moved on and no longer holds it, at the
        revision that named it (`<channel>@<n>`), which must answer."""
        plain = f"/api/repo/{channel}{path}"
        response = self._get(client(), plain, {}, channel, subdir, moved_on=True)
        if response is not None or self._stop.is_set():
            return response
        return self._get(client(), f"/api/repo/{channel}@{revision}{path}", {}, channel, subdir)

    def _get(
        self,
        client: httpx.Client,
        path: str,
        headers: dict[str, str],
        channel: str,
        subdir: str,
        *,
        moved_on: bool = False,
    ) -> httpx.Response | None:
        """The answer when it is 200 or 304; None (recorded as a failure, or as the expected
        404) otherwise."""
        phase = self.phase
        began = time.monotonic()
        with self._lock:
            known = self.published.get(channel)
        unpublished = known is None or began - known < HEAD_STALENESS
        try:
            response = client.get(path, headers=headers)
        except httpx.HTTPError as error:
            self._record(phase, began, Failure(phase, "error", path, repr(error), began, 0))
            return None
        status = response.status_code
        if status in (200, 304):
            self._record(phase, began)
            return response
        if status == 404 and unpublished and subdir == "linux-64" and "@" not in path:
            self._record(phase, began, expected_404=True)
            return None
        if status == 404 and moved_on:  # the head no longer holds it: asked again, pinned
            self._record(phase, began, moved_on=True)
            return None
        detail = f"{status} from {client.base_url}: {response.text[:300]}"
        self._record(phase, began, Failure(phase, "status", path, detail, began, 0))
        return None

    def _record(
        self,
        phase: str,
        began: float,
        failure: Failure | None = None,
        *,
        expected_404: bool = False,
        moved_on: bool = False,
    ) -> None:
        ended = time.monotonic()
        with self._lock:
            stats = self.stats.setdefault(phase, PhaseStats())
            stats.requests += 1
            stats.latencies.append(ended - began)
            stats.unpublished_404 += expected_404
            stats.moved_on_404 += moved_on
            if failure is not None:
                failure.ended = ended
                stats.failures.append(failure)

    def _torn(self, path: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            stats = self.stats.setdefault(self.phase, PhaseStats())
            stats.failures.append(Failure(self.phase, "torn", path, detail, now, now))


ENCODINGS = ("identity", "gzip", "zstd", "gzip, deflate, zstd")


def etag_digest(etag: str) -> str:
    """The sha256 an ETag names: `"<sha256>"`, or `"<sha256>-gzip"`, `"<sha256>-zstd"` for a
    coding of the same document."""
    tag = etag.strip().removeprefix("W/").strip('"')
    for suffix in ("-gzip", "-zstd"):
        tag = tag.removesuffix(suffix)
    return tag


def intact(key: str, body: bytes) -> bool:
    """Whether a blob holds what its key names: a package's bytes hash to it, as do an index's
    repodata.json, its .zst, the shard index and the shard pack; the .gz is repodata.json
    gzipped, named by the document's digest."""
    name = key.rsplit("/", 1)[1]
    digest, _, kind = name.partition(".")
    if kind == "json.gz":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return False
    return hashlib.sha256(body).hexdigest() == digest


def _decode_zst_msgpack(content: bytes) -> Any:
    return msgspec.msgpack.decode(zstandard.ZstdDecompressor().decompressobj().decompress(content))


# --- the scenario ------------------------------------------------------------------------------


@dataclass
class RoundResult:
    phase: str
    runs: dict[int, int]  # mirror index → run id
    states: dict[int, tuple[str, str | None]]  # run id → (state, error)
    seconds: float


@dataclass
class Report:
    size: Size
    seed: int
    rounds: list[RoundResult] = field(default_factory=list)
    reads: dict[str, PhaseStats] = field(default_factory=dict)
    outages: list[tuple[float, float]] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # every invariant broken
    collected: dict[str, Any] = field(default_factory=dict)
    bucket_keys: int = 0
    log_errors: Counter[str] = field(default_factory=Counter)
    worker_exits: list[str] = field(default_factory=list)  # workers that ended by themselves
    reaped_alive: list[str] = field(default_factory=list)  # runs reaped, their worker alive
    seconds: dict[str, float] = field(default_factory=dict)

    def runs_by_state(self, phase: str | None = None) -> Counter[str]:
        return Counter(
            state
            for result in self.rounds
            if phase is None or result.phase == phase
            for state, _ in result.states.values()
        )

    def failed_reasons(self) -> Counter[str]:
        return Counter(
            _reason(error)
            for result in self.rounds
            for state, error in result.states.values()
            if state == "failed"
        )

    def expected_failures(self) -> list[Failure]:
        """Failures of requests that overlapped an S3 outage (with its margin)."""
        return [f for f in self._failures() if f.kind != "torn" and self._in_outage(f)]

    def unexpected_failures(self) -> list[Failure]:
        return [f for f in self._failures() if f.kind == "torn" or not self._in_outage(f)]

    def _failures(self) -> list[Failure]:
        return [failure for stats in self.reads.values() for failure in stats.failures]

    def _in_outage(self, failure: Failure) -> bool:
        return any(
            failure.began <= end + OUTAGE_MARGIN and failure.ended >= start
            for start, end in self.outages
        )

    def requests(self) -> int:
        return sum(stats.requests for stats in self.reads.values())

    def latency(self, quantile: float, phase: str | None = None) -> float:
        values = sorted(
            value
            for name, stats in self.reads.items()
            if phase is None or name == phase
            for value in stats.latencies
        )
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(quantile * len(values)))]

    def summary(self) -> dict[str, Any]:
        return {
            "size": self.size.__dict__,
            "seed": self.seed,
            "requests": {name: stats.requests for name, stats in self.reads.items()},
            "unpublished_404": sum(stats.unpublished_404 for stats in self.reads.values()),
            "moved_on_404": sum(stats.moved_on_404 for stats in self.reads.values()),
            "failures": len(self.unexpected_failures()),
            "failures_during_s3_outage": len(self.expected_failures()),
            "p50_ms": {name: round(self.latency(0.5, name) * 1000, 1) for name in self.reads},
            "p99_ms": {name: round(self.latency(0.99, name) * 1000, 1) for name in self.reads},
            "runs": {
                phase: dict(self.runs_by_state(phase))
                for phase in dict.fromkeys(result.phase for result in self.rounds)
            },
            "failed_reasons": dict(self.failed_reasons().most_common()),
            "faults": dict(self.faults),
            "outage_seconds": [round(end - start, 1) for start, end in self.outages],
            "collected": self.collected,
            "bucket_keys": self.bucket_keys,
            "log_errors": dict(self.log_errors.most_common(15)),
            "worker_exits": [exit[:400] for exit in self.worker_exits],
            "reaped_alive": [reaped[:600] for reaped in self.reaped_alive],
            "seconds": {name: round(value, 1) for name, value in self.seconds.items()},
            "problems": self.problems,
            "failure_samples": [failure.describe() for failure in self._failures()[:10]],
        }


def _reason(error: str | None) -> str:
    """An error without its ids and times, to count alike ones together."""
    shown = re.sub(r"\b[\w.-]+:\d+:[0-9a-f-]+:[0-9a-f]+\b", "<worker>", error or "")
    shown = re.sub(r"\d{4}-\d\d-\d\dT[\d:+.]+", "<time>", shown)
    shown = re.sub(r"http://127\.0\.0\.1:\d+/\S*", "<url>", shown)
    shown = re.sub(r"\(Background on this error at: [^)]*\)", "", shown)
    return re.sub(r"\d+", "N", shown)[:160]


class Scenario:
    def __init__(
        self,
        base: Path,
        database_url: str,
        s3: S3Service,
        size: Size,
        *,
        seed: int = 13,
        say: Callable[[str], None] = say_nothing,
    ) -> None:
        self.base = base
        self.database_url = database_url
        self.s3 = s3
        self.size = size
        self.say = say
        self.rng = random.Random(seed)
        self.report = Report(size, seed)
        self.bucket = s3.new_bucket()
        self.channels = Channels(base / "upstream", size.mirrors)
        self.cluster = Cluster(base / "cluster", database_url, s3.settings(self.bucket), size)
        self.mirrors: list[tuple[str, int]] = []  # (channel, mirror id)
        self.apis: list[httpx.Client] = []
        self.readers: Readers | None = None
        self.upstream: Upstream | None = None
        self._clock = time.monotonic()

    def _lap(self, name: str) -> None:
        now = time.monotonic()
        self.report.seconds[name] = now - self._clock
        self._clock = now
        self.say(f"{name}: {self.report.seconds[name]:.1f} s")

    def problem(self, message: str) -> None:
        self.report.problems.append(message)
        self.say(f"PROBLEM: {message}")

    def run(self) -> Report:
        self.channels.advance()
        with serve_directory(self.channels.root) as upstream:
            self.upstream = upstream
            try:
                self.cluster.start()
                self._lap("start")
                self._set_up()
                self._lap("set up")
                self._scenario()
            finally:
                if self.readers is not None:
                    self.readers.stop()
                    self.report.reads = self.readers.stats
                for api in self.apis:
                    api.close()
                self.cluster.stop()
                self._read_logs()
        return self.report

    def _set_up(self) -> None:
        token = _login(self.cluster.replicas[0].url)
        self.apis = [
            httpx.Client(base_url=process.url, headers={"X-Auth": token}, timeout=60)
            for process in self.cluster.replicas
        ]
        assert self.upstream is not None
        for index in range(self.size.mirrors):
            api = self.apis[index % len(self.apis)]
            channel = self.channels.name(index)
            created = api.post("/api/channels", json={"name": channel})
            assert created.status_code == 201, created.text
            mirror = api.post(
                f"/api/channels/{channel}/mirrors",
                json={
                    "mirror_name": "upstream",
                    "source_root": f"{self.upstream.url}{channel}/",
                    "mirror_mode": "active",
                    "filters": {"subdirs": list(SUBDIRS)},
                },
            )
            assert mirror.status_code == 201, mirror.text
            self.mirrors.append((channel, int(mirror.json()["id"])))
        self.readers = Readers(
            [process.url for process in self.cluster.replicas],
            [channel for channel, _ in self.mirrors],
            self.size.readers,
            self.rng.randrange(1 << 30),
        )

    def _scenario(self) -> None:
        assert self.readers is not None
        self.readers.start("load")
        for number in range(self.size.load_rounds):
            if number:
                self.channels.advance()
            self._round("load", must_complete=True)
        self._lap("load")

        self.readers.phase = "faults"
        for _ in range(self.size.fault_rounds):
            self.channels.advance()
            self._slow_new_files()
            self._round("faults", must_complete=False, faults=True)
        assert self.upstream is not None
        self.upstream.faults.clear()
        self._supervise()
        self._lap("faults")

        self.readers.phase = "after faults"
        self.channels.advance()
        self._round("after faults", must_complete=True)
        self.readers.stop()
        self._lap("round after faults")

        self._job("revision-prune")
        collected = self._job("blob-collect")
        self.report.collected = (collected.get("report") or {}).get("collected", {})
        self._check_bucket()
        self._lap("prune, collect, check the bucket")

        self.readers.start("after collection")
        self.channels.advance()
        self._round("after collection", must_complete=True)
        self.readers.stop()
        self._audit_heads()
        self._check_runs()
        self._lap("round after collection, audit")

    # --- rounds ---

    def _round(self, phase: str, *, must_complete: bool, faults: bool = False) -> None:
        started = time.monotonic()
        runs: dict[int, int] = {}
        for index, (channel, mirror_id) in enumerate(self.mirrors):
            api = self.apis[index % len(self.apis)]
            response = api.post(f"/api/channels/{channel}/mirrors/{mirror_id}/run")
            if response.status_code != 202:
                self.problem(f"run of {channel} refused: {response.status_code} {response.text}")
                continue
            runs[index] = int(response.json()["id"])
        injector = _Faults(self) if faults else None
        if injector is not None:
            injector.start()
        try:
            states = self._wait(list(runs.values()))
        finally:
            if injector is not None:
                injector.stop()
        result = RoundResult(phase, runs, states, time.monotonic() - started)
        self.report.rounds.append(result)
        assert self.readers is not None
        for index, run_id in runs.items():
            state, error = states[run_id]
            if state == "completed":
                self.readers.mark_published(self.mirrors[index][0])
            elif state == "failed" and not (error or "").strip():
                self.problem(f"run {run_id} failed without a reason")
            if state not in ("completed", "failed"):
                self.problem(f"run {run_id} still {state} after the round's timeout")
            elif must_complete and state != "completed":
                self.problem(f"run {run_id} ({phase}) failed: {error}")
        counts = Counter(state for state, _ in states.values())
        self.say(f"round ({phase}): {dict(counts)} in {result.seconds:.1f} s")

    def _wait(self, run_ids: list[int]) -> dict[int, tuple[str, str | None]]:
        deadline = time.monotonic() + self.size.round_timeout
        while True:
            self._supervise()
            with self.cluster.db.reading() as session:
                rows = session.execute(
                    text("SELECT id, state, error FROM runs WHERE id = ANY(:ids)"),
                    {"ids": run_ids},
                ).all()
            states = {int(row[0]): (str(row[1]), row[2]) for row in rows}
            if all(state in ("completed", "failed") for state, _ in states.values()):
                return states
            if time.monotonic() > deadline:
                return states
            time.sleep(0.2)

    def _slow_new_files(self) -> None:
        """Runs of fault rounds take a while downloading, so that faults find them at work."""
        assert self.upstream is not None
        self.upstream.faults.clear()
        for path in self.channels.new_files:
            self.upstream.faults[path] = Fault(delay=self.size.file_delay)

    def _supervise(self) -> None:
        for ended in self.cluster.supervise():
            self.report.faults["worker exited by itself (restarted)"] += 1
            self.report.worker_exits.append(ended)
            self.say(f"restarted: {ended[:300]}")

    def _job(self, kind: str) -> dict[str, Any]:
        api = self.apis[0]
        queued = api.post("/api/jobs", json={"kind": kind})
        if queued.status_code != 202:
            self.problem(f"{kind} refused: {queued.status_code} {queued.text}")
            return {}
        run_id = int(queued.json()["id"])
        self._wait([run_id])
        job: dict[str, Any] = api.get(f"/api/jobs/{run_id}").json()
        if job["state"] != "completed":
            self.problem(f"{kind} run {run_id} ended {job['state']}: {job.get('error')}")
        return job

    # --- checks ---

    def _check_bucket(self) -> None:
        """After the collection: every key has its row and is referenced, every row its key
        (of the same size), every package blob hashes to its key, every reference its bytes."""
        client = self.s3.client()
        stored: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                stored[item["Key"]] = int(item["Size"])
        self.report.bucket_keys = len(stored)
        with self.cluster.db.reading() as session:
            rows = {key: int(size) for key, size in session.execute(select(Blob.key, Blob.size))}
            totals = blobs.totals(session)
            named = {content_key(sha) for sha in session.scalars(select(PackageFile.sha256))}
            named |= {
                content_key(sha)
                for sha in session.scalars(select(PackageFile.metadata_sha256))
                if sha is not None
            }
            for index in session.scalars(select(RevisionIndex)):
                named |= artifact_keys(index)
        for key in sorted(stored.keys() - rows.keys())[:20]:
            self.problem(f"bucket key {key} has no blobs row after the collection")
        for key in sorted(rows.keys() - stored.keys())[:20]:
            self.problem(f"blobs row {key} has no bytes in the bucket")
        for key in sorted(stored.keys() & rows.keys()):
            if stored[key] != rows[key]:
                self.problem(f"{key}: {stored[key]} bytes stored, {rows[key]} recorded")
        if totals.unreferenced:
            self.problem(f"{totals.unreferenced} unreferenced blobs after a collection, grace 0")
        for key in sorted(named - stored.keys())[:20]:
            self.problem(f"{key} is referenced but not in the bucket")
        for key in sorted(stored):
            if key.endswith(".directory"):
                continue  # named by the artifact it locates: nothing to check it against
            body = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            if not intact(key, body):
                self.problem(f"{key} holds bytes its name does not (half-written?)")

    def _audit_heads(self) -> None:
        """Every channel's head, read whole through the replicas: indexes and every file."""
        with self.cluster.db.reading() as session:
            heads = {
                str(name): int(head)
                for name, head in session.execute(text("SELECT name, head FROM channels"))
            }
        deadline = time.monotonic() + HEAD_STALENESS
        urls = [process.url for process in self.cluster.replicas]
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(httpx.Client(base_url=url, timeout=60)) for url in urls]
            for channel, _ in self.mirrors:
                for subdir in SUBDIRS:
                    for client in clients:
                        self._audit(client, channel, subdir, int(heads[channel]), deadline)

    def _audit(
        self, client: httpx.Client, channel: str, subdir: str, head: int, deadline: float
    ) -> None:
        while True:
            response = client.get(f"/api/repo/{channel}/{subdir}/repodata.json")
            revision = int(response.headers.get(REVISION_HEADER, "0"))
            if revision >= head or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # this replica still shows the head before the last round's
        where = f"{channel}/{subdir} at {client.base_url}"
        if response.status_code != 200:
            return self.problem(f"{where}: repodata answered {response.status_code}")
        if revision != head:
            self.problem(f"{where}: revision {revision} served, the head is {head}")
        digest = hashlib.sha256(response.content).hexdigest()
        if etag_digest(response.headers.get("ETag", "")) != digest:
            self.problem(f"{where}: repodata's ETag is not its sha256")
        document = response.json()
        records = {**document["packages"], **document["packages.conda"]}
        expected = {
            filename
            for (index, folder), listed in self.channels._records.items()
            if self.channels.name(index) == channel and folder == subdir
            for filename in listed
        }
        if set(records) != expected:
            self.problem(f"{where}: head lists {sorted(records)}, not {sorted(expected)}")
        for filename, record in records.items():
            for path in (
                f"{channel}/{subdir}/{filename}",
                f"{channel}@{revision}/{subdir}/{filename}",
            ):
                got = client.get(f"/api/repo/{path}")
                if got.status_code != 200:
                    self.problem(f"{path} at {client.base_url}: {got.status_code}")
                elif hashlib.sha256(got.content).hexdigest() != record["sha256"]:
                    self.problem(f"{path} at {client.base_url}: wrong bytes")

    def _check_runs(self) -> None:
        """Every run claimed once, started once, by the worker that holds it; no two runs of
        one mirror running at once; only completed runs made revisions, one each."""
        with self.cluster.db.reading() as session:
            runs = session.execute(
                text(
                    "SELECT id, mirror_id, state, error, worker_id, started_at, finished_at, kind "
                    "FROM runs ORDER BY id"
                )
            ).all()
            claims = {
                int(run_id): int(count)
                for run_id, count in session.execute(
                    text(
                        "SELECT run_id, count(*) FROM run_log_lines "
                        "WHERE message LIKE 'claimed by worker %' GROUP BY run_id"
                    )
                )
            }
            made = session.execute(
                text(
                    "SELECT run_id, count(*) FROM channel_revisions "
                    "WHERE run_id IS NOT NULL GROUP BY run_id"
                )
            ).all()
        started: Counter[int] = Counter()
        started_by: dict[int, str] = {}
        for process in self.cluster.workers:
            for entry in json_lines(process.log):
                run_id = entry.get("run_id")
                if run_id is not None and str(entry.get("message", "")).endswith(
                    f"run {run_id} started"
                ):
                    started[int(run_id)] += 1
                    started_by[int(run_id)] = str(entry.get("worker_id"))
        state = {int(row.id): row.state for row in runs}
        self._reaped_alive(list(runs))
        for row in runs:
            if row.state not in ("completed", "failed"):
                self.problem(f"run {row.id} ({row.kind}) is still {row.state} at the end")
            if row.state == "failed" and not (row.error or "").strip():
                self.problem(f"run {row.id} failed without a reason")
            if row.worker_id is not None:
                if claims.get(row.id, 0) != 1:
                    self.problem(f"run {row.id} was claimed {claims.get(row.id, 0)} times")
                if started[row.id] > 1:
                    self.problem(f"run {row.id} was started {started[row.id]} times")
                if row.id in started_by and started_by[row.id] != row.worker_id:
                    self.problem(
                        f"run {row.id} started by {started_by[row.id]}, claimed by {row.worker_id}"
                    )
            elif started[row.id]:
                self.problem(f"run {row.id} was started but never claimed")
        by_mirror: dict[int, list[Any]] = {}
        for row in runs:
            if row.mirror_id is not None and row.started_at is not None:
                by_mirror.setdefault(row.mirror_id, []).append(row)
        for mirror_id, mine in by_mirror.items():
            mine.sort(key=lambda row: row.started_at)
            for before, after in itertools.pairwise(mine):
                if before.finished_at is None or before.finished_at > after.started_at:
                    self.problem(
                        f"mirror {mirror_id}: run {after.id} started at {after.started_at} "
                        f"while run {before.id} was running (until {before.finished_at})"
                    )
        for run_id, count in made:
            if state.get(int(run_id)) != "completed":
                self.problem(f"run {run_id} ({state.get(int(run_id))}) made a revision")
            if count != 1:
                self.problem(f"run {run_id} made {count} revisions")

    def _reaped_alive(self, runs: list[Any]) -> None:
        """Runs failed for their heartbeats whose worker was neither killed nor ended: what
        its log says of them (a run is reaped after HEARTBEAT_TIMEOUT when its worker lost the
        run without recording how it ended)."""
        owners: dict[str, Process] = {}
        for process in self.cluster.workers:
            for entry in json_lines(process.log):
                if entry.get("worker_id"):
                    owners[str(entry["worker_id"])] = process
        gone = {**self.cluster._killed, **self.cluster._ended}
        for row in runs:
            if row.state != "failed" or "stopped sending heartbeats" not in (row.error or ""):
                continue
            owner = owners.get(str(row.worker_id))
            if owner is None or (owner.name in gone and gone[owner.name] <= row.finished_at):
                continue  # reaped after its worker was gone: what reaping is for
            said = [
                f"{entry.get('message')} | {str(entry.get('exception', '')).splitlines()[-1:]}"
                for entry in json_lines(owner.log)
                if entry.get("level") in ("WARNING", "ERROR")
                and (entry.get("run_id") == row.id or "unexpected error" in entry["message"])
            ]
            self.report.reaped_alive.append(f"run {row.id} ({owner.name}): {said[-3:]}")

    def _read_logs(self) -> None:
        """ERROR-level lines of every process, counted by their first line."""
        for process in [*self.cluster.replicas, *self.cluster.workers]:
            for entry in json_lines(process.log):
                if entry.get("level") in ("ERROR", "CRITICAL"):
                    first = str(entry.get("message", "")).splitlines()[0][:100]
                    cause = str(entry.get("exception", "")).strip().splitlines()[-1:] or [""]
                    self.report.log_errors[f"{process.role}: {first} | {cause[0][:120]}"] += 1


class _Faults:
    """While a round's runs are under way: every `fault_interval` a worker running a run is
    killed (and replaced) or a worker's database session is cut, in turn; and once, the S3
    endpoint goes away for `outage` seconds."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.cluster = scenario.cluster
        self.rng = scenario.rng
        self._stop = threading.Event()
        self._kills = scenario.size.kills
        self._threads = [
            threading.Thread(target=self._inject, name="faults", daemon=True),
            threading.Thread(target=self._outage, name="s3-outage", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _inject(self) -> None:
        actions = itertools.cycle((self._kill, self._cut, self._cut))
        while not self._stop.wait(self.scenario.size.fault_interval):
            try:
                next(actions)()
            except Exception as error:  # a fault that could not be made is not the test's end
                self.scenario.say(f"fault not injected: {error!r}")

    def _running(self) -> list[tuple[int, str]]:
        with self.cluster.db.reading() as session:
            rows = session.execute(
                text("SELECT id, worker_id FROM runs WHERE state = 'running'")
            ).all()
        return [(int(run_id), str(worker)) for run_id, worker in rows if worker]

    def _kill(self) -> None:
        running = self._running()
        if not running or self._kills <= 0:
            return self._cut()
        self._kills -= 1
        _, worker_id = self.rng.choice(running)
        victim = self.cluster.worker_by_pid(int(worker_id.split(":")[1]))
        if victim is None:
            return
        self.cluster.kill(victim)
        self.scenario.report.faults["worker killed"] += 1

    def _cut(self) -> None:
        backends = self.cluster.worker_backends()
        if not backends:
            return
        busy = [b for b in backends if b[2] in ("active", "idle in transaction")]
        pid, _, state = self.rng.choice(busy or backends)
        if self.cluster.terminate_backend(pid):
            self.scenario.report.faults[f"connection cut ({state or 'unknown'})"] += 1

    def _outage(self) -> None:
        if self._stop.wait(0.5):
            return
        s3 = self.scenario.s3
        began = time.monotonic()
        s3.stop()
        try:
            self._stop.wait(self.scenario.size.outage)
        finally:
            s3.start()
            self.scenario.report.outages.append((began, time.monotonic()))
            self.scenario.report.faults["s3 outage"] += 1


def _login(url: str) -> str:
    response = httpx.post(
        url + "/api/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=60
    )
    response.raise_for_status()
    return str(response.json()["token"])


def run_scenario(
    base: Path,
    database_url: str,
    s3: S3Service,
    size: Size,
    *,
    seed: int = 13,
    say: Callable[[str], None] = say_nothing,
) -> Report:
    return Scenario(base, database_url, s3, size, seed=seed, say=say).run()


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A database URL whose tables live in a schema of their own, dropped afterwards (the
    benchmark's `postgres_url`, as tests/conftest.py makes it)."""
    schema = f"hw_{uuid.uuid4().hex[:12]}"
    plain = url.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_query(url, "options", f"-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
