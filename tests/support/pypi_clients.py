"""pip, uv and twine, run as a user would, against one index URL and nothing else.

This machine's own pip configuration adds local wheel directories and indexes; the clients here
are cut off from every configuration file and variable, so what they install can only have
come from the index the test names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_", "TWINE_")) and "proxy" not in key.lower()
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        # Refused credentials end the command; nothing waits at a prompt or asks a keyring.
        PIP_NO_INPUT="1",
        PIP_KEYRING_PROVIDER="disabled",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def installed(target: Path) -> dict[str, str]:
    """Project name → version of what an install put in `target`, from the dist-info folders."""
    found = {}
    for info in target.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[name.replace("_", "-").lower()] = version
    return found


def pip_install(index_url: str, target: Path, *requirements: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "install", "--index-url", index_url]
    command += ["--target", str(target), "--no-compile", "--only-binary", ":all:", *requirements]
    return subprocess.run(
        command, env=_clean_env(target.parent), capture_output=True, text=True, timeout=180
    )


def uv_install(index_url: str, target: Path, *requirements: str) -> subprocess.CompletedProcess:
    uv = Path(sys.executable).with_name("uv")
    command = [str(uv), "pip", "install", "--index-url", index_url, "--target", str(target)]
    command += ["--python", sys.executable, "--no-build", *requirements]
    return subprocess.run(
        command, env=_clean_env(target.parent), capture_output=True, text=True, timeout=180
    )


def twine_upload(
    repository_url: str, username: str, password: str, *files: Path
) -> subprocess.CompletedProcess:
    """`twine upload` with the credentials given and no .pypirc."""
    command = [sys.executable, "-m", "twine", "upload", "--repository-url", repository_url]
    command += ["--username", username, "--password", password, "--non-interactive"]
    command += ["--config-file", os.devnull, "--disable-progress-bar", *map(str, files)]
    return subprocess.run(
        command, env=_clean_env(files[0].parent), capture_output=True, text=True, timeout=180
    )
