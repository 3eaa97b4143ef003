"""The JSON shape of runs and their logs, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from headwater.models import Run, RunLogLine
from headwater.services.runs import RunDescription


class Progress(BaseModel):
    """The current step's progress: things done of its total (0: not counted), and the bytes
    it downloads (`bytes_total` 0 when it downloads nothing; `counters.bytes` is how many came)."""

    done: int
    total: int
    bytes_total: int = 0


class Counters(BaseModel):
    seen: int
    added: int
    removed: int
    unchanged: int
    excluded: int
    downloaded: int
    bytes: int


class RunOut(BaseModel):
    id: int
    mirror_id: int
    mirror_name: str
    state: str
    trigger: str
    requested_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    step: str
    progress: Progress
    counters: Counters
    excluded_reasons: dict[str, int]
    error: str | None
    stop_requested_by: str | None

    @classmethod
    def of(cls, run: Run, mirror_name: str) -> RunOut:
        return cls(
            id=run.id,
            mirror_id=run.mirror_id,
            mirror_name=mirror_name,
            state=run.state,
            trigger=run.trigger,
            requested_by=run.requested_by,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            heartbeat_at=run.heartbeat_at,
            step=run.step,
            progress=Progress(
                done=run.progress_done, total=run.progress_total, bytes_total=run.bytes_expected
            ),
            counters=Counters(
                seen=run.seen,
                added=run.added,
                removed=run.removed,
                unchanged=run.unchanged,
                excluded=run.excluded,
                downloaded=run.downloaded,
                bytes=run.bytes_downloaded,
            ),
            excluded_reasons=dict(run.excluded_reasons or {}),
            error=run.error,
            stop_requested_by=run.stop_requested_by,
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

    @classmethod
    def describe(cls, description: RunDescription) -> RunDetail:
        return cls(
            **RunOut.of(description.run, description.mirror.mirror_name).model_dump(),
            channel=description.channel.name,
            log=[LogLine.of(line) for line in description.log],
        )
