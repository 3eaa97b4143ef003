"""Readiness checks: bounded in time, one thread per stuck dependency, and answers that keep
the settings' secrets out."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from headwater.probes import Readiness, Redactor
from headwater.settings import Settings


def test_every_check_answers_and_a_failure_is_named_without_secrets() -> None:
    def store() -> None:
        raise OSError("bucket at https://key:hunter2-secret@s3.internal/b refused hunter2-secret")

    readiness = Readiness(
        {"database": lambda: None, "blob_store": store}, 1.0, Redactor(("hunter2-secret",))
    )
    checks = asyncio.run(readiness.check())
    assert checks["database"].ok and checks["database"].error is None
    assert not checks["blob_store"].ok
    assert checks["blob_store"].error == "OSError: bucket at https://***@s3.internal/b refused ***"


def test_a_check_that_hangs_times_out_and_is_not_started_again_while_it_hangs() -> None:
    release = threading.Event()
    started = []

    def database() -> None:
        started.append(time.monotonic())
        release.wait(10)

    readiness = Readiness({"database": database}, 0.2, Redactor(()))

    async def probes() -> list[dict[str, object]]:
        answers = []
        for _ in range(3):
            begun = time.monotonic()
            checks = await readiness.check()
            assert time.monotonic() - begun < 1.0
            answers.append(checks["database"].as_json())
        release.set()
        await asyncio.sleep(0.1)  # the stuck check ends
        answers.append((await readiness.check())["database"].as_json())
        return answers

    first, second, third, after = asyncio.run(probes())
    assert first["ok"] is False and first["error"] == "did not answer within 0.2 s"
    for later in (second, third):
        assert later["ok"] is False
        assert str(later["error"]).startswith("still checking since a probe")
    assert after["ok"] is True
    assert len(started) == 2  # the stuck one, and the one after it ended


def test_a_check_raising_a_timeout_of_its_own_is_its_error() -> None:
    def database() -> None:
        raise TimeoutError("connect timed out")

    checks = asyncio.run(Readiness({"database": database}, 5, Redactor(())).check())
    assert checks["database"].error == "TimeoutError: connect timed out"


def test_the_redactor_knows_every_secret_setting(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://headwater:db-pass-1@db.internal/headwater",
        admin_password="admin-pass-2",
        metrics_token="metrics-token-3",
        ldap_bind_password="ldap-pass-4",
        oidc_client_secret="oidc-secret-5",
    )
    redact = Redactor.of(settings)
    said = redact(
        "db-pass-1 admin-pass-2 metrics-token-3 ldap-pass-4 oidc-secret-5 "
        "postgresql://someone:else@host/db"
    )
    assert said == "*** *** *** *** *** postgresql://***@host/db"
    assert redact("x" * 1000).endswith("…") and len(redact("x" * 1000)) == 300


def test_the_redactor_knows_the_s3_keys(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, s3_secret_access_key="s3-secret-key-6", s3_access_key_id="AKIA7KEYID"
    )
    assert Redactor.of(settings)("s3-secret-key-6 AKIA7KEYID") == "*** ***"
