"""What a run is doing right now, kept in memory by the run and written out by its heartbeat."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from headwater.metrics import UPSTREAM_BYTES

COUNTERS = ("seen", "added", "removed", "unchanged", "excluded", "downloaded", "bytes_downloaded")
# A step's rate is measured over the samples of this many recent seconds: long enough to smooth
# the bursts of concurrent downloads, short enough to follow an upstream that slows down.
RATE_WINDOW = 10.0


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    level: str
    message: str


@dataclass(frozen=True)
class Pace:
    """How the current step goes: when it started, the bytes it downloaded, its rate over the
    last `RATE_WINDOW` seconds, and from that rate the time it has left (by bytes when it
    knows how many it expects, else by the things it counts; None while not known)."""

    started_at: dt.datetime
    bytes_done: int
    bytes_per_second: float | None
    eta_seconds: float | None


@dataclass
class Snapshot:
    step: str
    progress: tuple[int, int, int]  # done and total of the step, and the bytes it expects
    counters: dict[str, int]
    excluded_reasons: dict[str, int]
    log_lines: list[LogEntry] = field(default_factory=list)
    # (sha256, upstream, size) of blobs downloaded and verified since the last drain
    deliveries: list[tuple[str, str, int]] = field(default_factory=list)
    pace: Pace | None = None


class RunProgress:
    """Thread-safe: the run updates it from its event loop, the heartbeat thread drains it. Each
    drain samples the step, so its pace is measured at the heartbeat's cadence; `clock` (the
    monotonic clock) is for tests."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, window: float = RATE_WINDOW
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._window = window
        # Held from a drain until what it drained is committed (the heartbeat, the landing
        # transaction): a reader who sees the run completed then sees its whole log.
        self.flushing = threading.Lock()
        self._step = "starting"
        self._done = 0
        self._total = 0
        self._bytes_total = 0
        self._counters: Counter[str] = Counter()
        self._excluded: Counter[str] = Counter()
        self._log: list[LogEntry] = []
        self._deliveries: list[tuple[str, str, int]] = []
        self._step_started_at = dt.datetime.now(dt.UTC)
        self._bytes_at_step = 0  # bytes_downloaded when the step began
        # (clock, bytes of the step, things done) at the step's start and at each drain since
        self._samples: deque[tuple[float, int, int]] = deque([(clock(), 0, 0)])

    def step(self, name: str, total: int = 0, bytes_total: int = 0) -> None:
        """A new step, with how many things it does and (downloading) how many bytes."""
        with self._lock:
            self._step = name
            self._done = 0
            self._total = total
            self._bytes_total = bytes_total
            self._step_started_at = dt.datetime.now(dt.UTC)
            self._bytes_at_step = self._counters["bytes_downloaded"]
            self._samples = deque([(self._clock(), 0, 0)])
            self._log.append(LogEntry(self._step_started_at, "info", name))

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self._done += amount

    def count(self, counter: str, amount: int = 1) -> None:
        assert counter in COUNTERS, counter
        with self._lock:
            self._counters[counter] += amount
        if counter == "bytes_downloaded":
            UPSTREAM_BYTES.inc(amount)  # the process's /metrics, as the bytes arrive

    def set_count(self, counter: str, value: int) -> None:
        assert counter in COUNTERS, counter
        with self._lock:
            self._counters[counter] = value

    def exclude(self, reason: str, amount: int = 1) -> None:
        with self._lock:
            self._excluded[reason] += amount
            self._counters["excluded"] += amount

    def log(self, message: str, level: str = "info") -> None:
        with self._lock:
            self._log.append(LogEntry(dt.datetime.now(dt.UTC), level, message))

    def delivered(self, sha256: str, upstream: str, size: int) -> None:
        """`upstream` delivered the `size` bytes with `sha256`, verified, into the store: the
        database is told at the next heartbeat, or with the publish."""
        with self._lock:
            self._deliveries.append((sha256, upstream, size))

    def restore(self, snapshot: Snapshot) -> None:
        """Put back what a failed write could not store, ahead of newer lines."""
        with self._lock:
            self._log[:0] = snapshot.log_lines
            self._deliveries[:0] = snapshot.deliveries

    def drain(self) -> Snapshot:
        """The current state, taking the log lines written since the last drain."""
        with self._lock:
            lines, self._log = self._log, []
            deliveries, self._deliveries = self._deliveries, []
            return Snapshot(
                step=self._step,
                progress=(self._done, self._total, self._bytes_total),
                counters={name: self._counters[name] for name in COUNTERS},
                excluded_reasons=dict(self._excluded),
                log_lines=lines,
                deliveries=deliveries,
                pace=self._pace(),
            )

    def _pace(self) -> Pace:
        """Samples the step (under the lock) and measures its rates over the window: from the
        newest sample at or before the window's start, so that the whole window counts."""
        now = self._clock()
        bytes_done = self._counters["bytes_downloaded"] - self._bytes_at_step
        samples = self._samples
        samples.append((now, bytes_done, self._done))
        while len(samples) > 1 and samples[1][0] <= now - self._window:
            samples.popleft()
        since, bytes_then, done_then = samples[0]
        elapsed = now - since
        moving = self._bytes_total > 0 or bytes_done > 0
        bytes_rate = (bytes_done - bytes_then) / elapsed if elapsed > 0 and moving else None
        things_rate = (self._done - done_then) / elapsed if elapsed > 0 else None
        return Pace(
            started_at=self._step_started_at,
            bytes_done=bytes_done,
            bytes_per_second=bytes_rate,
            eta_seconds=_time_left(
                (self._bytes_total - bytes_done, bytes_rate) if self._bytes_total else None,
                (self._total - self._done, things_rate) if self._total else None,
            ),
        )


def _time_left(
    by_bytes: tuple[int, float | None] | None, by_things: tuple[int, float | None] | None
) -> float | None:
    """Seconds left: what remains over its rate, by bytes when the step expects bytes (more
    bytes than expected, as after a retried download, leave none), else by things counted;
    None when nothing moved within the window."""
    measure = by_bytes or by_things
    if measure is None:
        return None
    remaining, rate = measure
    if remaining <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return remaining / rate
