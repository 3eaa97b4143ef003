"""The `headwater` command as a user runs it: a process of its own, its config directory its
own, signed in to a server over HTTP like from anyone's laptop."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import ADMIN, PASSWORD, Headwater


@dataclass
class Cli:
    home: Path  # XDG_CONFIG_HOME: where `headwater login` keeps its token
    settings: dict[str, str] = field(default_factory=dict)  # HEADWATER_* for server commands

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HEADWATER_")}
        env.update(XDG_CONFIG_HOME=str(self.home), COLUMNS="200", **self.settings)
        done = subprocess.run(
            [sys.executable, "-m", "headwater", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            input=input,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    @property
    def credentials(self) -> Path:
        return self.home / "headwater" / "credentials.json"


def signed_in(
    server: Headwater, home: Path, username: str = ADMIN, password: str = PASSWORD
) -> Cli:
    """A CLI that ran `headwater login <server> --username <name>`, typing the password."""
    cli = Cli(home)
    cli("login", server.url, "--username", username, input=password + "\n")
    return cli
