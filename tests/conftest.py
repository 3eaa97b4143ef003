"""Fixtures shared by every test: settings, a running Headwater, an upstream on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from headwater.settings import Settings
from tests.support.s3 import S3Endpoint, s3_endpoint
from tests.support.server import ADMIN, PASSWORD, Headwater, run_headwater

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_URL = os.environ.get(
    "HEADWATER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("HEADWATER_REQUIRE_POSTGRES") == "1"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "admin_user": ADMIN,
        "admin_password": PASSWORD,
        "upstream_allowlist": ("http://127.0.0.1:*",),
        "http_timeout": 5.0,
        "http_attempts": 2,
        "http_backoff": 0.0,
        "worker_poll_interval": 0.1,
        "scheduler_interval": 0.5,
        "heartbeat_interval": 0.2,
        "heartbeat_timeout": 30.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")


@pytest.fixture
def headwater(settings: Settings) -> Iterator[Headwater]:
    with run_headwater(settings) as server:
        yield server


@pytest.fixture
def token(headwater: Headwater) -> str:
    return headwater.login()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database URL whose tables live in a schema of their own, dropped afterwards."""
    problem = _postgres_reachable()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {problem}")
        pytest.skip(f"PostgreSQL is unreachable: {problem}")
    schema = f"hw_{uuid.uuid4().hex[:12]}"
    plain = POSTGRES_URL.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    """moto's S3 server on loopback, for the whole session; each test takes a bucket of its own."""
    with s3_endpoint() as endpoint:
        yield endpoint
