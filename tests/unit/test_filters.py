"""Filter sets: validation and the edit-merge rule."""

from __future__ import annotations

import pytest

from headwater.errors import InvalidFilterError
from headwater.filters import FilterSet, parse_filter_set


def test_empty_and_none_mean_no_rules() -> None:
    assert parse_filter_set(None) == FilterSet() == parse_filter_set({})
    assert FilterSet().allows_subdir("linux-64")


def test_subdirs_are_checked_and_deduplicated() -> None:
    filters = parse_filter_set({"subdirs": ["noarch", "linux-64", "noarch"]})
    assert filters.subdirs == ("noarch", "linux-64")
    assert filters.allows_subdir("linux-64") and not filters.allows_subdir("osx-64")
    with pytest.raises(InvalidFilterError, match="unknown subdir 'linux-65'"):
        parse_filter_set({"subdirs": ["linux-65"]})
    with pytest.raises(InvalidFilterError, match="filter 'subdirs'"):
        parse_filter_set({"subdirs": "linux-64"})


def test_unknown_keys_are_refused_by_name() -> None:
    with pytest.raises(InvalidFilterError, match="unknown filter key 'colour'"):
        parse_filter_set({"colour": "blue"})
    with pytest.raises(InvalidFilterError, match="filters must be an object"):
        parse_filter_set(["subdirs"])  # type: ignore[arg-type]


def test_merge_replaces_sent_keys_and_null_removes_them() -> None:
    stored = parse_filter_set({"subdirs": ["linux-64"]})
    assert stored.merged({"subdirs": ["noarch"]}).subdirs == ("noarch",)
    assert stored.merged({}).subdirs == ("linux-64",)
    assert stored.merged({"subdirs": None}) == FilterSet()
    with pytest.raises(InvalidFilterError, match="unknown filter key 'bogus'"):
        stored.merged({"bogus": None})


def test_json_form_omits_absent_rules() -> None:
    assert parse_filter_set({"subdirs": ["noarch"]}).to_json() == {"subdirs": ["noarch"]}
    assert FilterSet().to_json() == {}


def test_cve_unscored_score_is_a_score_that_needs_a_threshold() -> None:
    both = parse_filter_set({"cve_score_threshold": 7, "cve_unscored_score": 5})
    assert both.to_json() == {"cve_score_threshold": 7.0, "cve_unscored_score": 5.0}
    with pytest.raises(InvalidFilterError, match="filter 'cve_unscored_score'"):
        parse_filter_set({"cve_score_threshold": 7, "cve_unscored_score": 11})
    with pytest.raises(InvalidFilterError, match="set cve_score_threshold too"):
        parse_filter_set({"cve_unscored_score": 5})
    with pytest.raises(InvalidFilterError, match="set cve_score_threshold too"):
        both.merged({"cve_score_threshold": None})
    assert both.merged({"cve_unscored_score": None}).cve_unscored_score is None
