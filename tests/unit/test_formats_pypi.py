"""Wheel and sdist names, simple pages (PEP 503 HTML and PEP 691 JSON) and PyPI licenses."""

from __future__ import annotations

import pytest

from headwater.filters.python_licenses import distribution_license_families
from headwater.formats.pypi.filenames import parse_dist_filename
from headwater.formats.pypi.simple import (
    ServedFile,
    parse_project_html,
    parse_project_json,
    render_project_html,
    render_project_json,
    upload_time_ms,
    wants_json,
)

# Digests as indexes give them: 64 hex digits (anything else is no sha256, and is dropped).
AB12 = "ab12" + "0" * 60
CD34 = "cd34" + "0" * 60
EF56 = "ef56" + "0" * 60


@pytest.mark.parametrize(
    ("filename", "platforms"),
    [
        ("six-1.16.0-py2.py3-none-any.whl", {"noarch"}),
        ("Django-4.2.tar.gz", {"noarch"}),
        ("pyzmq-25.1.2.zip", {"noarch"}),
        ("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", {"linux-64"}),
        ("numpy-2.0.0-cp311-cp311-musllinux_1_1_x86_64.whl", {"linux-64"}),
        ("numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.whl", {"linux-aarch64"}),
        ("numpy-2.0.0-cp311-cp311-manylinux2014_ppc64le.whl", {"linux-ppc64le"}),
        ("numpy-2.0.0-cp311-cp311-macosx_10_9_x86_64.whl", {"osx-64"}),
        ("numpy-2.0.0-cp311-cp311-macosx_11_0_arm64.whl", {"osx-arm64"}),
        ("numpy-2.0.0-cp311-cp311-macosx_10_9_universal2.whl", {"osx-64", "osx-arm64"}),
        ("numpy-2.0.0-cp311-cp311-win_amd64.whl", {"win-64"}),
        ("numpy-2.0.0-cp311-cp311-win32.whl", {"win-32"}),
        ("numpy-2.0.0-cp311-cp311-emscripten_3_1_45_wasm32.whl", set()),
    ],
)
def test_platform_tags_map_to_subdirs(filename: str, platforms: set[str]) -> None:
    parsed = parse_dist_filename(filename)
    assert parsed is not None
    assert parsed.platforms == platforms


def test_names_are_normalized_and_non_distributions_refused() -> None:
    parsed = parse_dist_filename("Foo_Bar-1.0-py3-none-any.whl")
    assert parsed is not None and (parsed.project, parsed.version) == ("foo-bar", "1.0")
    assert parse_dist_filename("foo-1.0.exe") is None
    assert parse_dist_filename("../foo-1.0.tar.gz") is None
    assert parse_dist_filename("not a wheel.whl") is None


HTML = """<!DOCTYPE html><html><body>
<a href="../../files/demo-1.0.tar.gz#sha256=AB12000000000000000000000000000000000000000000000000000000000000">demo-1.0.tar.gz</a>
<a href="https://files.example/demo-1.1-py3-none-any.whl#sha256=cd34000000000000000000000000000000000000000000000000000000000000"
   data-requires-python="&gt;=3.8" data-yanked="bad build"
   data-core-metadata="sha256=ef56000000000000000000000000000000000000000000000000000000000000">demo-1.1-py3-none-any.whl</a>
<a href="demo-1.2-py3-none-any.whl#md5=0000" data-dist-info-metadata="true">demo-1.2-py3-none-any.whl</a>
</body></html>"""


def test_html_page_gives_hashes_requires_python_yanked_and_metadata() -> None:
    links = parse_project_html(HTML, "https://index.example/simple/demo/")
    first, second, third = links
    assert first.url == "https://index.example/files/demo-1.0.tar.gz"
    assert first.sha256 == AB12 and first.yanked is None and first.core_metadata is None
    assert second.url == "https://files.example/demo-1.1-py3-none-any.whl"
    assert second.requires_python == ">=3.8"
    assert second.yanked == "bad build"
    assert second.core_metadata == EF56
    assert third.sha256 is None  # only sha256 is trusted
    assert third.core_metadata == ""  # offered, but with no hash to check it against


