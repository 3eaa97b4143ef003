"""Cron schedules: validation, next times, and the more-than-daily warning."""

from __future__ import annotations

import datetime as dt

import pytest

from headwater.errors import InvalidCronError
from headwater.schedule import parse_schedule

NOW = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC)


def test_next_runs_are_in_utc() -> None:
    schedule = parse_schedule("0 0 * * *")
    assert schedule.next_runs(NOW, 2) == [
        dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
    ]
    assert "12:00 AM" in schedule.description() and "UTC" in schedule.description()


@pytest.mark.parametrize(
    ("expression", "frequent"),
    [
        ("0 0 * * *", False),
        ("30 2 * * 1-5", False),
        ("0 0 1 * *", False),
        ("0 0 * * 0", False),
        ("0 */6 * * *", True),
        ("0 0,12 * * *", True),
        ("*/5 * * * *", True),
        ("0 23 * * 1,2", False),
        ("59 23 * * 1", False),
    ],
)
def test_more_frequent_than_daily(expression: str, frequent: bool) -> None:
    schedule = parse_schedule(expression)
    assert schedule.more_frequent_than_daily(NOW) is frequent
    assert bool(schedule.warnings(NOW)) is frequent


@pytest.mark.parametrize(
    ("expression", "frequent"),
    [("0 0 * 2 5#5", False), ("0,30 0 * 2 5#5", True), ("0 0 29 2 *", False)],
)
def test_rare_schedules_are_judged_from_their_first_firing_days(
    expression: str, frequent: bool
) -> None:
    """A schedule that fires once in decades (a fifth Friday in February: every 28 years)
    is judged from its first firing days, not by walking thousands of years of firings."""
    schedule = parse_schedule(expression)
    assert schedule.more_frequent_than_daily(NOW) is frequent
    assert len(schedule.next_runs(NOW, 3)) == 3


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * *", "must have five fields"),
        ("* * * * * *", "must have five fields"),
        ("61 * * * *", "is not valid"),
        ("0 25 * * *", "is not valid"),
        ("0 0 31 2 *", "is not valid"),
        ("x y z a b", "is not valid"),
        ("", "must have five fields"),
    ],
)
def test_invalid_expressions_say_why(expression: str, words: str) -> None:
    with pytest.raises(InvalidCronError, match=words):
        parse_schedule(expression)


def test_whitespace_is_normalised() -> None:
    assert parse_schedule("  0   0 * *  * ").expression == "0 0 * * *"


def test_an_overlong_expression_is_refused_before_it_is_parsed() -> None:
    """A form's cron can be as long as a request body (1 MiB): parsing and describing that
    takes seconds, so a cron longer than any useful one is refused unread."""
    overlong = ",".join(["0"] * 100_000) + " 0 * * *"
    with pytest.raises(InvalidCronError, match="at most 200 characters, not 200007"):
        parse_schedule(overlong)
