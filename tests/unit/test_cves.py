"""Advisory parsing, OSV range evaluation, CVSS scores and the file score rule."""

from __future__ import annotations

import pytest
from packaging.version import Version

from headwater.cves.advisories import (
    SUMMARY_LENGTH,
    AffectedPackage,
    parse_document,
    summary_from_details,
)
from headwater.cves.names import CondaNames, _one_name
from headwater.cves.ranges import affects
from headwater.cves.scoring import file_score, has_unscored, severity, vector_score


def package(
    *ranges: tuple[tuple[str, str], ...], versions: tuple[str, ...] = ()
) -> AffectedPackage:
    return AffectedPackage("PyPI", "demo", tuple(ranges), versions)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.9", False), ("1.0", True), ("1.5", True), ("2.0", False), ("2.5", True), ("3.0", True),
     ("3.1", False)],
)  # fmt: skip
def test_ranges_with_introduced_fixed_and_last_affected(version: str, expected: bool) -> None:
    affected = package(
        (("introduced", "1.0"), ("fixed", "2.0")),
        (("introduced", "2.5"), ("last_affected", "3.0")),
    )
    assert affects(affected, Version(version)) is expected


def test_introduced_zero_and_explicit_versions() -> None:
    assert affects(package((("introduced", "0"), ("fixed", "1.0"))), Version("0.0.1"))
    assert affects(package(versions=("4.2",)), Version("4.2.0"))
    assert not affects(package(versions=("4.2",)), Version("4.3"))
    assert affects(package((("introduced", "0"), ("fixed", "1.0"))), Version("1.0rc1"))


def test_osv_parsing_keys_by_cve_and_drops_git_ranges() -> None:
    (advisory,) = parse_document(
        {
            "id": "PYSEC-2018-28",
            "modified": "2021-06-16T00:03:24Z",
            "aliases": ["GHSA-x84v-xcm2-53pg", "CVE-2018-18074"],
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "Requests"},
                    "ranges": [
                        {"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "c45d7c4"}]},
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20.0"}]},
                    ],
                }
            ],
        }
    )
    assert advisory.cve_id == "CVE-2018-18074"
    assert advisory.affected[0].name == "requests"
    assert advisory.affected[0].ranges == ((("introduced", "0"), ("fixed", "2.20.0")),)
    (own,) = parse_document({"id": "PYSEC-2099-1", "modified": "2024-01-01T00:00:00Z"})
    assert own.cve_id == "PYSEC-2099-1"  # no CVE alias: keeps its own id


def test_nvd_record_prefers_nvd_scores_and_reads_v2() -> None:
    (record,) = parse_document(
        {
            "vulnerabilities": [
                {
                    "cve": {
                        "id": "CVE-2099-1",
                        "descriptions": [{"lang": "en", "value": "broken"}],
                        "metrics": {
                            "cvssMetricV31": [
                                {"source": "other@example.org", "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:H/PR:H/UI:N/S:U/C:H/I:H/A:N", "baseScore": 5.9}},
                                {"source": "nvd@nist.gov", "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N", "baseScore": 8.1}},
                            ],
                            "cvssMetricV2": [{"source": "nvd@nist.gov", "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}}],
                        },
                    }
                }
            ]
        }
    )  # fmt: skip
    assert record.cvss3 is not None and record.cvss3.score == 8.1
    assert record.cvss2 is not None and record.cvss2.score == 7.5  # computed from the vector
    assert record.description == "broken"


def test_scores_and_bands() -> None:
    assert vector_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert vector_score("not a vector") is None
    assert [severity(s) for s in (None, 0.0, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0)] == [
        "Unscored", "None", "Low", "Medium", "Medium", "High", "High", "Critical",
    ]  # fmt: skip


def test_file_score_rule() -> None:
    assert file_score([("cleared", 9.8), ("disputed", 4.0)]) == 9.8
    assert file_score([("reported", 9.8), ("active", 5.0)]) == 9.8
    assert file_score([("active", 5.0), ("cleared", 9.8)]) == 5.0
    assert file_score([("reported", None), ("cleared", 9.8)]) is None
    assert file_score([]) is None


def test_an_unscored_unresolved_match_is_said() -> None:
    assert has_unscored([("reported", None), ("active", 9.8)])
    assert has_unscored([("active", None)])
    assert not has_unscored([("cleared", None), ("reported", 5.0)])  # resolved: not counted
    assert not has_unscored([])


def test_a_summary_falls_back_to_the_first_sentence_of_the_details() -> None:
    markdown = "### Impact\n\nThe *parser* reads `x`. It then crashes.\n\n### Patches\nNone."
    assert summary_from_details(markdown) == "The parser reads x."
    assert summary_from_details("One line\nwrapped here. Second one.") == "One line wrapped here."
    long = summary_from_details("word " * 100)
    assert long is not None and len(long) <= SUMMARY_LENGTH and long.endswith("word…")
    assert summary_from_details("version 2.20.0 for Python. Then") == "version 2.20.0 for Python."
    assert summary_from_details("") is None and summary_from_details("### Only") is None


def test_conda_names() -> None:
    names = CondaNames({"pyyaml": "pyyaml", "libfoo": None}, {"matplotlib-base": "matplotlib"})
    assert names.pypi_name("matplotlib-base") == "matplotlib"
    assert names.pypi_name("libfoo") is None
    assert names.pypi_name("Requests") == "requests"  # not listed: the same name
    assert _one_name("arm_pyart", ["arm-pyart", "requests"]) == "arm-pyart"
    assert _one_name("bundle", ["a", "b"]) is None
