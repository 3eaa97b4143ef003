"""License families of package files, from the license strings real repodata carries.

A file belongs to every family its license names, so `MIT OR GPL-2.0-or-later` is both `mit`
and `gpl2`: excluding GPL keeps it out, as a compliance officer would expect. The rules, in
order:

1. A valid SPDX expression maps key by key (exceptions such as `GCC-exception-3.1` are
   qualifiers, not licenses).
2. Anything else is split into terms (`and`, `or`, `|`, `,`, `;`, ` + `), each term matched
   against the families' common spellings (`GPL 3`, `GPLv2+`, `BSD 3-Clause`, `Apache 2.0`,
   `PSF 2`, `Public-Domain (...)`, ...); a term that names no family is `other`, and noise
   such as `file LICENSE` or `or later` is ignored.
3. A GPL term without a version takes the version from the record's `license_family` (`GPL2`,
   `GPL3`), else belongs to both `gpl2` and `gpl3`.
4. When the string says nothing usable (no string, `unknown`, only `other`), the record's
   `license_family` decides if it has one; with neither, the family is `none`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, get_args

from license_expression import ExpressionError, get_spdx_licensing

LicenseFamily = Literal[
    "agpl",
    "gpl2",
    "gpl3",
    "lgpl",
    "bsd",
    "mit",
    "apache",
    "psf",
    "public_domain",
    "proprietary",
    "other",
    "none",
]
FAMILIES: tuple[str, ...] = get_args(LicenseFamily)

# conda's license_family vocabulary, case-insensitively.
_FAMILY_FIELD = {
    "agpl": {"agpl"},
    "gpl": {"gpl2", "gpl3"},
    "gpl2": {"gpl2"},
    "gpl3": {"gpl3"},
    "lgpl": {"lgpl"},
    "bsd": {"bsd"},
    "mit": {"mit"},
    "apache": {"apache"},
    "psf": {"psf"},
    "public-domain": {"public_domain"},
    "public_domain": {"public_domain"},
    "proprietary": {"proprietary"},
    "cc": {"other"},
    "mozilla": {"other"},
    "other": {"other"},
    "none": {"none"},
}

_UNKNOWN = re.compile(r"^\s*(?:none|unknown|not specified|n/?a|-)?\s*$", re.IGNORECASE)
_TERM_SPLIT = re.compile(r"\s+(?:and|or)\s+|\s*[|,;]\s*|\s+\+\s+", re.IGNORECASE)
_WITH = re.compile(r"\s+with\s+.*$", re.IGNORECASE)
_NOISE = re.compile(
    r"^(?:file licen[cs]e.*|licen[cs]e|later|any later version|exceptions?|partial:.*"
    r"|see licen[cs]e|\(?foss\)?)$",
    re.IGNORECASE,
)

# Spellings of each family inside one term; a term may name several (rare).
_TERM_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("agpl", re.compile(r"\bagpl|affero", re.IGNORECASE)),
    ("lgpl", re.compile(r"\blgpl|lesser general public|library general public", re.IGNORECASE)),
    ("gpl", re.compile(r"\bgpl|\bgnu general public|^general public licen", re.IGNORECASE)),
    ("bsd", re.compile(r"bsd|\b[234]-clause|\bclause[- ][234]", re.IGNORECASE)),
    ("mit", re.compile(r"\bmit\b|\bexpat\b|\bx11\b", re.IGNORECASE)),
    ("apache", re.compile(r"\bapache|\basl\b", re.IGNORECASE)),
    ("psf", re.compile(r"\bpsf|python software foundation|\bpython-2", re.IGNORECASE)),
    ("public_domain", re.compile(r"public[-_ ]?domain|\bunlicense\b|\bcc0\b", re.IGNORECASE)),
    ("proprietary", re.compile(r"proprietar|\bcommercial\b", re.IGNORECASE)),
)
_COMMA_VERSION = re.compile(r",\s*(version\b)", re.IGNORECASE)
_GPL_VERSION = re.compile(
    r"(?:\bgpl|general public licen[cs]e)\s*(?:-|_|\s)*(?:version\s*|v\s*)?(?:\(\s*>=?\s*)?(\d)",
    re.IGNORECASE,
)

_licensing = get_spdx_licensing()


_by_pair: dict[tuple[str | None, str | None], frozenset[str]] = {}


def forget_license_families() -> None:
    """Empty the caches (benchmarks measure cold)."""
    _by_pair.clear()
    _families.cache_clear()


def license_families(license: str | None, license_family: str | None) -> frozenset[str]:
    """The families of a record's license; cached, as a channel repeats few distinct pairs."""
    pair = (license, license_family)
    found = _by_pair.get(pair)
    if found is None:
        found = _families(license or "", (license_family or "").strip().lower())
        if len(_by_pair) < 65536:
            _by_pair[pair] = found
    return found


