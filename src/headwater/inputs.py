"""What text and numbers from users and upstreams may be: no control characters, bounded sizes.

Every edge (REST, repository, UI, CLI) and every upstream parser checks its input with these
rules before it reaches the database, so that bad input is a 4xx that says what was wrong, never
a database error: PostgreSQL refuses NUL characters in text, both databases refuse integers
beyond 64 bits, and PostgreSQL refuses strings longer than their column.
"""

from __future__ import annotations

import math
import re

from headwater.errors import InvalidInputError

# Row ids are 32-bit on PostgreSQL (SERIAL); larger ones can name no row.
MAX_ID = 2**31 - 1
# Offsets, sizes and counts go into 64-bit columns and SQL; keep well inside them.
MAX_COUNT = 2**53
# Upstream publish times, in milliseconds since the epoch: 9999-12-31 is the latest one kept.
MAX_TIMESTAMP_MS = 253_402_300_799_999
# Build numbers: conda keeps them as unsigned 64-bit integers; these fit a signed one.
MAX_BUILD_NUMBER = 2**63 - 1

# The longest values the database keeps of a package file (its String columns).
MAX_FILENAME_LENGTH = 300
MAX_PACKAGE_NAME_LENGTH = 200
MAX_VERSION_LENGTH = 100
MAX_BUILD_LENGTH = 200
MAX_PROJECT_LENGTH = 100  # a PyPI file's project is kept where a conda file keeps its subdir

# Free text (a description, a curation note) keeps tabs and line breaks, nothing else below space.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
SHA256 = re.compile(r"[0-9a-f]{64}")


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """Whether `text` holds a character no name (or, with `multiline`, no free text) may hold:
    C0 controls and DEL, and lone surrogates, which no encoding can store."""
    pattern = _CONTROL_IN_TEXT if multiline else _CONTROL
    return pattern.search(text) is not None or _SURROGATE.search(text) is not None


def check_text(value: object, field: str, *, max_length: int, multiline: bool = False) -> str:
    """`value` as text a user may store in `field`, or InvalidInputError saying why not."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be text")
    if len(value) > max_length:
        raise InvalidInputError(f"{field} is longer than {max_length} characters")
    if has_control_characters(value, multiline=multiline):
        raise InvalidInputError(f"{field} contains a control character")
    return value


def check_name(value: object, field: str, pattern: re.Pattern[str], rule: str) -> str:
    """`value` if the whole of it matches `pattern` (a trailing newline does not slip through
    `$`), else InvalidInputError naming `rule`."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise InvalidInputError(f"{field} {value!r} is not valid: {rule}")
    return value


def finite_number(value: object) -> bool:
    """A number that is neither NaN nor infinite (JSON's 1e999 parses as infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def field_problem(value: object, field: str, max_length: int) -> str | None:
    """Why `value` cannot be stored as a package file's `field`, or None when it can."""
    if not isinstance(value, str):
        return f"{field} is not text"
    if len(value) > max_length:
        return f"{field} is longer than {max_length} characters"
    if has_control_characters(value):
        return f"{field} contains a control character"
    return None


def count_problem(value: object, field: str, maximum: int = MAX_COUNT) -> str | None:
    """Why `value` is not a count from 0 to `maximum`, or None when it is one."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{field} is not a whole number"
    if not 0 <= value <= maximum:
        return f"{field} {value} is out of range"
    return None


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\ud800-\udfff]")
MAX_MESSAGE_LENGTH = 20_000


def printable(message: str) -> str:
    """A message that can be stored and shown whatever it quotes (an upstream's file name, a
    reason a parser gave): control characters written as escapes, and cut to a sane length."""
    escaped = _UNPRINTABLE.sub(lambda found: repr(found.group())[1:-1], message)
    if len(escaped) > MAX_MESSAGE_LENGTH:
        escaped = escaped[:MAX_MESSAGE_LENGTH] + " [...]"
    return escaped


def sha256_hex(value: object) -> str | None:
    """A sha256 as an index gives it, lower-cased, or None when it is not 64 hex digits (an
    upstream's digest names a blob: anything else must never reach the blob store)."""
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value if SHA256.fullmatch(value) else None
