"""Judging records against filter sets: which rule drops a record, and the reason it gives."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from headwater.filters import FilterSet, named_subdirs, nothing_passes, parse_filter_set
from headwater.filters.rules import CveStanding, Exclusion, MirrorRules, RuleSet
from headwater.formats.conda.repodata import CondaRecord

NOON_2024_03_15 = int(dt.datetime(2024, 3, 15, 12, tzinfo=dt.UTC).timestamp() * 1000)


def said(exclusion: Exclusion | None) -> Exclusion | None:
    """The reason and sentence of an exclusion (the filter it names is tested in
    test_dependencies_conda.py)."""
    return None if exclusion is None else Exclusion(*exclusion[:2])


def _ms(*parts: int) -> int:
    return int(dt.datetime(*parts, tzinfo=dt.UTC).timestamp() * 1000)


def record(
    name: str = "numpy",
    version: str = "1.26.4",
    build: str = "py39h0_0",
    build_number: int = 0,
    timestamp: int | None = NOON_2024_03_15,
    license: str | None = "BSD-3-Clause",
    license_family: str | None = "BSD",
    sha256: str = "a" * 64,
) -> CondaRecord:
    return CondaRecord(
        filename=f"{name}-{version}-{build}.conda",
        name=name,
        version=version,
        build=build,
        build_number=build_number,
        sha256=sha256,
        size=1024,
        timestamp=timestamp,
        license=license,
        license_family=license_family,
        raw=b"{}",
    )


def rules(**filters: Any) -> RuleSet:
    return RuleSet(parse_filter_set(filters))


class FakeCve:
    """A CVE lookup answering by package name, remembering what it was asked."""

    def __init__(self, **standings: CveStanding) -> None:
        self.standings = standings
        self.asked: list[str] = []

    def __call__(self, judged: Any) -> CveStanding:
        self.asked.append(judged.name)
        return self.standings.get(judged.name, CveStanding(score=None, has_reported=False))


# -- no rules, single rules -----------------------------------------------------------------


def test_an_empty_set_passes_everything() -> None:
    assert rules().judge(record(), "linux-64") is None
    assert rules().judge(record(timestamp=None, license=None), "win-arm64") is None


def test_subdirs_drop_other_subdirs() -> None:
    ruleset = rules(subdirs=["linux-64", "noarch"])
    assert ruleset.judge(record(), "noarch") is None
    assert said(ruleset.judge(record(), "osx-64")) == Exclusion(
        "subdir", "subdir osx-64 is not in subdirs"
    )


def test_exclude_specs_drop_matches_naming_the_spec() -> None:
    ruleset = rules(exclude_specs=["scipy", "numpy >=1.26", "r-*"])
    assert said(ruleset.judge(record(version="1.26.4"), "linux-64")) == Exclusion(
        "spec", "matches exclude_specs 'numpy >=1.26'"
    )
    assert ruleset.judge(record(version="1.25.0"), "linux-64") is None
    assert said(ruleset.judge(record(name="r-base"), "linux-64")) == Exclusion(
        "spec", "matches exclude_specs 'r-*'"
    )
    assert ruleset.judge(record(name="python"), "linux-64") is None


def test_exclude_specs_may_name_a_subdir() -> None:
    ruleset = rules(exclude_specs=["numpy[subdir=osx-64]"])
    assert said(ruleset.judge(record(), "osx-64")) == Exclusion(
        "spec", "matches exclude_specs 'numpy[subdir=osx-64]'"
    )
    assert ruleset.judge(record(), "linux-64") is None


def test_only_specs_drop_everything_they_do_not_match() -> None:
    ruleset = rules(only_specs=["python >=3.9", "numpy * py39*"])
    assert ruleset.judge(record(name="python", version="3.9.18"), "linux-64") is None
    assert ruleset.judge(record(build="py39h0_0"), "linux-64") is None
    for dropped in (
        record(name="python", version="3.8.10"),
        record(build="py310h0_0"),
        record(name="scipy"),
    ):
        assert said(ruleset.judge(dropped, "linux-64")) == Exclusion(
            "spec", "matches none of only_specs"
        )


def test_include_specs_alone_restrict_nothing() -> None:
    assert rules(include_specs=["python"]).judge(record(name="scipy"), "linux-64") is None


def test_exclude_licenses_drop_any_named_family() -> None:
    ruleset = rules(exclude_licenses=["gpl3"])
    gpl = record(license="MIT OR GPL-3.0-only", license_family=None)
    assert said(ruleset.judge(gpl, "linux-64")) == Exclusion(
        "license", "license 'MIT OR GPL-3.0-only' (gpl3, mit) is in exclude_licenses"
    )
    assert ruleset.judge(record(license="MIT"), "linux-64") is None


def test_include_licenses_drop_records_of_no_named_family() -> None:
    ruleset = rules(include_licenses=["mit", "bsd"])
    assert ruleset.judge(record(license="BSD-3-Clause"), "linux-64") is None
    assert ruleset.judge(record(license="MIT OR GPL-3.0-only"), "linux-64") is None
    assert said(
        ruleset.judge(record(license="GPL-3.0-only", license_family="GPL"), "linux-64")
    ) == Exclusion("license", "license 'GPL-3.0-only' (gpl3) is not in include_licenses")


def test_a_record_without_license_is_in_family_none() -> None:
    assert said(
        rules(exclude_licenses=["none"]).judge(
            record(license=None, license_family=None), "linux-64"
        )
    ) == Exclusion("license", "license None (none) is in exclude_licenses")
    assert rules(exclude_licenses=["none"]).judge(record(), "linux-64") is None


# -- dates ----------------------------------------------------------------------------------

DATES = {"date_from": "2024-03-01", "date_to": "2024-03-31"}


@pytest.mark.parametrize(
    "timestamp",
    [
        _ms(2024, 3, 1),
        _ms(2024, 3, 15, 12),
        _ms(2024, 3, 31, 23, 59, 59) + 999,
    ],
    ids=["first-instant-of-date_from", "inside", "last-millisecond-of-date_to"],
)
def test_dates_are_inclusive_whole_days_in_utc(timestamp: int) -> None:
    assert rules(**DATES).judge(record(timestamp=timestamp), "linux-64") is None


@pytest.mark.parametrize(
    "timestamp",
    [_ms(2024, 2, 29, 23, 59, 59) + 999, _ms(2024, 1, 1), 0],
    ids=["last-millisecond-before", "weeks-before", "epoch"],
)
def test_records_before_date_from_are_dropped(timestamp: int) -> None:
    assert said(rules(**DATES).judge(record(timestamp=timestamp), "linux-64")) == Exclusion(
        "date", "published before date_from 2024-03-01"
    )


@pytest.mark.parametrize(
    "timestamp",
    [_ms(2024, 4, 1), _ms(2024, 4, 1, 0, 0, 1), _ms(2025, 1, 1)],
    ids=["midnight-after-date_to", "second-after", "next-year"],
)
def test_records_after_date_to_are_dropped(timestamp: int) -> None:
    assert said(rules(**DATES).judge(record(timestamp=timestamp), "linux-64")) == Exclusion(
        "date", "published after date_to 2024-03-31"
    )


def test_a_single_day_range_takes_that_whole_day() -> None:
    ruleset = rules(date_from="2024-03-15", date_to="2024-03-15")
    assert ruleset.judge(record(timestamp=_ms(2024, 3, 15)), "linux-64") is None
    assert ruleset.judge(record(timestamp=_ms(2024, 3, 15, 23, 59, 59) + 999), "linux-64") is None
    assert ruleset.judge(record(timestamp=_ms(2024, 3, 16)), "linux-64") is not None
    assert ruleset.judge(record(timestamp=_ms(2024, 3, 15) - 1), "linux-64") is not None


def test_open_ended_date_ranges() -> None:
    since = rules(date_from="2024-03-01")
    assert since.judge(record(timestamp=_ms(2030, 1, 1)), "linux-64") is None
    assert since.judge(record(timestamp=_ms(2024, 2, 1)), "linux-64") is not None
    until = rules(date_to="2024-03-31")
    assert until.judge(record(timestamp=0), "linux-64") is None
    assert until.judge(record(timestamp=_ms(2024, 4, 1)), "linux-64") is not None


@pytest.mark.parametrize("filters", [DATES, {"date_from": "2024-03-01"}, {"date_to": "2024-03-31"}])
def test_date_rules_drop_records_without_timestamp(filters: dict[str, str]) -> None:
    assert said(rules(**filters).judge(record(timestamp=None), "linux-64")) == Exclusion(
        "date", "no timestamp"
    )


# -- CVE ------------------------------------------------------------------------------------


def cve_rules(cve: FakeCve, **filters: Any) -> RuleSet:
    return RuleSet(parse_filter_set(filters), cve)


def test_a_cve_score_above_the_threshold_drops_the_record() -> None:
    cve = FakeCve(numpy=CveStanding(score=7.5, has_reported=False))
    assert said(cve_rules(cve, cve_score_threshold=7.0).judge(record(), "linux-64")) == Exclusion(
        "cve", "CVE score 7.5 is above 7.0"
    )


@pytest.mark.parametrize("score", [7.0, 6.9, 0.0, None], ids=["at", "below", "zero", "no-match"])
def test_a_cve_score_at_or_below_the_threshold_passes(score: float | None) -> None:
    cve = FakeCve(numpy=CveStanding(score=score, has_reported=True))
    assert cve_rules(cve, cve_score_threshold=7.0).judge(record(), "linux-64") is None


def test_uncurated_cve_matches_drop_the_record_when_asked() -> None:
    cve = FakeCve(numpy=CveStanding(score=None, has_reported=True))
    assert said(
        cve_rules(cve, exclude_non_curated_cve=True).judge(record(), "linux-64")
    ) == Exclusion("cve", "has CVE matches nobody has curated yet")
    assert (
        cve_rules(cve, exclude_non_curated_cve=True).judge(record(name="scipy"), "linux-64") is None
    )
    assert cve_rules(cve, exclude_non_curated_cve=False).judge(record(), "linux-64") is None
    assert cve_rules(cve, cve_score_threshold=5.0).judge(record(), "linux-64") is None


def test_an_unscored_match_counts_as_above_the_threshold_by_default() -> None:
    cve = FakeCve(numpy=CveStanding(score=5.0, has_reported=True, unscored=True))
    exclusion = cve_rules(cve, cve_score_threshold=7.0).judge(record(), "linux-64")
    assert said(exclusion) == Exclusion("cve", "unscored CVE counted above cve_score_threshold 7.0")
    assert exclusion is not None and exclusion.key == "cve_score_threshold"
    # Without a threshold an unscored match drops nothing.
    assert cve_rules(cve, subdirs=["linux-64"]).judge(record(), "linux-64") is None


def test_cve_unscored_score_says_what_an_unscored_match_counts_as() -> None:
    cve = FakeCve(numpy=CveStanding(score=None, has_reported=True, unscored=True))
    lenient = cve_rules(cve, cve_score_threshold=7.0, cve_unscored_score=5.0)
    assert lenient.judge(record(), "linux-64") is None
    at = cve_rules(cve, cve_score_threshold=7.0, cve_unscored_score=7.0)
    assert at.judge(record(), "linux-64") is None
    strict = cve_rules(cve, cve_score_threshold=7.0, cve_unscored_score=8.5)
    assert said(strict.judge(record(), "linux-64")) == Exclusion(
        "cve",
        "unscored CVE counted as 8.5 (cve_unscored_score), above cve_score_threshold 7.0",
    )


def test_a_scored_match_above_the_threshold_is_said_before_an_unscored_one() -> None:
    cve = FakeCve(numpy=CveStanding(score=9.1, has_reported=True, unscored=True))
    exclusion = cve_rules(cve, cve_score_threshold=7.0, cve_unscored_score=0.0).judge(
        record(), "linux-64"
    )
    assert said(exclusion) == Exclusion("cve", "CVE score 9.1 is above 7.0")


def test_the_score_reason_comes_before_the_uncurated_reason() -> None:
    cve = FakeCve(numpy=CveStanding(score=9.8, has_reported=True))
    exclusion = cve_rules(cve, cve_score_threshold=7.0, exclude_non_curated_cve=True).judge(
        record(), "linux-64"
    )
    assert said(exclusion) == Exclusion("cve", "CVE score 9.8 is above 7.0")


def test_the_cve_lookup_is_not_asked_without_cve_rules() -> None:
    cve = FakeCve(numpy=CveStanding(score=10.0, has_reported=True))
    assert cve_rules(cve, subdirs=["linux-64"]).judge(record(), "linux-64") is None
    assert cve.asked == []


def test_the_cve_lookup_is_not_asked_for_records_already_dropped() -> None:
    cve = FakeCve()
    ruleset = cve_rules(cve, cve_score_threshold=7.0, exclude_specs=["numpy"])
    assert ruleset.judge(record(), "linux-64") is not None
    assert cve.asked == []
    assert ruleset.judge(record(name="scipy"), "linux-64") is None
    assert cve.asked == ["scipy"]


# -- order of rules -------------------------------------------------------------------------

EVERY_RULE = {
    "subdirs": ["linux-64"],
    "exclude_specs": ["numpy"],
    "exclude_licenses": ["gpl3"],
    "date_from": "2024-03-01",
    "cve_score_threshold": 7.0,
}


@pytest.mark.parametrize(
    ("subdir", "fields", "reason"),
    [
        ("osx-64", {}, "subdir"),
        ("linux-64", {}, "spec"),
        ("linux-64", {"name": "scipy"}, "license"),
        ("linux-64", {"name": "scipy", "license": "MIT"}, "date"),
        ("linux-64", {"name": "scipy", "license": "MIT", "timestamp": NOON_2024_03_15}, "cve"),
    ],
)
def test_a_record_failing_several_rules_gets_the_first_reason(
    subdir: str, fields: dict[str, Any], reason: str
) -> None:
    """Each step fixes the failure of one more rule: the reason moves to the next rule."""
    cve = FakeCve(numpy=CveStanding(9.0, False), scipy=CveStanding(9.0, False))
    ruleset = cve_rules(cve, **EVERY_RULE)
    failing = {
        "name": "numpy",
        "license": "GPL-3.0-only",
        "license_family": None,
        "timestamp": _ms(2024, 1, 1),
    }
    exclusion = ruleset.judge(record(**{**failing, **fields}), subdir)
    assert exclusion is not None
    assert exclusion.reason == reason


def test_only_specs_come_before_licenses_and_dates() -> None:
    ruleset = rules(only_specs=["python"], exclude_licenses=["bsd"], date_from="2030-01-01")
    assert said(ruleset.judge(record(), "linux-64")) == Exclusion(
        "spec", "matches none of only_specs"
    )


# -- include_specs --------------------------------------------------------------------------


def test_include_specs_let_a_record_past_exclude_specs() -> None:
    ruleset = rules(exclude_specs=["numpy"], include_specs=["numpy >=1.26"])
    assert ruleset.judge(record(version="1.26.4"), "linux-64") is None
    assert said(ruleset.judge(record(version="1.25.0"), "linux-64")) == Exclusion(
        "spec", "matches exclude_specs 'numpy'"
    )


def test_include_specs_let_a_record_past_the_license_rules() -> None:
    gpl = record(name="gcc", license="GPL-3.0-only", license_family="GPL")
    for licenses in ({"exclude_licenses": ["gpl3"]}, {"include_licenses": ["mit"]}):
        assert rules(**licenses).judge(gpl, "linux-64") is not None
        assert rules(**licenses, include_specs=["gcc"]).judge(gpl, "linux-64") is None


def test_include_specs_do_not_let_a_record_past_subdirs() -> None:
    ruleset = rules(subdirs=["linux-64"], include_specs=["numpy"])
    assert said(ruleset.judge(record(), "osx-64")) == Exclusion(
        "subdir", "subdir osx-64 is not in subdirs"
    )


def test_include_specs_do_not_let_a_record_past_dates() -> None:
    ruleset = rules(date_from="2024-03-01", include_specs=["numpy"], exclude_specs=["numpy"])
    assert said(ruleset.judge(record(timestamp=_ms(2024, 1, 1)), "linux-64")) == Exclusion(
        "date", "published before date_from 2024-03-01"
    )
    assert said(ruleset.judge(record(timestamp=None), "linux-64")) == Exclusion(
        "date", "no timestamp"
    )


def test_include_specs_do_not_let_a_record_past_cve_rules() -> None:
    cve = FakeCve(numpy=CveStanding(score=9.0, has_reported=False))
    ruleset = cve_rules(cve, cve_score_threshold=7.0, include_specs=["numpy"])
    assert said(ruleset.judge(record(), "linux-64")) == Exclusion(
        "cve", "CVE score 9.0 is above 7.0"
    )


def test_include_specs_only_cover_the_records_they_match() -> None:
    ruleset = rules(exclude_licenses=["bsd"], include_specs=["numpy[subdir=linux-64]"])
    assert ruleset.judge(record(), "linux-64") is None
    assert ruleset.judge(record(), "osx-64") is not None


# -- mirror then channel --------------------------------------------------------------------


def test_a_record_passing_both_sets_enters() -> None:
    mirror_rules = MirrorRules(
        parse_filter_set({"subdirs": ["linux-64"]}), parse_filter_set({"exclude_specs": ["r-*"]})
    )
    assert mirror_rules.judge(record(), "linux-64") is None


def test_the_mirror_set_drops_first_with_its_own_reason() -> None:
    mirror_rules = MirrorRules(
        parse_filter_set({"exclude_specs": ["numpy"]}), parse_filter_set({"subdirs": ["noarch"]})
    )
    assert said(mirror_rules.judge(record(), "linux-64")) == Exclusion(
        "spec", "matches exclude_specs 'numpy'"
    )


def test_a_record_the_channel_set_drops_has_reason_channel_filter() -> None:
    mirror_rules = MirrorRules(FilterSet(), parse_filter_set({"subdirs": ["noarch"]}))
    assert said(mirror_rules.judge(record(), "linux-64")) == Exclusion(
        "channel filter", "channel filter: subdir linux-64 is not in subdirs"
    )
    mirror_rules = MirrorRules(FilterSet(), parse_filter_set({"date_to": "2024-01-31"}))
    assert said(mirror_rules.judge(record(), "linux-64")) == Exclusion(
        "channel filter", "channel filter: published after date_to 2024-01-31"
    )


def test_include_specs_of_the_mirror_do_not_override_the_channel_set() -> None:
    mirror_rules = MirrorRules(
        parse_filter_set({"include_specs": ["numpy"], "exclude_licenses": ["bsd"]}),
        parse_filter_set({"exclude_licenses": ["bsd"]}),
    )
    assert said(mirror_rules.judge(record(), "linux-64")) == Exclusion(
        "channel filter", "channel filter: license 'BSD-3-Clause' (bsd) is in exclude_licenses"
    )


def test_both_sets_use_the_cve_lookup() -> None:
    cve = FakeCve(numpy=CveStanding(score=6.0, has_reported=False))
    mirror_rules = MirrorRules(
        parse_filter_set({"cve_score_threshold": 8.0}),
        parse_filter_set({"cve_score_threshold": 5.0}),
        cve,
    )
    assert said(mirror_rules.judge(record(), "linux-64")) == Exclusion(
        "channel filter", "channel filter: CVE score 6.0 is above 5.0"
    )
    assert cve.asked == ["numpy", "numpy"]


# -- nothing_passes and named_subdirs -------------------------------------------------------


def sets(*filters: dict[str, Any]) -> list[FilterSet]:
    return [parse_filter_set(one) for one in filters]


@pytest.mark.parametrize(
    "filters",
    [
        [],
        [{}],
        [{}, {}],
        [{"subdirs": ["linux-64", "noarch"]}, {"subdirs": ["noarch"]}],
        [{"include_licenses": ["mit", "bsd"]}, {"exclude_licenses": ["mit"]}],
        [{"include_licenses": ["mit"], "exclude_licenses": ["gpl3"]}],
        [{"date_from": "2024-03-01"}, {"date_to": "2024-03-01"}],
        [{"date_to": "2024-03-31"}, {"date_from": "2024-01-01", "date_to": "2024-12-31"}],
    ],
)
def test_nothing_passes_is_empty_when_some_file_could_pass(filters: list[dict[str, Any]]) -> None:
    assert nothing_passes(*sets(*filters)) == []


def test_nothing_passes_when_the_subdirs_share_none() -> None:
    assert nothing_passes(*sets({"subdirs": ["linux-64"]}, {"subdirs": ["osx-64", "noarch"]})) == [
        "the subdirs filters share no subdir"
    ]
    assert (
        nothing_passes(
            *sets({"subdirs": ["linux-64", "noarch"]}, {}, {"subdirs": ["noarch", "osx-64"]})
        )
        == []
    )


@pytest.mark.parametrize(
    "filters",
    [
        [{"include_licenses": ["mit"], "exclude_licenses": ["mit"]}],
        [{"include_licenses": ["mit", "bsd"]}, {"exclude_licenses": ["bsd", "mit", "gpl3"]}],
        [{"exclude_licenses": ["mit"]}, {"include_licenses": ["mit"]}],
        [
            {"include_licenses": ["mit", "bsd"], "exclude_licenses": ["mit"]},
            {"exclude_licenses": ["bsd"]},
        ],
    ],
)
def test_nothing_passes_when_every_included_license_is_excluded(
    filters: list[dict[str, Any]],
) -> None:
    reasons = nothing_passes(*sets(*filters))
    assert len(reasons) == 1
    assert reasons[0].startswith("include_licenses ")
    assert reasons[0].endswith(" are all excluded")


def test_nothing_passes_when_the_date_ranges_do_not_overlap() -> None:
    assert nothing_passes(*sets({"date_from": "2024-03-02"}, {"date_to": "2024-03-01"})) == [
        "no date is on or after 2024-03-02 and on or before 2024-03-01"
    ]


def test_nothing_passes_gives_every_reason() -> None:
    reasons = nothing_passes(
        *sets(
            {"subdirs": ["linux-64"], "include_licenses": ["mit"], "date_from": "2025-01-01"},
            {"subdirs": ["noarch"], "exclude_licenses": ["mit"], "date_to": "2024-12-31"},
        )
    )
    assert reasons == [
        "the subdirs filters share no subdir",
        "include_licenses mit are all excluded",
        "no date is on or after 2025-01-01 and on or before 2024-12-31",
    ]


def test_nothing_passes_allows_for_include_specs_past_licenses() -> None:
    mirror, channel = sets(
        {"include_licenses": ["mit"], "include_specs": ["python"]}, {"exclude_licenses": ["mit"]}
    )
    python = record(name="python", license="Python-2.0", license_family=None)
    assert MirrorRules(mirror, channel).judge(python, "linux-64") is None  # something passes
    assert nothing_passes(mirror, channel) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], None),
        ([{}, {}], None),
        ([{"subdirs": ["noarch", "linux-64"]}, {}], ["linux-64", "noarch"]),
        ([{}, {"subdirs": ["osx-64"]}], ["osx-64"]),
        (
            [{"subdirs": ["linux-64", "noarch", "osx-64"]}, {"subdirs": ["noarch", "osx-64"]}],
            ["noarch", "osx-64"],
        ),
        ([{"subdirs": ["linux-64"]}, {"subdirs": ["noarch"]}], []),
        ([{"subdirs": []}, {}], []),
    ],
)
def test_named_subdirs_are_those_every_naming_set_allows(
    filters: list[dict[str, Any]], expected: list[str] | None
) -> None:
    assert named_subdirs(*sets(*filters)) == expected
