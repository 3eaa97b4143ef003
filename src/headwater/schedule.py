"""Cron schedules of mirrors: validation, next run times, and the human sentence for them."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from cron_descriptor import get_description
from cronsim import CronSim, CronSimError

from headwater.errors import InvalidCronError

DAY = dt.timedelta(days=1)
# How many upcoming runs to inspect when judging whether a schedule fires more than daily;
# a week of hourly firings is enough to catch every pattern a five-field expression can make.
_FREQUENCY_SAMPLE = 200
MAX_CRON_LENGTH = 200  # a form's or query's cron is refused past this, before it is parsed


@dataclass(frozen=True)
class Schedule:
    """A validated five-field cron expression, evaluated in UTC."""

    expression: str

    def next_runs(self, after: dt.datetime, count: int = 1) -> list[dt.datetime]:
        iterator = CronSim(self.expression, after.astimezone(dt.UTC))
        return [moment.astimezone(dt.UTC) for moment in itertools.islice(iterator, count)]

    def next_run(self, after: dt.datetime) -> dt.datetime:
        return self.next_runs(after, 1)[0]

    def shortest_interval(self, after: dt.datetime) -> dt.timedelta:
        # A five-field expression fires at the same times of day on every day it fires, so
        # the first two firing days (the first may be cut short by `after`) show every
        # interval shorter than a day; stopping there bounds the work for rare schedules
        # ('0 0 * 2 5#5' fires once in 28 years: 200 firings would walk 5600 years).
        moments: list[dt.datetime] = []
        days: set[dt.date] = set()
        iterator = CronSim(self.expression, after.astimezone(dt.UTC))
        for moment in itertools.islice(iterator, _FREQUENCY_SAMPLE):
            days.add(moment.date())
            if len(days) > 2:
                break
            moments.append(moment.astimezone(dt.UTC))
        return min((b - a for a, b in itertools.pairwise(moments)), default=DAY)

    def more_frequent_than_daily(self, after: dt.datetime) -> bool:
        return self.shortest_interval(after) < DAY

    def description(self) -> str:
        try:
            return f"{get_description(self.expression)} (UTC)"
        except Exception:  # the sentence is a courtesy; the schedule itself is valid
            return self.expression

    def warnings(self, after: dt.datetime) -> list[str]:
        if not self.more_frequent_than_daily(after):
            return []
        return [
            f"cron {self.expression!r} runs more often than daily. A run of a large upstream "
            "can outlast the interval; runs of one mirror never overlap, so a firing that "
            "comes while a run is still going is skipped."
        ]


def parse_schedule(expression: str) -> Schedule:
    """A Schedule for a five-field cron expression, or InvalidCronError saying what is wrong."""
    if len(expression) > MAX_CRON_LENGTH:  # before parsing: its cost grows with the length
        raise InvalidCronError(
            f"cron has at most {MAX_CRON_LENGTH} characters, not {len(expression)}"
        )
    cleaned = " ".join(expression.split())
    if len(cleaned.split(" ")) != 5:
        raise InvalidCronError(
            f"cron {expression!r} must have five fields: minute hour day-of-month month "
            "day-of-week (for example '0 0 * * *', every day at midnight UTC)"
        )
    try:
        iterator = CronSim(cleaned, dt.datetime.now(dt.UTC))
        next(iterator)
    except (CronSimError, StopIteration) as error:
        reason = str(error) or "it never fires"
        raise InvalidCronError(f"cron {expression!r} is not valid: {reason}") from None
    return Schedule(cleaned)
