"""Whether a process named by a worker id is gone: a live one is not, an ended one is, and so
is one that ended and was not reaped yet (a zombie keeps its pid until its parent waits)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from headwater.process import is_gone, process_name


def name_of(pid: int) -> str:
    host, _, rest = process_name().partition(":")
    return f"{host}:{pid}:{rest.partition(':')[2]}"


def test_a_live_process_is_not_gone_an_ended_one_is() -> None:
    assert not is_gone(process_name())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not is_gone(name_of(child.pid))
    finally:
        child.kill()
        child.wait()
    assert is_gone(name_of(child.pid))


def test_an_ended_process_nobody_reaped_yet_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while not _zombie(child.pid):  # ended; its parent (this test) has not waited for it
        assert time.monotonic() < deadline, "the child never ended"
        time.sleep(0.01)
    try:
        os.kill(child.pid, 0)  # a signal still reaches its pid
        assert is_gone(name_of(child.pid))
    finally:
        child.wait()


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0] == "Z"
