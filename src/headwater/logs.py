"""Log lines: tokens kept out of them (the access log writes every request's URL, and a token
can ride in one: /api/repo/t/<token>/…, in any spelling of that path, or by mistake in a
query); the run each line was written for; and their format, text or one JSON object a line."""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import logging
import multiprocessing.util
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import parse_qsl, quote, urlsplit

import orjson

SHOWN = "***"
# What Headwater's tokens look like (secrets.token_urlsafe(32)): 43 URL-safe characters.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{40,}")
_SECRET_PARAMETER = re.compile(r"token|auth|key|secret|pass|session|signature", re.IGNORECASE)


_REMEMBERED_TARGET = 512  # characters: a longer target is redacted each time, not kept


def redact_target(target: str) -> str:
    """A request target (path and query) fit for a log: the segment after `t` in a repository
    path, every value of a parameter whose name suggests a secret, and anything shaped like a
    token are replaced by ***. Clients ask for the same URLs over and over: short ones are
    remembered (4,096 of them, about 4 MiB at most, whatever URLs a caller makes up)."""
    if len(target) <= _REMEMBERED_TARGET:
        return _redacted_remembered(target)
    return _redacted(target)


@functools.lru_cache(maxsize=4096)
def _redacted_remembered(target: str) -> str:
    return _redacted(target)


def _redacted(target: str) -> str:
    parts = urlsplit(target)
    path = _redact_path(parts.path)
    if not parts.query:
        return path
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{_shown_name(name)}={_redact_value(name, value)}" for name, value in pairs)
    return f"{path}?{query}"


def _shown_name(name: str) -> str:
    return SHOWN if _looks_like_token(name) else quote(name, safe="")


def _redact_path(path: str) -> str:
    segments = path.split("/")
    named = [index for index, segment in enumerate(segments) if segment]
    for position, index in enumerate(named):
        segment = segments[index]
        follows_t = (
            position >= 2
            and segments[named[position - 1]] == "t"
            and segments[named[position - 2]] == "repo"
        )
        if follows_t or _looks_like_token(segment):
            segments[index] = SHOWN
    return "/".join(segments)


def _redact_value(name: str, value: str) -> str:
    if _SECRET_PARAMETER.search(name) or _looks_like_token(value):
        return SHOWN
    return quote(value, safe="")


def _looks_like_token(text: str) -> bool:
    """Long runs of URL-safe characters with upper and lower case letters: tokens, not file
    names or hex digests."""
    return any(
        any(c.isupper() for c in run) and any(c.islower() for c in run)
        for run in _TOKEN_LIKE.findall(text)
    )


