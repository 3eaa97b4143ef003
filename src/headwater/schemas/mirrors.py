"""The JSON shape of mirrors, shared by the REST API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from headwater.models import Mirror, Run
from headwater.schedule import parse_schedule
from headwater.schemas.runs import Progress, RunOut
from headwater.services import mirrors as mirror_service
from headwater.upstreams.http import shown_url


class MirrorOut(BaseModel):
    id: int
    channel: str
    mirror_name: str
    mirror_type: str
    source_root: str
    mirror_mode: str
    on_missing_file: str  # skip or fail: a file upstream lists but cannot deliver (404, 410)
    cron: str
    cron_description: str
    proxy: str | None
    filters: dict[str, Any]
    state: str | None
    step: str | None
    progress: Progress | None  # the last run's, as in last_run
    next_run_at: dt.datetime | None
    next_runs: list[dt.datetime]
    last_run: RunOut | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, mirror: Mirror, channel: str, latest: Run | None) -> MirrorOut:
        schedule = parse_schedule(mirror.cron)
        last = RunOut.of(latest, mirror.mirror_name) if latest else None
        return cls(
            id=mirror.id,
            channel=channel,
            mirror_name=mirror.mirror_name,
            mirror_type=mirror.mirror_type,
            source_root=mirror.source_root,
            mirror_mode=mirror.mirror_mode,
            on_missing_file=mirror.on_missing_file,
            cron=mirror.cron,
            cron_description=schedule.description(),
            proxy=shown_url(mirror.proxy),  # the proxy's password stays with administrators
            filters=mirror.filters.to_json(),
            state=latest.state if latest else None,
            step=latest.step if latest else None,
            progress=last.progress if last else None,
            next_run_at=mirror.next_run_at,
            next_runs=mirror_service.upcoming_runs(mirror),
            last_run=last,
            created_at=mirror.created_at,
            updated_at=mirror.updated_at,
        )


class MirrorSaved(MirrorOut):
    warnings: list[str]
    run: RunOut | None
