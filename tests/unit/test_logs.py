"""Log lines: JSON, one object a line; the run each was written for, from whichever thread or
task of the run wrote it; tokens kept out of access lines in either format."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from headwater.logs import (
    RunContext,
    keep_tokens_out_of_access_logs,
    log_handler,
    run_context,
)

RUN = RunContext(run_id=7, kind="mirror", mirror_id=3, worker_id="host:1:abcd-1234:5678")
TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdE"  # shaped like Headwater's tokens


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("headwater.test_logs")
    handler = log_handler("json", stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_a_batched_handler_writes_lines_together_soon_and_warnings_at_once() -> None:
    """The process's handler (configure_logging) writes its lines out together: an access
    line per request is not a write() per request."""
    stream = io.StringIO()
    logger = logging.getLogger("headwater.test_logs.batched")
    handler = log_handler("text", stream, batched=True)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        for number in range(3):
            logger.info("request %d", number)
        assert stream.getvalue() == ""  # not yet: within the interval
        deadline = time.monotonic() + 5
        while stream.getvalue().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == [
            "request 0",
            "request 1",
            "request 2",
        ]
        logger.info("quiet")
        logger.warning("loud")  # a warning takes what waits with it, at once
        assert stream.getvalue().splitlines()[-2:][0].endswith("quiet")
        assert (
            stream.getvalue().splitlines()[-1].endswith("WARNING headwater.test_logs.batched: loud")
        )
        logger.info("last")
        handler.flush()  # as logging.shutdown does when the process exits
        assert stream.getvalue().splitlines()[-1].endswith("last")
    finally:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_time_level_logger_and_message(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("mirror %s is %s", "forge", "slow\nand multi-line")
    [line] = lines(stream)
    assert stream.getvalue().count("\n") == 1  # the message's newline is escaped, not written
    assert set(line) == {"time", "level", "logger", "message"}
    assert line["level"] == "WARNING" and line["logger"] == "headwater.test_logs"
    assert line["message"] == "mirror forge is slow\nand multi-line"
    at = dt.datetime.fromisoformat(line["time"])
    assert at.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - at).total_seconds()) < 60


def test_an_exception_comes_with_its_traceback_in_one_field(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("run crashed")
    [line] = lines(stream)
    assert line["message"] == "run crashed"
    assert "Traceback" in line["exception"] and "ZeroDivisionError" in line["exception"]


def test_lines_of_a_run_name_it_from_its_tasks_and_threads(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """As the worker runs a job: its own event loop on the worker's thread, asyncio.to_thread
    from there, a loop started in such a thread (asyncio.run), the heartbeat thread started in
    a copy of the context. A thread started plainly does not carry it."""
    logger, stream = captured

    def in_a_thread(what: str) -> None:
        logger.info(what)

    async def the_run() -> None:
        logger.info("on the run's loop")
        await asyncio.to_thread(in_a_thread, "in asyncio.to_thread")
        await asyncio.to_thread(lambda: asyncio.run(_logs(logger, "in asyncio.run in a thread")))

    with run_context(RUN):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(loop.create_task(the_run()))
        finally:
            loop.close()
        copied = threading.Thread(
            target=contextvars.copy_context().run, args=(in_a_thread, "heartbeat")
        )
        plain = threading.Thread(target=in_a_thread, args=("a plain thread",))
        for thread in (copied, plain):
            thread.start()
            thread.join()
    logger.info("after the run")

    by_message = {line["message"]: line for line in lines(stream)}
    for message in (
        "on the run's loop",
        "in asyncio.to_thread",
        "in asyncio.run in a thread",
        "heartbeat",
    ):
        line = by_message[message]
        assert (line["run_id"], line["job_kind"], line["mirror_id"]) == (7, "mirror", 3), line
        assert line["worker_id"] == RUN.worker_id
    assert "run_id" not in by_message["a plain thread"]
    assert "run_id" not in by_message["after the run"]


async def _logs(logger: logging.Logger, message: str) -> None:
    logger.info(message)


def test_text_lines_name_the_run_too() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("headwater.test_logs.text")
    handler = log_handler("text", stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with run_context(RUN):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith("WARNING headwater.test_logs.text [run 7]: inside")
    assert outside.endswith("WARNING headwater.test_logs.text: outside")


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_access_lines_keep_tokens_out_and_json_gives_the_request_fields(log_format: str) -> None:
    stream = io.StringIO()
    access = logging.getLogger("uvicorn.access")
    keep_tokens_out_of_access_logs()
    handler = log_handler(log_format, stream)
    access.addHandler(handler)
    level, access.level = access.level, logging.INFO
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "10.0.0.5:51000",
            "GET",
            f"/api/repo/t/{TOKEN}/forge/noarch/repodata.json?token=abc",
            "1.1",
            200,
        )
    finally:
        access.removeHandler(handler)
        access.level = level
    written = stream.getvalue()
    assert TOKEN not in written and "abc" not in written
    if log_format == "json":
        [line] = lines(stream)
        assert line["client"] == "10.0.0.5:51000" and line["method"] == "GET"
        assert line["path"] == "/api/repo/t/***/forge/noarch/repodata.json?token=***"
        assert line["status"] == 200 and line["http_version"] == "1.1"


EXITING = """
import logging, multiprocessing, sys
from headwater.logs import configure_logging

def child():
    logging.getLogger("headwater.child").info("from the forked child")

configure_logging("text", "info")
logging.getLogger("headwater.parent").info("before the fork")
process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join()
logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # as Granian does
logging.getLogger("headwater.parent").info("the last line")
"""


def test_what_waits_is_written_when_a_process_or_its_forked_child_exits() -> None:
    """A forked child (Granian's worker) ends with os._exit, and a dictConfig after
    configure_logging (Granian's) takes the handler out of logging's own exit: neither loses
    the last lines."""
    done = subprocess.run(
        [sys.executable, "-c", "import logging.config\n" + EXITING],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line.split(": ", 1)[1] for line in done.stderr.splitlines()]
    assert lines == ["before the fork", "from the forked child", "the last line"], done.stderr


def test_only_short_targets_are_remembered_whatever_urls_a_caller_makes_up() -> None:
    """Redaction is remembered per URL for speed; a caller sending long made-up URLs must
    not fill the memory with them."""
    from headwater.logs import _redacted_remembered, redact_target

    before = _redacted_remembered.cache_info().currsize
    for number in range(20):
        long_target = f"/api/repo/t/{TOKEN}/x{number}/" + "a" * 10_000
        assert TOKEN not in redact_target(long_target)
    assert _redacted_remembered.cache_info().currsize == before
    assert redact_target(f"/api/repo/t/{TOKEN}/only-here/noarch/repodata.json") == (
        "/api/repo/t/***/only-here/noarch/repodata.json"
    )
    assert _redacted_remembered.cache_info().currsize == before + 1 or before == 4096
