"""License families of a PyPI distribution, from its core metadata.

`License-Expression` (PEP 639) is SPDX and decides alone when present. Otherwise the `License`
field (when it is a name, not the license's full text) and the `License ::` trove classifiers
all count, read with the same rules as conda's license strings (filters/licenses.py). A file
whose metadata is unknown — a passive mirror of an index that offers no core metadata — is
`none`.
"""

from __future__ import annotations

from functools import lru_cache

from headwater.filters.licenses import license_families

_NAME_LIMIT = 120  # longer `License` fields are the license's text, not its name
_SPECIFIC = frozenset({"other", "none"})


def distribution_license_families(
    license: str | None,
    license_expression: str | None,
    classifiers: tuple[str, ...] | list[str] | None,
) -> frozenset[str]:
    return _families(license, license_expression, tuple(classifiers or ()))


@lru_cache(maxsize=16384)
def _families(
    license: str | None, license_expression: str | None, classifiers: tuple[str, ...]
) -> frozenset[str]:
    if license_expression:
        return license_families(license_expression, None)
    families: set[str] = set()
    if license and "\n" not in license.strip() and len(license) <= _NAME_LIMIT:
        families |= license_families(license, None)
    for classifier in classifiers:
        families |= classifier_families(classifier)
    known = families - _SPECIFIC
    if known:
        return frozenset(known)
    return frozenset(families or {"none"})


def classifier_families(classifier: str) -> frozenset[str]:
    """`License :: OSI Approved :: MIT License` → mit; `License :: OSI Approved` alone → none."""
    parts = [part.strip() for part in classifier.split("::")]
    if len(parts) < 2 or parts[0] != "License":
        return frozenset()
    leaf = parts[-1]
    if leaf == "OSI Approved":
        return frozenset()
    if leaf == "Other/Proprietary License":
        return frozenset({"proprietary"})
    return license_families(leaf, None)
