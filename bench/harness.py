"""Running one mirror run in a fresh process, so wall time and peak memory are its own."""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import backends
from bench.compare import python_path
from headwater.db import Database
from headwater.models import RunTrigger
from headwater.resources import bootstrap, http_policy, open_blob_store, worker_config
from headwater.services import channels, mirrors, runs
from headwater.services.access import decisions, identities, tokens, users
from headwater.services.access.audit import Actor
from headwater.services.access.rules import Action
from headwater.settings import Settings
from headwater.worker.runner import Worker

ROOT = Path(__file__).resolve().parents[1]


def bench_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    """The benchmarks' settings for `data_dir`, on the backends BENCH_DATABASE and BENCH_BLOBS
    ask for (bench/backends.py)."""
    chosen: dict[str, Any] = dict(backends.settings(data_dir))
    if database_url is not None:
        chosen["database_url"] = database_url
    return Settings(
        data_dir=data_dir,
        admin_password="bench",
        upstream_allowlist=("http://127.0.0.1:*",),
        http_timeout=300,
        heartbeat_interval=1.0,
        heartbeat_timeout=600,
        **chosen,
    )


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, unlike ru_maxrss, does not carry over the
    parent's peak through fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AsAdministrator:
    """The benchmarks act as the first administrator, through the same access decisions as
    the REST API: a session token, its identity, and the channel it resolves to."""

    def __init__(self, session: Any, settings: Settings) -> None:
        admin = users.get_user(session, settings.admin_user)
        token = tokens.issue_session(session, admin, ttl_days=1, name="bench")
        session.flush()
        self.session = session
        self.identity = identities.identify(session, token)
        self.actor = Actor(user_id=admin.id, username=admin.username, address="bench")

    def create_channel(self, name: str) -> decisions.ChannelRef:
        channels.create_channel(self.session, name, actor=self.actor)
        self.session.flush()
        return decisions.require_channel(self.session, self.identity, Action.edit_mirrors, name)


def setup_mirror(
    settings: Settings,
    source_root: str,
    filters: dict[str, Any] | None,
    mode: str = "passive",
    mirror_type: str = "conda",
) -> int:
    db, _ = bootstrap(settings)
    with db.writing() as session:
        admin = AsAdministrator(session, settings)
        change = mirrors.create_mirror(
            session,
            admin.create_channel("bench"),
            {
                "mirror_name": "bench",
                "mirror_type": mirror_type,
                "source_root": source_root,
                "mirror_mode": mode,
                "filters": filters,
            },
            policy=http_policy(settings),
            actor=admin.actor,
        )
        return change.mirror.id


def execute_one_run(settings: Settings, mirror_id: int) -> dict[str, Any]:
    """Queue a run of the mirror and execute it in this process; report what it did."""
    db = Database(settings.resolved_database_url)
    with db.writing() as session:
        mirror = session.get(mirrors.Mirror, mirror_id)
        assert mirror is not None
        run = runs.request_run(session, mirror, trigger=RunTrigger.manual, requested_by="bench")
        session.flush()
        run_id = run.id
    worker = Worker(db, open_blob_store(settings), http_policy(settings), worker_config(settings))
    started = time.perf_counter()
    assert worker.run_once()
    wall = time.perf_counter() - started
    with db.reading() as session:
        finished = runs.get_run(session, run_id)
        log = runs.run_log(session, run_id)
        steps = _step_times(log)
        report = {
            "state": finished.state,
            "error": finished.error,
            "wall_s": round(wall, 3),
            "seen": finished.seen,
            "added": finished.added,
            "unchanged": finished.unchanged,
            "excluded": finished.excluded,
            "records_per_s": round(finished.seen / wall) if wall else None,
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "steps_s": steps,
        }
    return report


def _step_times(log: list[Any]) -> dict[str, float]:
    marks = sorted((line.at, line.message) for line in log)
    times: dict[str, float] = {}
    for (at, message), (next_at, _) in itertools.pairwise(marks):
        if message.startswith(
            ("reading", "publishing", "listing", "downloading", "wrote", "rendered")
        ):
            times[message] = round((next_at - at).total_seconds(), 3)
    return times


def in_child(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m <module> <args>` and return the JSON it prints last."""
    env = {**os.environ, "PYTHONPATH": python_path(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", module, *args], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
