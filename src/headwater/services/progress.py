"""What a run is doing right now, kept in memory by the run and written out by its heartbeat."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, field

COUNTERS = ("seen", "added", "removed", "unchanged", "excluded", "downloaded", "bytes_downloaded")


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    level: str
    message: str


@dataclass
class Snapshot:
    step: str
    progress: tuple[int, int, int]  # done and total of the step, and the bytes it expects
    counters: dict[str, int]
    excluded_reasons: dict[str, int]
    log_lines: list[LogEntry] = field(default_factory=list)
    # (sha256, upstream) of files downloaded and verified since the last drain (provenance)
    deliveries: list[tuple[str, str]] = field(default_factory=list)


class RunProgress:
    """Thread-safe: the run updates it from its event loop, the heartbeat thread drains it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
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
        self._deliveries: list[tuple[str, str]] = []

    def step(self, name: str, total: int = 0, bytes_total: int = 0) -> None:
        """A new step, with how many things it does and (downloading) how many bytes."""
        with self._lock:
            self._step = name
            self._done = 0
            self._total = total
            self._bytes_total = bytes_total
            self._log.append(LogEntry(dt.datetime.now(dt.UTC), "info", name))

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self._done += amount

    def count(self, counter: str, amount: int = 1) -> None:
        assert counter in COUNTERS, counter
        with self._lock:
            self._counters[counter] += amount

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

    def delivered(self, sha256: str, upstream: str) -> None:
        """`upstream` delivered the bytes with `sha256`, verified: the database is told at the
        next heartbeat, or with the publish."""
        with self._lock:
            self._deliveries.append((sha256, upstream))

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
            )
