"""A run's pace: the rate over the recent window and the time left, by bytes or by things,
measured at each drain (the heartbeat) against a clock the test moves."""

from __future__ import annotations

import pytest

from headwater.services.progress import RunProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_rate_is_bytes_over_the_window_and_the_eta_what_is_left_over_it(
    clock: Clock,
) -> None:
    progress = RunProgress(clock=clock, window=10.0)
    progress.count("bytes_downloaded", 5_000)  # an earlier step's bytes are not this step's
    progress.step("downloading", total=4, bytes_total=10_000)
    clock.now += 2
    progress.count("bytes_downloaded", 2_000)
    pace = progress.drain().pace
    assert pace is not None
    assert pace.bytes_done == 2_000
    assert pace.bytes_per_second == pytest.approx(1_000)
    assert pace.eta_seconds == pytest.approx(8)  # 8,000 bytes left at 1,000 per second

    clock.now += 2
    progress.count("bytes_downloaded", 2_000)
    progress.advance(2)
    pace = progress.drain().pace
    assert pace is not None and pace.bytes_done == 4_000
    assert pace.bytes_per_second == pytest.approx(1_000)
    assert pace.eta_seconds == pytest.approx(6)


def test_the_rate_follows_the_last_seconds_not_the_whole_step(clock: Clock) -> None:
    progress = RunProgress(clock=clock, window=10.0)
    progress.step("downloading", total=10, bytes_total=1_000_000)
    for _ in range(10):  # fast at first: 10,000 bytes a second
        clock.now += 1
        progress.count("bytes_downloaded", 10_000)
        progress.drain()
    for _ in range(10):  # then slow: 1,000 a second, for a whole window
        clock.now += 1
        progress.count("bytes_downloaded", 1_000)
        pace = progress.drain().pace
    assert pace is not None
    assert pace.bytes_done == 110_000
    assert pace.bytes_per_second == pytest.approx(1_000)
    assert pace.eta_seconds == pytest.approx(890)

    clock.now += 5  # half a window with nothing: the rate halves, the estimate doubles
    pace = progress.drain().pace
    assert pace is not None and pace.bytes_per_second == pytest.approx(500)
    assert pace.eta_seconds == pytest.approx(1_780)


def test_without_bytes_the_eta_is_by_things_done(clock: Clock) -> None:
    progress = RunProgress(clock=clock)
    progress.step("pruning revisions", total=20)
    clock.now += 4
    progress.advance(5)
    pace = progress.drain().pace
    assert pace is not None
    assert pace.bytes_per_second is None and pace.bytes_done == 0
    assert pace.eta_seconds == pytest.approx(12)  # 15 left at 1.25 a second


def test_what_is_not_known_is_none_and_what_is_done_is_zero(clock: Clock) -> None:
    progress = RunProgress(clock=clock)
    progress.step("listing upstream subdirs")  # counts nothing
    clock.now += 1
    pace = progress.drain().pace
    assert pace is not None and (pace.bytes_per_second, pace.eta_seconds) == (None, None)

    progress.step("downloading", total=2, bytes_total=1_000)
    clock.now += 3  # nothing arrived yet: no estimate rather than an infinite one
    pace = progress.drain().pace
    assert pace is not None and pace.bytes_per_second == 0 and pace.eta_seconds is None

    progress.count("bytes_downloaded", 1_500)  # a retried download counts its bytes again
    clock.now += 1
    pace = progress.drain().pace
    assert pace is not None and pace.eta_seconds == 0


def test_a_step_records_when_it_started(clock: Clock) -> None:
    progress = RunProgress(clock=clock)
    progress.step("downloading", total=1, bytes_total=10)
    first = progress.drain().pace
    progress.step("publishing")
    second = progress.drain().pace
    assert first is not None and second is not None
    assert second.started_at >= first.started_at
    assert second.bytes_done == 0
