"""Signing in: an unknown user costs the same password check as a known one, limits are counted
per account and per address, and wrong input never reaches the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.db import Database
from headwater.errors import NotAuthenticatedError, TooManyRequestsError
from headwater.migrations import upgrade
from headwater.services.access import passwords, users
from headwater.services.access.audit import Actor
from headwater.services.access.rules import Identity
from headwater.services.access.sign_in import SignInGuard, SignInLimits


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    upgrade(database.engine)
    with database.writing() as session:
        users.add_user(
            session, "carol", "carols password", is_admin=False, actor=Actor.server("test")
        )
    yield database
    database.dispose()


def test_an_unknown_user_costs_one_password_check_like_a_known_one(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = passwords.verify_password

    def counted(password: str, stored: str | None) -> tuple[bool, str | None]:
        checks.append(password)
        return real(password, stored)

    monkeypatch.setattr(users, "verify_password", counted)
    for username in ("carol", "nobody"):
        with db.reading() as session, pytest.raises(NotAuthenticatedError) as refused:
            users.check_credentials(session, username, "wrong")
        assert refused.value.message == "wrong username or password"
    assert checks == ["wrong", "wrong"]


def test_limits_count_failures_per_account_and_attempts_per_address(db: Database) -> None:
    guard = SignInGuard(SignInLimits(per_account="2 per minute", per_address="5 per minute"))

    async def scenario() -> list[str]:
        outcomes = []
        for username, password, address in [
            ("carol", "x", "a"),
            ("carol", "y", "b"),
            ("carol", "carols password", "c"),  # two failures: carol waits, whoever asks
            ("Carol", "carols password", "d"),  # names are counted case-blind
            ("nobody", "x", "c"),
            ("nobody", "x", "c"),
            ("nobody", "x", "c"),  # nobody's third failure: refused by the account's limit
            ("other", "x", "c"),  # the fifth attempt from address c
            ("other", "x", "c"),  # the sixth: refused by the address's limit
        ]:
            try:
                await guard.sign_in(db, username, password, address, ttl_days=1)
                outcomes.append("ok")
            except NotAuthenticatedError:
                outcomes.append("401")
            except TooManyRequestsError as error:
                assert error.retry_after >= 1
                outcomes.append("429")
        return outcomes

    assert asyncio.run(scenario()) == [
        *("401", "401", "429", "429"),
        *("401", "401", "429", "401", "429"),
    ]


def test_a_burst_of_guesses_gets_no_more_tries_than_the_account_limit(db: Database) -> None:
    guard = SignInGuard(SignInLimits(per_account="5 per minute", per_address="1000 per minute"))

    async def burst() -> list[str]:
        async def one(n: int) -> str:
            try:
                await guard.sign_in(db, "carol", f"guess {n}", f"10.0.0.{n}", ttl_days=1)
            except NotAuthenticatedError:
                return "401"
            except TooManyRequestsError:
                return "429"
            return "ok"

        return list(await asyncio.gather(*(one(n) for n in range(30))))

    answers = asyncio.run(burst())
    assert answers.count("401") == 5 and answers.count("429") == 25, answers


def test_the_current_password_is_guessed_under_the_same_limits(db: Database) -> None:
    guard = SignInGuard(SignInLimits(per_account="2 per minute", per_address="1000 per minute"))
    carol = Identity(user_id=1, username="carol", is_admin=False)

    async def guesses() -> list[str]:
        answers = []
        for current in ("no", "nope", "carols password"):
            try:
                await guard.change_password(db, carol, current, "new one", "a", ttl_days=1)
                answers.append("ok")
            except NotAuthenticatedError:
                answers.append("401")
            except TooManyRequestsError:
                answers.append("429")
        return answers

    assert asyncio.run(guesses()) == ["401", "401", "429"]
