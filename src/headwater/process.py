"""Who this process is to the others sharing its database and blob store, and whether a
process named so is gone: its runs and its staging files are then leftovers of a crash."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from functools import cache
from pathlib import Path

# Tells this process from an earlier one that had the same pid (a container restarts its
# server as pid 1 every time).
_INCARNATION = uuid.uuid4().hex[:8]


@cache
def _scope() -> str:
    """Where pids mean the same: this boot of this machine, in this pid namespace. Containers
    that share a host name (host networking) or cloned machines that share one differ here."""
    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id", "/etc/machine-id"):
        try:
            parts.append(Path(source).read_text().strip())
        except OSError:
            parts.append("")
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        parts.append("")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def process_name() -> str:
    """`host:pid:scope-incarnation`, unique among live processes, meaningful in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{_scope()}-{_INCARNATION}"


def is_gone(name: str) -> bool:
    """Whether the process a name (or a worker id that starts with one) stands for is known to
    have ended: it ran where pids mean what they mean here (same machine, boot and pid
    namespace), and its pid is free or belongs to another incarnation. Anywhere else it is
    never known to be gone here; heartbeats tell that."""
    host, _, rest = name.partition(":")
    pid_text, _, rest = rest.partition(":")
    scope, _, incarnation = rest.partition(":")[0].partition("-")
    if host != socket.gethostname() or scope != _scope() or not pid_text.isdigit():
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
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Ended, and not yet reaped: signals still reach the pid. A server's worker process whose
    parent was killed stays so until init reaps it (seconds, in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc here: only the signal tells
    # "pid (command) state ...": the command may hold spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] == "Z"
