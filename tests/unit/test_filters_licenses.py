"""License families: the license strings real repodata carries, mapped to the families filters name."""

from __future__ import annotations

import pytest

from headwater.filters.licenses import FAMILIES, license_families


def _case(license: str | None, family: str | None, *expected: str, id: str | None = None):
    return pytest.param(license, family, frozenset(expected), id=id or f"{license!r}/{family!r}")


# Strings seen in conda-forge repodata, with the families a compliance officer expects.
REAL_REPODATA_STRINGS = [
    _case("MIT", None, "mit"),
    _case("GPL-3.0-only WITH GCC-exception-3.1", None, "gpl3"),
    _case("GPL 3", None, "gpl3"),
    _case("GPLv2+", None, "gpl2"),
    _case("LGPL-2.1 and GPL-2.0", None, "lgpl", "gpl2"),
    _case("BSD 3-Clause", None, "bsd"),
    _case("Apache 2.0", None, "apache"),
    _case("PSF 2", None, "psf"),
    _case("Public-Domain (http://www.sqlite.org/copyright.html)", None, "public_domain"),
    _case("LicenseRef-ProprietaryMicrosoft", None, "proprietary"),
    _case("MIT OR GPL-2.0-or-later", None, "mit", "gpl2"),
    _case("GPL (>= 2)", None, "gpl2"),
    _case("GPL-2 | GPL-3", None, "gpl2", "gpl3"),
    _case("MIT + file LICENSE", None, "mit"),
    _case("Apache-2.0 WITH LLVM-exception", None, "apache"),
    _case("Python-2.0", None, "psf"),
    _case("Unlicense", None, "public_domain"),
    _case("ISC", None, "other"),
    _case("Commercial or AGPLv3", None, "agpl", "proprietary"),
    _case("GPL-3.0-with-GCC-exception", None, "gpl3"),
    _case(None, None, "none"),
    _case("unknown", None, "none"),
    _case("X11 AND BSD-3-Clause", None, "mit", "bsd"),
    _case("GPL3+, partial:GCCRLE, partial:LGPL2+", None, "gpl3"),
    _case("MIT/X derivate (http://curl.haxx.se/docs/copyright.html)", "MIT", "mit"),
    _case("LGPL-2.1-only", "GPL", "lgpl"),
    _case("Apache 2.0 or BSD 2-Clause", None, "apache", "bsd"),
    _case("GPL, LGPL, FDL, custom", None, "gpl2", "gpl3", "lgpl", "other"),
    _case("Free software (MIT-like)", None, "mit"),
    _case("MPL-2.0", "MOZILLA", "other"),
]


@pytest.mark.parametrize(("license", "family", "expected"), REAL_REPODATA_STRINGS)
def test_real_repodata_strings_map_to_their_families(
    license: str | None, family: str | None, expected: frozenset[str]
) -> None:
    assert license_families(license, family) == expected


# Rule 1: a valid SPDX expression maps key by key, exceptions being qualifiers.
SPDX_KEYS = [
    _case("AGPL-3.0-only", None, "agpl"),
    _case("AGPL-3.0-or-later", None, "agpl"),
    _case("LGPL-3.0-or-later", None, "lgpl"),
    _case("LGPL-2.1-or-later", None, "lgpl"),
    _case("GPL-2.0-only", None, "gpl2"),
    _case("GPL-2.0+", None, "gpl2"),
    _case("GPL-3.0-or-later", None, "gpl3"),
    _case("GPL-2.0-only WITH Classpath-exception-2.0", None, "gpl2"),
    _case("BSD-2-Clause", None, "bsd"),
    _case("0BSD", None, "bsd"),
    _case("MIT-0", None, "mit"),
    _case("X11", None, "mit"),
    _case("Apache-2.0", None, "apache"),
    _case("PSF-2.0", None, "psf"),
    _case("CC0-1.0", None, "public_domain"),
    _case("Zlib", None, "other"),
    _case("BSL-1.0", None, "other"),
    _case("mit", None, "mit", id="spdx-keys-case-insensitively"),
    _case("GPL-2.0-or-later OR GPL-3.0", None, "gpl2", "gpl3"),
    _case("MIT AND Apache-2.0", None, "mit", "apache"),
]


