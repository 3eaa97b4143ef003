"""The JSON shape of runs and their logs, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from headwater.models import Run, RunLogLine, RunState
from headwater.services.runs import RunDescription
from headwater.upstreams.http import shown_url


class Progress(BaseModel):
    """The current step's progress: things done of its total (0: not counted), and the bytes
    it downloads (`bytes_total` 0 when it downloads nothing; `counters.bytes` is how many came
    in the whole run, `bytes_done` in this step). While the run is running, its pace: bytes per
    second over the last seconds and the seconds it has left, by bytes when the step expects
    bytes, else by things done (None: not known yet)."""

    done: int
    total: int
    bytes_total: int = 0
    bytes_done: int = 0
    step_started_at: dt.datetime | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None

    @classmethod
    def of(cls, run: Run) -> Progress:
        running = run.state == RunState.running
        return cls(
            done=run.progress_done,
            total=run.progress_total,
            bytes_total=run.bytes_expected,
            bytes_done=run.step_bytes_done or 0,
            step_started_at=run.step_started_at,
            bytes_per_second=run.bytes_per_second if running else None,
            eta_seconds=run.eta_seconds if running else None,
        )


class Counters(BaseModel):
    seen: int
    added: int
    removed: int
    unchanged: int
    excluded: int
    downloaded: int
    bytes: int
    dependencies: int = 0  # files taken because kept files depend on them
    missing: int = 0  # files upstream listed but could not deliver, left out (see warnings)


class RunWarning(BaseModel):
    """What a completed run left out: a file upstream lists but answered 404 or 410 for
    (services/missing_files.py). The run completed; the next run asks for the file again."""

    kind: str  # missing_file
    filename: str
    url: str
    status: int
    message: str


class RunCommon(BaseModel):
    """What every run shows, whatever its job."""

    id: int
    state: str
    trigger: str
    requested_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    step: str
    error: str | None
    stop_requested_by: str | None

    @staticmethod
    def fields_of(run: Run) -> dict[str, Any]:
        return {name: getattr(run, name) for name in RunCommon.model_fields}


class RunOut(RunCommon):
    """A mirror's run."""

    mirror_id: int
    mirror_name: str
    progress: Progress
    counters: Counters
    excluded_reasons: dict[str, int]
    # A completed run with warnings completed all the same: "completed with warnings".
    warnings: list[RunWarning] = []

    @classmethod
    def of(cls, run: Run, mirror_name: str) -> RunOut:
        assert run.mirror_id is not None, "a mirror's run"
        warnings = [RunWarning.model_validate(warning) for warning in run.warnings or ()]
        return cls(
            **cls.fields_of(run),
            mirror_id=run.mirror_id,
            mirror_name=mirror_name,
            progress=Progress.of(run),
            counters=Counters(
                seen=run.seen,
                added=run.added,
                removed=run.removed,
                unchanged=run.unchanged,
                excluded=run.excluded,
                downloaded=run.downloaded,
                bytes=run.bytes_downloaded,
                dependencies=((run.report or {}).get("dependencies") or {}).get("taken", 0),
                missing=sum(1 for warning in warnings if warning.kind == "missing_file"),
            ),
            excluded_reasons=dict(run.excluded_reasons or {}),
            warnings=warnings,
        )


class LogLine(BaseModel):
    at: dt.datetime
    level: str
    message: str

    @classmethod
    def of(cls, line: RunLogLine) -> LogLine:
        return cls(at=line.at, level=line.level, message=line.message)


class RunDetail(RunOut):
    channel: str
    log: list[LogLine]
    # The dependency report (services/solvability.py): files taken as dependencies, kept
    # files whose dependencies are missing grouped by the filter that removed them, and the
    # must_install solves. None for runs that made none (failed before, or older runs).
    report: dict[str, Any] | None = None
    # While pending: why it has not started (its place in the queue, what the workers do).
    pending_reason: str | None = None

    @classmethod
    def describe(cls, description: RunDescription) -> RunDetail:
        return cls(
            **RunOut.of(description.run, description.mirror.mirror_name).model_dump(),
            channel=description.channel.name,
            log=[LogLine.of(line) for line in description.log],
            report=description.run.report,
            pending_reason=description.pending_reason,
        )


class JobOut(RunCommon):
    """A run of any kind of job, as administrators see the queue (`GET /api/jobs`)."""

    kind: str
    mirror_id: int | None
    params: dict[str, Any]
    report: dict[str, Any] | None = None  # a garbage collection: what it deleted and reclaimed
    progress: Progress

    @classmethod
    def of(cls, run: Run) -> JobOut:
        return cls(
            **cls.fields_of(run),
            kind=run.kind,
            mirror_id=run.mirror_id,
            params=_shown_params(run.params or {}),
            progress=Progress.of(run),
            report=run.report if run.kind != "mirror" else None,
        )


def _shown_params(params: dict[str, Any]) -> dict[str, Any]:
    """What a job was queued with, as people may see it: URLs without their passwords."""

    def shown(value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            return shown_url(value)
        if isinstance(value, list):
            return [shown(item) for item in value]
        return value

    return {key: shown(value) for key, value in params.items()}


class JobDetail(JobOut):
    """A run of any job with its log."""

    log: list[LogLine]

    @classmethod
    def describe(cls, run: Run, log: list[RunLogLine]) -> JobDetail:
        return cls(**JobOut.of(run).model_dump(), log=[LogLine.of(line) for line in log])
