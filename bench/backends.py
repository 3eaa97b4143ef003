"""The database and blob store the benchmarks run Headwater on: one switch for all of them.

    BENCH_DATABASE=postgres BENCH_BLOBS=s3 python -m bench <benchmark> [args]

By default (`BENCH_DATABASE=sqlite`, `BENCH_BLOBS=local`) each Headwater data dir holds its own
SQLite database and blobs, as a user's does. `BENCH_DATABASE=postgres`: each data dir gets a
fresh schema of its own on the local PostgreSQL (`HEADWATER_TEST_POSTGRES`, default
postgresql+psycopg://postgres@127.0.0.1:5432/test, as tests/conftest.py's `postgres_url`),
dropped when the benchmark ends. `BENCH_BLOBS=s3`: moto's S3 server runs on a free loopback
port for the benchmark's duration, in a process of its own (tests/support/cluster.py's
`moto_process`, so that it does not compete with the benchmark's own process for its
interpreter), and each data dir gets a fresh bucket. moto is a Python server holding objects in
memory: far slower than a real S3, and figures on it are an upper bound of what S3 costs.

`session()` (entered by bench/__main__.py around the whole benchmark) starts what is asked
for and exports where it is to every process the benchmark starts; `settings(data_dir)` is what
bench_settings() and bench/server.py give Headwater for that data dir, the same in every
process (written once into the data dir, `bench-backends.json`).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

DATABASE = "BENCH_DATABASE"  # sqlite (default) | postgres
BLOBS = "BENCH_BLOBS"  # local (default) | s3
POSTGRES_URL = os.environ.get(
    "HEADWATER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_SESSION = "BENCH_BACKENDS_SESSION"  # the session's name, exported by session()
_S3_URL = "BENCH_BACKENDS_S3_URL"  # moto's URL, exported by session()
_RECORD = "bench-backends.json"


def chosen() -> tuple[str, str]:
    """(database, blobs) as the environment asks: ("sqlite", "local") by default."""
    database = os.environ.get(DATABASE, "sqlite") or "sqlite"
    blobs = os.environ.get(BLOBS, "local") or "local"
    if database not in ("sqlite", "postgres") or blobs not in ("local", "s3"):
        raise SystemExit(f"{DATABASE} is sqlite or postgres, {BLOBS} local or s3")
    return database, blobs


def describe() -> str:
    database, blobs = chosen()
    return f"{'PostgreSQL' if database == 'postgres' else 'SQLite'} + {blobs}"


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Around one benchmark: moto's server when S3 is asked for, and every schema made for the
    benchmark's data dirs dropped at the end. Nested, or in a process the benchmark started, it
    does nothing."""
    database, blobs = chosen()
    if os.environ.get(_SESSION) or (database, blobs) == ("sqlite", "local"):
        yield
        return
    os.environ[_SESSION] = uuid.uuid4().hex[:8]
    try:
        with contextlib.ExitStack() as stack:
            if blobs == "s3":
                from tests.support.cluster import moto_process

                os.environ[_S3_URL] = stack.enter_context(moto_process()).url
            yield
    finally:
        if database == "postgres":
            _drop_schemas(os.environ[_SESSION])
        os.environ.pop(_S3_URL, None)
        os.environ.pop(_SESSION, None)


def settings(data_dir: Path) -> dict[str, str]:
    """Headwater's settings (field names of headwater.settings.Settings) for `data_dir` on the
    chosen backends: nothing for SQLite and local disk; else its own schema and bucket, made on
    first use and the same in every process of the session."""
    database, blobs = chosen()
    if (database, blobs) == ("sqlite", "local"):
        return {}
    name = os.environ.get(_SESSION)
    if not name:
        raise RuntimeError(f"{DATABASE}/{BLOBS} need the benchmark run as `python -m bench ...`")
    record = data_dir / _RECORD
    if record.exists():
        made: dict[str, str] = json.loads(record.read_text())
        return made
    made = {}
    suffix = uuid.uuid4().hex[:8]
    if database == "postgres":
        made["database_url"] = _new_schema(f"hwb_{name}_{suffix}")
    if blobs == "s3":
        import boto3
        from tests.support import s3

        url = os.environ[_S3_URL]
        bucket = f"hwb-{name}-{suffix}"
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name=s3.REGION,
            aws_access_key_id=s3.KEY_ID,
            aws_secret_access_key=s3.SECRET,
        ).create_bucket(Bucket=bucket)
        made.update(
            blob_backend="s3",
            s3_bucket=bucket,
            s3_endpoint=url,
            s3_region=s3.REGION,
            s3_access_key_id=s3.KEY_ID,
            s3_secret_access_key=s3.SECRET,
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(made))
    return made


def environment(data_dir: Path) -> dict[str, str]:
    """`settings(data_dir)` as the HEADWATER_* variables of a `headwater serve` process."""
    return {f"HEADWATER_{key.upper()}": value for key, value in settings(data_dir).items()}


def _new_schema(schema: str) -> str:
    import psycopg

    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def _drop_schemas(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as connection:
        schemas = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"hwb\\_{name}\\_%",)
        ).fetchall()
        for (schema,) in schemas:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
