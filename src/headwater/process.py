"""Who this process is to the others sharing its database and blob store, and whether a
process named so is gone: its runs and its staging files are then leftovers of a crash."""

from __future__ import annotations

import os
import socket
import uuid

# Tells this process from an earlier one that had the same pid (a container restarts its
# server as pid 1 every time).
_INCARNATION = uuid.uuid4().hex[:8]


def process_name() -> str:
    """`host:pid:incarnation`, unique among live processes, meaningful in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{_INCARNATION}"


def is_gone(name: str) -> bool:
    """Whether the process a name (or a worker id that starts with one) stands for is known to
    have ended: it ran on this machine, and its pid is free or belongs to another incarnation.
    A process of another machine is never known to be gone here (heartbeats tell that)."""
    host, _, rest = name.partition(":")
    pid_text, _, rest = rest.partition(":")
    incarnation = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return incarnation != _INCARNATION
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False
