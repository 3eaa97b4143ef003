"""The pieces of the dependency UI that need no server: the must_install lines of the channel's
Settings form, and the preview and run report templates given the JSON they show."""

from __future__ import annotations

from typing import Any

from headwater.schemas.previews import PreviewOut
from headwater.web.channels import must_install_entry, must_install_line
from headwater.web.session import templates


def test_must_install_lines_carry_an_optional_platform_after_the_last_at() -> None:
    assert must_install_entry("numpy >=1.26") == {"spec": "numpy >=1.26", "platform": None}
    assert must_install_entry(" numpy >=1.26 @ linux-64 ") == {
        "spec": "numpy >=1.26",
        "platform": "linux-64",
    }
    assert must_install_entry("numpy@osx-arm64") == {"spec": "numpy", "platform": "osx-arm64"}
    # A PEP 508 direct reference ends with a URL, not a platform.
    url = "pkg @ https://example.org/pkg-1.0-py3-none-any.whl"
    assert must_install_entry(url) == {"spec": url, "platform": None}
    for entry in ({"spec": "numpy", "platform": None}, {"spec": "numpy", "platform": "win-64"}):
        assert must_install_entry(must_install_line(entry)) == entry


def _render(name: str, context: dict[str, Any]) -> str:
    return templates.get_template(name).render(context)


def test_the_preview_lists_files_taken_as_dependencies_with_their_reason() -> None:
    file = {
        "filename": "hw-base-1.0-0.conda",
        "subdir": "noarch",
        "name": "hw-base",
        "version": "1.0",
        "build": "0",
        "license": "MIT",
        "license_families": ["mit"],
        "published_at": None,
        "taken": True,
        "reason": "dependency",
        "detail": "dependency of hw-gui",
    }
    preview = PreviewOut.model_validate(
        {
            "source_root": "https://example.org/forge",
            "filters": {},
            "channel_filters": {},
            "counts": {"seen": 3, "taken": 2, "dropped": 1, "by_reason": {"dependency": 1}},
            "warnings": [],
            "subdirs": [],
            "files": {"items": [file], "total_count": 1},
        }
    )
    html = _render(
        "mirror/_preview.html",
        {"preview": preview, "error": None, "listing": "Files taken as dependencies"},
    )
    assert "Files taken as dependencies" in html
    assert 'data-reason="dependency"' in html and "dependency of hw-gui" in html
    assert "taken as dependencies: 1" in html and "dropped by dependency" not in html


def test_the_run_report_links_each_cause_to_its_filter_field() -> None:
    report = {
        "dependencies": {"taken": 1, "by_subdir": {"noarch": 1}, "files": []},
        "checked": True,
        "broken": {
            "total": 2,
            "packages": 2,
            "groups": [
                {
                    "causes": [{"level": "mirror", "key": "subdirs", "value": "win-64"}],
                    "dependency": "vc",
                    "count": 1,
                    "packages": [{"subdir": "win-64", "filename": "a-1-0.conda", "spec": "vc"}],
                },
                {
                    "causes": [],
                    "dependency": "ghost",
                    "count": 1,
                    "packages": [{"subdir": "noarch", "filename": "b-1-0.conda", "spec": "ghost"}],
                },
            ],
        },
        "must_install": [
            {"platform": "linux-64", "specs": ["a"], "solved": True, "message": "", "causes": []}
        ],
        "notes": [],
    }
    html = _render(
        "run/_report.html",
        {"report": report, "channel": {"name": "forge"}, "mirror": {"id": 7}},
    )
    assert 'href="/channels/forge/mirrors/7/edit#filter-subdirs"' in html
    assert "nothing upstream provides it" in html
    assert 'data-solved="yes"' in html