@pytest.mark.parametrize(("license", "family", "expected"), SPDX_KEYS)
def test_spdx_expressions_map_key_by_key(
    license: str | None, family: str | None, expected: frozenset[str]
) -> None:
    assert license_families(license, family) == expected


# Rule 2: free text is split into terms, each matched against the families' spellings.
COMMON_SPELLINGS = [
    _case("AGPLv3", None, "agpl"),
    _case("GNU Affero General Public License v3", None, "agpl"),
    _case("LGPLv2+", None, "lgpl"),
    _case("GNU Lesser General Public License", None, "lgpl"),
    _case("GNU Library General Public License v2", None, "lgpl"),
    _case("GNU General Public License v3 (GPLv3)", None, "gpl3"),
    _case("General Public License v2", None, "gpl2"),
    _case("GPL version 2", None, "gpl2"),
    _case("GPL v3", None, "gpl3"),
    _case("GPL_3", None, "gpl3"),
    _case("GPL2", None, "gpl2"),
    _case("GPL-3+", None, "gpl3"),
    _case("GPL (>= 3)", None, "gpl3"),
    _case("GPLv3 or later", None, "gpl3"),
    _case("GPLv2 with exceptions", None, "gpl2"),
    _case("BSD", None, "bsd"),
    _case("BSD-like", None, "bsd"),
    _case("2-clause BSD", None, "bsd"),
    _case("NetBSD", None, "bsd"),
    _case("Expat", None, "mit"),
    _case("MIT License", None, "mit"),
    _case("Apache License 2.0", None, "apache"),
    _case("ASL 2.0", None, "apache"),
    _case("Apache Software License", None, "apache"),
    _case("PSF", None, "psf"),
    _case("Python Software Foundation License", None, "psf"),
    _case("Public Domain", None, "public_domain"),
    _case("CC0", None, "public_domain"),
    _case("The Unlicense", None, "public_domain"),
    _case("Proprietary", None, "proprietary"),
    _case("Commercial", None, "proprietary"),
    _case("LicenseRef-Proprietary", None, "proprietary"),
    _case("LicenseRef-Public-Domain", None, "public_domain"),
    _case("LicenseRef-Custom", None, "other"),
    _case("Custom", None, "other"),
    _case("Permit", None, "other", id="mit-only-as-a-word"),
    _case("MIT; BSD", None, "mit", "bsd"),
    _case("MIT, BSD", None, "mit", "bsd"),
    _case("MIT AND Commercial", None, "mit", "proprietary"),
    _case("LGPL-2.1-or-later WITH exceptions", None, "lgpl"),
]


@pytest.mark.parametrize(("license", "family", "expected"), COMMON_SPELLINGS)
def test_common_spellings_name_their_families(
    license: str | None, family: str | None, expected: frozenset[str]
) -> None:
    assert license_families(license, family) == expected


NOISE_IS_IGNORED = [
    _case("MIT, see LICENSE", None, "mit"),
    _case("GPL-2 | file LICENSE", None, "gpl2"),
    _case("GPL-2.0-or-later, any later version", None, "gpl2"),
    _case("BSD-3-Clause | (FOSS)", None, "bsd"),
    _case("file LICENSE", None, "other", id="only-noise-is-other"),
]


@pytest.mark.parametrize(("license", "family", "expected"), NOISE_IS_IGNORED)
def test_noise_terms_name_no_family(
    license: str | None, family: str | None, expected: frozenset[str]
) -> None:
    assert license_families(license, family) == expected


# Rule 3: a GPL without a version takes it from license_family, else is both.
UNVERSIONED_GPL = [
    _case("GPL", "GPL3", "gpl3"),
    _case("GPL", "GPL2", "gpl2"),
    _case("GPL", None, "gpl2", "gpl3"),
    _case("GPL", "GPL", "gpl2", "gpl3"),
    _case("GPL", "LGPL", "gpl2", "gpl3"),
    _case("GPL", "Other", "gpl2", "gpl3"),
    _case("GNU General Public License", None, "gpl2", "gpl3"),
    _case("GNU GPL", "gpl3", "gpl3"),
    _case("GPL and MIT", "GPL3", "gpl3", "mit"),
    _case("GPL-1.0-or-later", "GPL3", "gpl3"),
]