@lru_cache(maxsize=65536)
def _families(license: str, family_field: str) -> frozenset[str]:
    from_field = _FAMILY_FIELD.get(family_field, {"other"} if family_field else set())
    if _UNKNOWN.match(license):
        return frozenset(from_field or {"none"})
    families = _spdx_families(license)
    if families is None:
        families = _term_families(license)
    if "gpl" in families:
        families.discard("gpl")
        known = from_field & {"gpl2", "gpl3"}
        families |= known or {"gpl2", "gpl3"}
    if families <= {"other"} and from_field - {"other", "none"}:
        return frozenset(from_field)
    return frozenset(families or {"other"})


def _spdx_families(license: str) -> set[str] | None:
    try:
        expression = _licensing.parse(license, validate=True)
    except (ExpressionError, Exception):
        return None
    if expression is None:
        return None
    symbols = _licensing.license_symbols(expression, decompose=True)
    licenses = [s for s in symbols if not getattr(s, "is_exception", False)]
    # Deprecated ids such as GPL-3.0-with-GCC-exception are licenses the index lists as
    # exceptions; alone in an expression, they are the license.
    return {_spdx_key_family(symbol.key) for symbol in licenses or symbols}


def _spdx_key_family(key: str) -> str:
    upper = key.upper()
    if upper.startswith("AGPL"):
        return "agpl"
    if upper.startswith("LGPL"):
        return "lgpl"
    if upper.startswith("GPL-2"):
        return "gpl2"
    if upper.startswith("GPL-3"):
        return "gpl3"
    if upper.startswith("GPL-1"):
        # license_expression reads a bare `GPL` as GPL-1.0-or-later: a GPL of no stated
        # version, settled by license_family, else both families.
        return "other" if upper.endswith("-ONLY") else "gpl"
    if upper.startswith("LICENSEREF-"):
        return _licenseref_family(key)
    if upper.startswith(("BSD-", "0BSD")):
        return "bsd"
    if upper.startswith("MIT") or upper == "X11":
        return "mit"
    if upper.startswith("APACHE-"):
        return "apache"
    if upper.startswith(("PSF-", "PYTHON-2")):
        return "psf"
    if upper in ("CC0-1.0", "UNLICENSE"):
        return "public_domain"
    return "other"


def _term_families(license: str) -> set[str]:
    families: set[str] = set()
    # "Apache License, Version 2.0": the version belongs to the license before the comma.
    license = _COMMA_VERSION.sub(r" \1", license)
    for raw_term in _TERM_SPLIT.split(license):
        term = _WITH.sub("", raw_term).strip(" ()[]")
        if not term or _NOISE.match(term):
            continue
        if term.lower().startswith("licenseref-"):
            families.add(_licenseref_family(term))
            continue
        named = {family for family, pattern in _TERM_PATTERNS if pattern.search(term)}
        if "gpl" in named:
            versions = {f"gpl{digit}" for digit in _GPL_VERSION.findall(term) if digit in "23"}
            if versions:
                named = (named - {"gpl"}) | versions
        families |= named or {"other"}
    return families


def _licenseref_family(term: str) -> str:
    lowered = term.lower()
    if "proprietary" in lowered or "commercial" in lowered:
        return "proprietary"
    if "public-domain" in lowered or "publicdomain" in lowered:
        return "public_domain"
    return "other"
