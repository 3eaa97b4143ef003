"""Password hashes: argon2id (pwdlib), and the scrypt hashes of before, upgraded when used."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MAX_PASSWORD_LENGTH = 1024
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class LegacyScryptHasher:
    """Verifies the `scrypt$salt$digest` hashes Headwater stored before argon2; it never makes
    new ones (pwdlib re-hashes with its current hasher once such a password was right)."""

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return _text(hash).startswith("scrypt$")

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        raise NotImplementedError("new hashes are argon2")

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        try:
            _, salt, digest = _text(hash).split("$")
            candidate = hashlib.scrypt(_bytes(password), salt=base64.b64decode(salt), **_SCRYPT)
            return hmac.compare_digest(candidate, base64.b64decode(digest))
        except (ValueError, TypeError):
            return False

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        return True


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


_HASHING = PasswordHash((Argon2Hasher(), LegacyScryptHasher()))


def hash_password(password: str) -> str:
    return _HASHING.hash(password)


def verify_password(password: str, stored: str | None) -> tuple[bool, str | None]:
    """Whether `password` is right, and the new hash to store when the stored one is of an
    older kind (or weaker parameters). A user without a password never matches."""
    if stored is None or len(password) > MAX_PASSWORD_LENGTH:
        return False, None
    if not (Argon2Hasher.identify(stored) or LegacyScryptHasher.identify(stored)):
        return False, None
    return _HASHING.verify_and_update(password, stored)


@cache
def stand_in_hash() -> str:
    """What an unknown username's password is checked against, so that the answer takes as
    long as for a real one and does not tell which names exist."""
    return hash_password(secrets.token_urlsafe(16))
