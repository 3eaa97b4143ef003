"""Which subdirs a conda mirror run reads, from the channel's and the mirror's filters."""

from __future__ import annotations

import pytest

from headwater.filters import parse_filter_set
from headwater.models import MirrorMode, MirrorType
from headwater.services.mirror_job import MirrorJob


def job(mirror: list[str] | None, channel: list[str] | None) -> MirrorJob:
    return MirrorJob(
        run_id=1,
        worker_id="w",
        mirror_id=1,
        mirror_name="m",
        mirror_type=MirrorType.conda,
        channel_id=1,
        channel_name="c",
        source_root="http://x/",
        mode=MirrorMode.passive,
        proxy=None,
        mirror_filters=parse_filter_set({"subdirs": mirror} if mirror is not None else {}),
        channel_filters=parse_filter_set({"subdirs": channel} if channel is not None else {}),
    )


@pytest.mark.parametrize(
    ("mirror", "channel", "expected"),
    [
        (None, None, None),
        (["linux-64", "noarch"], None, ["linux-64", "noarch"]),
        (None, ["osx-arm64"], ["osx-arm64"]),
        (["linux-64", "noarch"], ["noarch", "osx-64"], ["noarch"]),
        (["linux-64"], ["osx-arm64"], []),  # nothing in common means nothing, not everything
    ],
)
def test_named_subdirs(
    mirror: list[str] | None, channel: list[str] | None, expected: list[str] | None
) -> None:
    assert job(mirror, channel).named_subdirs() == expected


def test_the_filters_digest_changes_with_mode_and_filters() -> None:
    base = job(["noarch"], None)
    assert base.filters_digest == job(["noarch"], None).filters_digest
    assert base.filters_digest != job(["noarch", "linux-64"], None).filters_digest
    assert base.filters_digest != job(["noarch"], ["noarch"]).filters_digest


def test_the_filters_digest_changes_with_cve_unscored_score() -> None:
    def with_cve(filters: dict[str, object]) -> MirrorJob:
        base = job(None, None)
        return MirrorJob(**{**vars(base), "mirror_filters": parse_filter_set(filters)})

    threshold = with_cve({"cve_score_threshold": 7.0})
    lenient = with_cve({"cve_score_threshold": 7.0, "cve_unscored_score": 5.0})
    assert threshold.filters_digest != lenient.filters_digest
    assert lenient.filters_digest == with_cve(lenient.mirror_filters.to_json()).filters_digest