class RedactTokens(logging.Filter):
    """On uvicorn's access logger: its record's third argument is the request target."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str):
                args[2] = redact_target(args[2])
            record.args = tuple(args)
        return True


def keep_tokens_out_of_access_logs() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactTokens) for existing in access.filters):
        access.addFilter(RedactTokens())


# --- the run a line was written for --------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """The run (a job's execution: its id is the job's id in /api/jobs) a worker is executing."""

    run_id: int
    kind: str  # the job's kind: mirror, cve-refresh, revision-prune
    mirror_id: int | None
    worker_id: str


_CURRENT_RUN: ContextVar[RunContext | None] = ContextVar("headwater_run", default=None)


@contextmanager
def run_context(run: RunContext) -> Iterator[None]:
    """Lines logged inside carry the run: on this thread, the run's event loop and its tasks,
    and the threads `asyncio.to_thread` starts from them (they copy the context). A thread
    started otherwise gets it only when started in `contextvars.copy_context().run`."""
    token = _CURRENT_RUN.set(run)
    try:
        yield
    finally:
        _CURRENT_RUN.reset(token)


def current_run() -> RunContext | None:
    return _CURRENT_RUN.get()


class RunFields(logging.Filter):
    """On a handler: puts the current run on each record (`run_id`, `job_kind`, `mirror_id`,
    `worker_id`, and `run`, " [run N]" or "", for text formats)."""

    def filter(self, record: logging.LogRecord) -> bool:
        run = _CURRENT_RUN.get()
        record.run_id = run.run_id if run else None
        record.job_kind = run.kind if run else None
        record.mirror_id = run.mirror_id if run else None
        record.worker_id = run.worker_id if run else None
        record.run = f" [run {run.run_id}]" if run else ""
        return True


# --- formats -----------------------------------------------------------------------------------

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(run)s: %(message)s"
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
# Headwater's access lines (request_metrics.py); uvicorn's, should it be run with its own on
ACCESS_LOGGER = "headwater.access"
_ACCESS_LOGGERS = frozenset({ACCESS_LOGGER, "uvicorn.access"})


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, the local time of each line as logging.Formatter writes it
    (`2026-12-08 01:02:03,456`), its date and seconds made once a second: an access line is
    written for every request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `time` (UTC, ISO 8601), `level`, `logger`, `message`; `run_id`,
    `job_kind`, `mirror_id`, `worker_id` for lines written for a run; the request's fields for
    uvicorn's access lines; `exception` (its traceback) where there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None)
        if run_id is not None:
            entry["run_id"] = run_id
            entry["job_kind"] = getattr(record, "job_kind", None)
            entry["mirror_id"] = getattr(record, "mirror_id", None)
            entry["worker_id"] = getattr(record, "worker_id", None)
        if (
            record.name in _ACCESS_LOGGERS
            and isinstance(record.args, tuple)
            and len(record.args) == len(_ACCESS_FIELDS)
        ):
            entry.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()

    _second = -1
    _stamp = ""

    def _utc(self, record: logging.LogRecord) -> str:
        """ISO 8601 in UTC to the millisecond (`2026-12-08T01:02:03.456+00:00`), its date and
        seconds made once a second."""
        second = int(record.created)
        if second != self._second:
            self._stamp = dt.datetime.fromtimestamp(second, dt.UTC).isoformat()[:19]
            self._second = second
        return f"{self._stamp}.{int(record.msecs):03d}+00:00"


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """Writes its lines out together, at most `interval` seconds after the first of them, and
    at once from a warning up: the access log's line per request would otherwise be a write()
    per request on the event loop's thread, which gives up the interpreter lock to the
    server's threads every time (it took two thirds of a revalidation's cost).

    What waits is written when the process exits, by the interpreter's exit or by
    multiprocessing's (a Granian worker ends with os._exit); a process killed outright loses
    its last `interval`. A stream that fails loses the lines of that write, as logging loses
    a line."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.1) -> None:
        super().__init__(stream)
        self.interval = interval
        self._pending: list[str] = []
        self._flusher: threading.Thread | None = None
        self._stopped = threading.Event()
        _BATCHING.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)  # under the handler's lock (Handler.handle)
        if record.levelno >= logging.WARNING or self._stopped.is_set():
            self._write()
        elif self._flusher is None:
            self._start_flusher()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def stop(self) -> None:
        """Write what waits, and stop the thread that writes (lines after are written at once)."""
        self._stopped.set()
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=1)
        self.flush()

    def _write(self) -> None:
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:
            pass  # as logging does, a broken stream does not break the process

    def _start_flusher(self) -> None:
        """The thread that writes, once per process (a forked child starts its own), and the
        last write at its exit."""
        atexit.register(_stop_all)
        multiprocessing.util.Finalize(None, _stop_all, exitpriority=0)
        self._flusher = threading.Thread(
            target=_flush_often, args=(weakref.ref(self),), name="log-flush", daemon=True
        )
        self._flusher.start()

    def _after_fork(self) -> None:
        """In a forked child: the thread stayed behind, and the lines are the parent's."""
        self._flusher = None
        self._pending.clear()


def _flush_often(handler: weakref.ref[BatchedStreamHandler]) -> None:
    """Until the handler is stopped or gone."""
    while True:
        found = handler()
        if found is None or found._stopped.wait(found.interval):
            return
        found.flush()
        del found


_BATCHING: weakref.WeakSet[BatchedStreamHandler] = weakref.WeakSet()


def _stop_all() -> None:
    for handler in list(_BATCHING):
        handler.stop()


def _flush_before_fork() -> None:
    for handler in list(_BATCHING):
        handler.flush()


def _after_fork_in_child() -> None:
    for handler in list(_BATCHING):
        handler._after_fork()


os.register_at_fork(before=_flush_before_fork, after_in_child=_after_fork_in_child)


def log_handler(
    log_format: str, stream: TextIO | None = None, *, batched: bool = False
) -> logging.Handler:
    """A handler writing to `stream` (stderr) in `log_format` ("text" or "json"), every line
    carrying its run; `batched`, its lines written out together (BatchedStreamHandler)."""
    handler = BatchedStreamHandler(stream) if batched else logging.StreamHandler(stream)
    handler.addFilter(RunFields())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    return handler


def configure_logging(log_format: str, level: str) -> logging.Handler:
    """The process's one log handler, on stderr; it replaces whatever handler the root logger
    had. Every logger propagates to it (uvicorn's too, when uvicorn is given no config)."""
    handler = log_handler(log_format, batched=True)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # No format here shows the process (the line's process is the one writing it), and asking
    # the system for its id, for every record, was a sixth of an access line's cost.
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # httpx says every request at INFO: a line per downloaded file, and the URL as asked,
    # credentials a source_root carries included. Its warnings, and everything at debug, stay.
    quiet = root.level > logging.DEBUG
    logging.getLogger("httpx").setLevel(logging.WARNING if quiet else logging.NOTSET)
    keep_tokens_out_of_access_logs()
    return handler