def test_json_page_gives_upload_time_size_and_the_same_fields() -> None:
    body = b"""{"meta": {"api-version": "1.1"}, "name": "demo", "versions": ["1.1"], "files": [
      {"filename": "demo-1.1-py3-none-any.whl", "url": "../../files/demo-1.1-py3-none-any.whl",
       "hashes": {"sha256": "CD34000000000000000000000000000000000000000000000000000000000000"}, "requires-python": ">=3.8", "yanked": "bad build",
       "core-metadata": {"sha256": "ef56000000000000000000000000000000000000000000000000000000000000"}, "size": 1234,
       "upload-time": "2024-03-01T12:00:00.123456Z"},
      {"filename": "demo-1.0.tar.gz", "url": "x/demo-1.0.tar.gz", "hashes": {}, "yanked": false}
    ]}"""
    wheel, sdist = parse_project_json(body, "https://index.example/simple/demo/")
    assert wheel.url == "https://index.example/files/demo-1.1-py3-none-any.whl"
    assert (wheel.sha256, wheel.size, wheel.yanked) == (CD34, 1234, "bad build")
    assert wheel.core_metadata == EF56
    assert upload_time_ms(wheel.upload_time) == 1709294400123
    assert sdist.sha256 is None and sdist.yanked is None


def test_rendered_pages_parse_back_to_what_was_served() -> None:
    files = [
        ServedFile("demo-1.1-py3-none-any.whl", "demo-1.1-py3-none-any.whl", CD34, 10,
                   ">=3.8", "bad <build>", EF56, "2024-03-01T12:00:00.000000Z"),
        ServedFile("demo-1.0.tar.gz", "demo-1.0.tar.gz", AB12, None, None, None, None, None),
    ]  # fmt: skip
    page = "http://hw.example/api/repo/c/simple/demo/"
    from_html = parse_project_html(render_project_html("demo", files).decode(), page)
    from_json = parse_project_json(render_project_json("demo", files, ["1.0", "1.1"]), page)
    for links in (from_html, from_json):
        by_name = {link.filename: link for link in links}
        wheel = by_name["demo-1.1-py3-none-any.whl"]
        assert wheel.url == page + "demo-1.1-py3-none-any.whl"
        assert (wheel.sha256, wheel.requires_python, wheel.yanked, wheel.core_metadata) == (
            CD34,
            ">=3.8",
            "bad <build>",
            EF56,
        )
        assert by_name["demo-1.0.tar.gz"].core_metadata is None


@pytest.mark.parametrize(
    ("accept", "json"),
    [
        ("application/vnd.pypi.simple.v1+json", True),
        ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2", True),
        ("application/vnd.pypi.simple.v1+html, application/vnd.pypi.simple.v1+json;q=0.5", False),
        ("text/html", False),
        (None, False),
        ("*/*", False),
    ],
)
def test_content_negotiation(accept: str | None, json: bool) -> None:
    assert wants_json(accept) is json


@pytest.mark.parametrize(
    ("license", "expression", "classifiers", "families"),
    [
        (None, "MIT OR GPL-2.0-or-later", (), {"mit", "gpl2"}),
        ("BSD", "Apache-2.0", (), {"apache"}),  # the expression decides alone
        ("MIT License", None, (), {"mit"}),
        (None, None, ("License :: OSI Approved :: BSD License",), {"bsd"}),
        (None, None, ("License :: OSI Approved",), {"none"}),
        (None, None, ("License :: Other/Proprietary License",), {"proprietary"}),
        ("Copyright (c) 2024\n\nPermission is hereby granted...", None, (), {"none"}),
        (
            "GPLv3+",
            None,
            ("License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)",),
            {"gpl3"},
        ),
    ],
)
def test_distribution_license_families(
    license: str | None, expression: str | None, classifiers: tuple[str, ...], families: set[str]
) -> None:
    assert distribution_license_families(license, expression, classifiers) == families


def test_digests_that_are_not_sha256_are_dropped() -> None:
    html = f"""<a href="a-1.0.tar.gz#sha256=../../../../etc/passwd">a-1.0.tar.gz</a>
<a href="a-1.1.tar.gz#sha256={AB12}" data-core-metadata="sha256=../x">a-1.1.tar.gz</a>"""
    escaping, fine = parse_project_html(html, "https://index.example/simple/a/")
    assert escaping.sha256 is None
    assert fine.sha256 == AB12 and fine.core_metadata == ""