@pytest.mark.parametrize(("license", "family", "expected"), UNVERSIONED_GPL)
def test_unversioned_gpl_takes_its_version_from_license_family(
    license: str | None, family: str | None, expected: frozenset[str]
) -> None:
    assert license_families(license, family) == expected


# Rule 4: when the string says nothing usable, license_family decides; with neither, "none".
LICENSE_FAMILY_FALLBACK = [
    _case("curl", "MIT", "mit"),
    _case(None, "BSD", "bsd"),
    _case("ISC", None, "other"),
    _case("ISC", "Other", "other"),
    _case("ISC", "none", "other"),
    _case("ISC", "not-a-family", "other"),
    _case("OpenSSL", "Apache", "apache"),
    _case("Tcl/Tk", "BSD", "bsd"),
    _case("unknown", "MIT", "mit"),
    _case("MIT", "BSD", "mit", id="a-usable-string-wins-over-license_family"),
    _case(None, "AGPL", "agpl"),
    _case(None, "GPL", "gpl2", "gpl3"),
    _case(None, "gpl2", "gpl2"),
    _case(None, "GPL3", "gpl3"),
    _case(None, "LGPL", "lgpl"),
    _case(None, "APACHE", "apache"),
    _case(None, "PSF", "psf"),
    _case(None, "Public-Domain", "public_domain"),
    _case(None, "public_domain", "public_domain"),
    _case(None, "PROPRIETARY", "proprietary"),
    _case(None, "CC", "other"),
    _case(None, "MOZILLA", "other"),
    _case(None, "Other", "other"),
    _case(None, "not-a-family", "other"),
    _case(None, "NONE", "none"),
    _case(None, "  mit  ", "mit", id="license_family-is-stripped"),
]


@pytest.mark.parametrize(("license", "family", "expected"), LICENSE_FAMILY_FALLBACK)
def test_license_family_decides_when_the_string_says_nothing_usable(
    license: str | None, family: str | None, expected: frozenset[str]
) -> None:
    assert license_families(license, family) == expected


@pytest.mark.parametrize(
    "license", [None, "", "   ", "unknown", "UNKNOWN", "None", "Not specified", "N/A", "NA", "-"]
)
def test_missing_or_unknown_license_without_license_family_is_none(license: str | None) -> None:
    assert license_families(license, None) == frozenset({"none"})


def test_every_answer_is_a_frozenset_of_known_families() -> None:
    table = (
        REAL_REPODATA_STRINGS
        + SPDX_KEYS
        + COMMON_SPELLINGS
        + NOISE_IS_IGNORED
        + UNVERSIONED_GPL
        + LICENSE_FAMILY_FALLBACK
    )
    for case in table:
        license, family, _expected = case.values
        families = license_families(license, family)
        assert isinstance(families, frozenset)
        assert families and families <= set(FAMILIES), case.id


def test_every_family_is_reachable() -> None:
    """Each family a filter may name is the answer for some string."""
    table = REAL_REPODATA_STRINGS + SPDX_KEYS + COMMON_SPELLINGS + LICENSE_FAMILY_FALLBACK
    reached = set().union(*(case.values[2] for case in table))
    assert reached == set(FAMILIES)


@pytest.mark.parametrize(
    ("license", "expected"),
    [
        ("LicenseRef-Commercial", {"proprietary"}),
        ("LicenseRef-Proprietary-HERE", {"proprietary"}),
        ("LicenseRef-PublicDomain", {"public_domain"}),
    ],
)
def test_known_licenseref_ids_keep_their_family(license: str, expected: set[str]) -> None:
    assert license_families(license, None) == expected


@pytest.mark.parametrize(
    ("license", "expected"),
    [
        ("Apache License, Version 2.0", {"apache"}),
        ("GNU General Public License, version 2", {"gpl2"}),
    ],
)
def test_a_version_after_a_comma_qualifies_the_license(license: str, expected: set[str]) -> None:
    assert license_families(license, None) == expected
