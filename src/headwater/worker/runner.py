"""The worker: claim a pending run of any job, execute it with a heartbeat, record how it ended."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from headwater.cves.names import CondaNames
from headwater.db import Database
from headwater.errors import HeadwaterError, RunStoppedError, UpstreamError
from headwater.logs import RunContext, run_context
from headwater.models import JobKind, MirrorType
from headwater.process import is_gone, process_name
from headwater.services import blobs, provenance, runs
from headwater.services.mirror_job import load_job
from headwater.services.progress import RunProgress
from headwater.services.pypi_sync import sync_python_mirror
from headwater.services.retention import prune_all
from headwater.services.sync import sync_conda_mirror
from headwater.storage import BlobStore
from headwater.upstreams.http import HttpPolicy
from headwater.worker.cve_feeds import refresh_feeds

log = logging.getLogger(__name__)

SYNCS = {MirrorType.conda: sync_conda_mirror, MirrorType.python_simple: sync_python_mirror}
# How many times the end of a run is written before it is left to reaping (a dropped
# connection is tried again on a new one).
RECORD_ATTEMPTS = 4


@dataclass(frozen=True)
class WorkerConfig:
    poll_interval: float = 2.0
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 60.0
    staging_sweep_interval: float = 600.0
    staging_grace: float = 3600.0  # a staging file untouched this long belongs to no one
    cve_names: CondaNames = field(default_factory=CondaNames)
    import_limit: int = 1 << 30  # the largest CVE feed a refresh reads (MAX_IMPORT_BYTES)


def new_worker_id() -> str:
    """`host:pid:incarnation:worker`: the process's name (headwater.process), then the worker's."""
    return f"{process_name()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Executes runs one at a time. Several workers, in any processes, can share one database."""

    def __init__(
        self,
        db: Database,
        store: BlobStore,
        policy: HttpPolicy,
        config: WorkerConfig,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.policy = policy
        self.config = config
        self.worker_id = worker_id or new_worker_id()
        self._shutdown = threading.Event()
        self._wake = threading.Event()  # a run was queued in this process, or shutting down
        self._current: _Execution | None = None
        self._next_sweep = time.monotonic() + config.staging_sweep_interval

    def clean_up_after_crashes(self) -> None:
        """At start: fail the runs an ended process of this machine left running, and remove
        the staging files it left, rather than wait for heartbeats to time out."""
        with self.db.writing() as session:
            failed = runs.fail_orphaned_runs(session, is_gone)
        for run_id in failed:
            log.warning("run %s was left running by a process that ended; failed it", run_id)
        self.sweep_staging()

    def sweep_staging(self) -> None:
        """Staging files of ended processes, and any older than every live run and than the
        grace period (a crash on another machine sharing the store)."""
        self._next_sweep = time.monotonic() + self.config.staging_sweep_interval
        with self.db.reading() as session:
            oldest = runs.oldest_running_start(session)
        before = time.time() - self.config.staging_grace
        if oldest is not None:
            before = min(before, oldest.timestamp())
        removed = self.store.staging.sweep(is_gone, before)
        if removed:
            log.info("removed %d staging files left by crashed processes", removed)

    def run_forever(self) -> None:
        try:
            self.clean_up_after_crashes()
        except Exception:
            log.exception(
                "worker %s: cleaning up after a crash failed; carrying on", self.worker_id
            )
        log.info("worker %s started", self.worker_id)  # cleaned up, and claiming from now on
        runs.RUN_QUEUED.subscribe(self._wake)
        try:
            self._claim_until_shutdown()
        finally:
            runs.RUN_QUEUED.unsubscribe(self._wake)
        log.info("worker %s stopped", self.worker_id)

    def _claim_until_shutdown(self) -> None:
        while not self._shutdown.is_set():
            try:
                if time.monotonic() >= self._next_sweep:
                    self.sweep_staging()
                worked = self.run_once()
            except Exception:
                log.exception("worker %s: unexpected error; carrying on", self.worker_id)
                worked = False
            if not worked:
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()

    def shutdown(self) -> None:
        """Stop claiming; a run under way is stopped and recorded as failed."""
        self._shutdown.set()
        self._wake.set()
        execution = self._current
        if execution is not None:
            execution.stop("the worker shut down")

    def run_once(self) -> bool:
        """Reap abandoned runs, then claim and execute one pending run. True if one ran."""
        with self.db.writing() as session:
            reaped = runs.reap_stale_runs(session, timeout=self.config.heartbeat_timeout)
        for run_id in reaped:
            log.warning("run %s was abandoned by its worker and marked failed", run_id)
        if self._shutdown.is_set():
            return False
        with self.db.writing() as session:
            claim = runs.claim_next_run(session, self.worker_id)
        if claim is None:
            return False
        # Every log line of the run, from its loop, its threads and its heartbeat, names it.
        with run_context(
            RunContext(claim.run_id, str(claim.kind), claim.mirror_id, self.worker_id)
        ):
            log.info("%s run %s started", claim.kind, claim.run_id)
            execution = _Execution(self, claim)
            self._current = execution
            try:
                error = execution.execute()
            finally:
                self._current = None
            execution.record(error)
            if error is None:
                log.info("%s run %s completed", claim.kind, claim.run_id)
            else:
                log.warning("%s run %s failed: %s", claim.kind, claim.run_id, error)
        return True


class _Execution:
    """One run on its own event loop, with a heartbeat thread beside it."""

    def __init__(self, worker: Worker, claim: runs.Claim) -> None:
        self.worker = worker
        self.claim = claim
        self.progress = RunProgress()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._stop_reason: str | None = None
        self._stopping = threading.Event()
        self._finished = threading.Event()

    def stop(self, reason: str) -> None:
        """A mirror's run is cancelled where it awaits; a CVE refresh or a pruning, whose work
        runs on a thread that cannot be cancelled, stops once the feed it is importing is in,
        or the channel it is pruning is done."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stopping.set()
        task = self._task
        if self.claim.kind != JobKind.mirror:
            return
        if task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(task.cancel)

    def execute(self) -> str | None:
        """Run to the end on this thread; returns the error to record, None if it completed."""
        beat = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._beat,),
            name=f"heartbeat-{self.claim.run_id}",
            daemon=True,
        )
        beat.start()
        error: str | None = None
        try:
            self._task = self._loop.create_task(self._run())
            if self._stop_reason is not None:
                self._task.cancel()
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            error = f"{self._stop_reason or 'cancelled'}; nothing was published"
        except HeadwaterError as failure:
            error = failure.message
        except (OperationalError, InterfaceError) as failure:  # the database went away midway
            log.warning("run %s lost its database connection", self.claim.run_id)
            error = f"the database could not be reached: {_first_line(failure.orig)}"
        except Exception as failure:  # a bug: record it so the history says what happened
            log.exception("run %s crashed", self.claim.run_id)
            error = f"internal error: {type(failure).__name__}: {failure}"
            self.progress.log(traceback.format_exc(limit=8), "error")
        finally:
            self._finished.set()
            beat.join()
            self._loop.close()
        return error

    async def _run(self) -> None:
        match self.claim.kind:
            case JobKind.mirror:
                await self._mirror()
            case JobKind.cve_refresh:
                await self._refresh_cve_feeds()
            case JobKind.revision_prune:
                await self._prune_revisions()
            case JobKind.blob_collect:
                await self._collect_blobs()

    async def _mirror(self) -> None:
        """A mirror's run completes in its publishing transaction (services/mirror_contents)."""
        worker = self.worker
        assert self.claim.mirror_id is not None
        with worker.db.reading() as session:
            job = load_job(
                session,
                self.claim.run_id,
                worker.worker_id,
                self.claim.mirror_id,
                worker.config.cve_names,
            )
        self.progress.log(
            f"mirroring {job.source_root} into channel {job.channel_name!r} ({job.mode})"
        )
        sync = SYNCS[MirrorType(job.mirror_type)]
        await sync(job, worker.db, worker.store, worker.policy, self.progress)

    async def _refresh_cve_feeds(self) -> None:
        """Each feed the run was queued with, in turn; what imported stays imported whatever
        happens to the others, and a feed that failed fails the run, naming it."""
        worker = self.worker
        feeds = tuple(str(feed) for feed in self.claim.params.get("feeds", ()))
        self.progress.step("importing CVE feeds", total=len(feeds))
        failures = await asyncio.to_thread(
            refresh_feeds,
            worker.db,
            worker.config.cve_names,
            feeds,
            worker.policy,
            worker.config.import_limit,
            self.progress,
            self._stopping,
        )
        if self._stopping.is_set():
            raise RunStoppedError(f"{self._stop_reason}; {runs.LEFT_BEHIND[JobKind.cve_refresh]}")
        if failures:
            failed = f"{len(failures)} of {len(feeds)} CVE feeds failed: "
            raise UpstreamError(failed + "; ".join(failures))
        self._complete()

    async def _prune_revisions(self) -> None:
        """Every channel's revisions past retention; a stop ends it between two channels."""
        kept = int(self.claim.params.get("revisions_kept", 1))
        worker = self.worker
        await asyncio.to_thread(
            prune_all, worker.db, worker.store, kept, self.progress, self._stopping
        )
        if self._stopping.is_set():
            raise RunStoppedError(
                f"{self._stop_reason}; {runs.LEFT_BEHIND[JobKind.revision_prune]}"
            )
        self._complete()

    async def _collect_blobs(self) -> None:
        """Garbage collection: what it deleted and reclaimed is its report; a stop ends it
        between two batches."""
        grace = dt.timedelta(hours=float(self.claim.params.get("grace_hours", 24)))
        worker = self.worker
        collected = await asyncio.to_thread(
            blobs.collect, worker.db, worker.store, grace, self.progress, self._stopping
        )
        if self._stopping.is_set():
            raise RunStoppedError(f"{self._stop_reason}; {runs.LEFT_BEHIND[JobKind.blob_collect]}")
        self._complete(report={"collected": collected.as_dict()})

    def _complete(self, report: dict[str, Any] | None = None) -> None:
        """A job of the deployment completes with its log, under the run's fence."""
        worker = self.worker
        with self.progress.flushing, worker.db.writing() as session:
            snapshot = self.progress.drain()
            runs.add_log_entries(session, self.claim.run_id, snapshot.log_lines)
            completed = runs.complete_run(
                session,
                self.claim.run_id,
                worker.worker_id,
                counters={},
                excluded_reasons={},
                report=report,
            )
            if not completed:
                raise RunStoppedError("the run was stopped or lost its claim")

    def _beat(self) -> None:
        while not self._finished.wait(self.worker.config.heartbeat_interval):
            try:
                with self.progress.flushing:
                    beat = self._write_beat()
            except Exception:
                log.exception("heartbeat of run %s failed; will retry", self.claim.run_id)
                continue
            if not beat.owned:
                self.stop("the run was no longer this worker's (reaped or deleted)")
            elif beat.stop_requested_by:
                self.stop(f"stopped by {beat.stop_requested_by}")

    def _write_beat(self) -> runs.Beat:
        snapshot = self.progress.drain()
        try:
            with self.worker.db.writing() as session:
                beat = runs.heartbeat(
                    session,
                    self.claim.run_id,
                    self.worker.worker_id,
                    step=snapshot.step,
                    progress=snapshot.progress,
                    counters=snapshot.counters,
                    excluded_reasons=snapshot.excluded_reasons,
                    log_lines=snapshot.log_lines,
                    pace=snapshot.pace,
                )
                provenance.record(session, snapshot.deliveries)
        except Exception:
            self.progress.restore(snapshot)
            raise
        return beat

    def record(self, error: str | None) -> None:
        """Write how the run ended: its last log lines, what it downloaded, its failure. A
        connection the database dropped meanwhile (a restart, a failover, a killed session)
        is tried again on a new one: left unwritten, the run would stay running until reaped
        after HEARTBEAT_TIMEOUT, its error and last lines lost, its mirror blocked."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                self._record(error)
                return
            except OperationalError as failure:
                if attempt == RECORD_ATTEMPTS:
                    raise
                log.warning(
                    "recording how run %s ended failed (%s); trying again",
                    self.claim.run_id,
                    str(failure.orig).strip().splitlines()[0] if failure.orig else failure,
                )
                time.sleep(0.5 * attempt)

    def _record(self, error: str | None) -> None:
        with self.progress.flushing:
            snapshot = self.progress.drain()
            try:
                with self.worker.db.writing() as session:
                    runs.record_log(
                        session, self.claim.run_id, self.worker.worker_id, snapshot.log_lines
                    )
                    # What was downloaded and verified stays proven, however the run ended.
                    provenance.record(session, snapshot.deliveries)
                    if error is not None:
                        recorded = runs.fail_run(
                            session, self.claim.run_id, self.worker.worker_id, error
                        )
                        if not recorded:
                            log.warning(
                                "run %s ended (%s) but was no longer ours", self.claim.run_id, error
                            )
            except Exception:
                self.progress.restore(snapshot)  # for the next attempt
                raise


def _first_line(error: BaseException | None) -> str:
    """What a driver said, without the SQL and parameters SQLAlchemy appends."""
    text = str(error).strip() if error is not None else ""
    return text.splitlines()[0][:300] if text else "the connection was closed"
