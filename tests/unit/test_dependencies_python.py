"""PyPI dependencies: marker environments, the closure (all or newest), the refusing rules it
still obeys, and the check's findings with the filters that caused them."""

from __future__ import annotations

from headwater.dependencies.python import (
    DEFAULT_PLATFORMS,
    PYTHON_VERSIONS,
    Pool,
    applies,
    check_revision,
    environments,
    parse_requirement,
    satisfying,
    take_dependencies,
)
from headwater.dependencies.report import Cause, DependencyReport
from headwater.filters import parse_filter_set
from headwater.filters.python_rules import PythonMirrorRules
from headwater.formats.pypi.filenames import parse_dist_filename
from headwater.formats.pypi.metadata import parse_core_metadata
from headwater.formats.pypi.records import PythonRecord, decode_record, encode_record


def record(
    filename: str,
    *requires: str,
    known: bool = True,
    yanked: str | None = None,
) -> PythonRecord:
    dist = parse_dist_filename(filename)
    assert dist is not None
    return PythonRecord(
        filename=filename,
        project=dist.project,
        version=dist.version,
        kind=dist.kind,
        platforms=dist.platforms,
        sha256="0" * 64,
        size=1,
        url="",
        timestamp=1_700_000_000_000,
        yanked=yanked,
        metadata_known=known,
        license_expression="MIT",
        requires_dist=tuple(requires),
        dependencies_known=known,
    )


def wheel(project: str, version: str, *requires: str, **fields) -> PythonRecord:
    return record(f"{project.replace('-', '_')}-{version}-py3-none-any.whl", *requires, **fields)


APP = wheel(
    "app", "1.0", "lib>=1.0", "winonly; sys_platform == 'win32'", "old; python_version < '3.8'"
)
LIBS = [
    wheel("lib", "0.9"),
    wheel("lib", "1.0", "base"),
    wheel("lib", "1.1", "base"),
    wheel("lib", "2.0b1"),
]
BASE = [wheel("base", "1.0")]
WINONLY = [wheel("winonly", "1.0")]
OLD = [wheel("old", "1.0")]


def pool_of(
    mirror: dict, channel: dict | None = None, **projects: list[PythonRecord]
) -> tuple[Pool, PythonMirrorRules]:
    rules = PythonMirrorRules(parse_filter_set(mirror), parse_filter_set(channel or {}))
    pool = Pool()
    for project, records in projects.items():
        pool.add_project(project, rules.judge_all(records))
    return pool, rules


def closure(pool: Pool, rules: PythonMirrorRules, *, newest: bool = False, subdirs=None):
    report = DependencyReport()
    envs = environments(subdirs)
    taken, missing = take_dependencies(
        pool, rules.refusals().judge, envs, newest=newest, report=report
    )
    return sorted(e.record.filename for e in taken), missing, report


def test_environments_follow_the_subdirs_filter() -> None:
    default = environments(None)
    assert {env.platform for env in default} == set(DEFAULT_PLATFORMS)
    assert {env.python for env in default} == set(PYTHON_VERSIONS)
    assert {env.platform for env in environments(["linux-aarch64", "noarch"])} == {"linux-aarch64"}
    linux = environments(["linux-64"])
    windows = parse_requirement("x; sys_platform == 'win32'")
    assert windows is not None
    assert not applies(windows, linux)
    assert applies(windows, default)
    old = parse_requirement("x; python_version < '3.9'")
    assert old is not None and not applies(old, default)
    arm = parse_requirement("x; platform_machine == 'aarch64'")
    assert (
        arm is not None
        and applies(arm, environments(["linux-aarch64"]))
        and not applies(arm, linux)
    )


def test_extra_markers_count_only_for_the_extras_asked() -> None:
    socks = parse_requirement("pysocks; extra == 'socks'")
    assert socks is not None
    envs = environments(None)
    assert not applies(socks, envs)
    assert applies(socks, envs, frozenset({"socks"}))


def test_the_closure_takes_every_satisfying_version_and_follows_them() -> None:
    pool, rules = pool_of({"projects": ["app"]}, app=[APP], lib=LIBS, base=BASE)
    taken, missing, report = closure(pool, rules)
    # lib 1.0 and 1.1 satisfy >=1.0 (2.0b1 is a pre-release the specifier does not name), then
    # their own requirement on base; winonly counts on win-64; old on no Python kept.
    assert taken == sorted([LIBS[1].filename, LIBS[2].filename, BASE[0].filename])
    assert missing == {"winonly"}
    assert report.taken == {"lib": 2, "base": 1}
    assert report.taken_files[0]["reason"] == "dependency of app"


def test_newest_takes_one_version_and_linux_only_leaves_windows_requirements() -> None:
    pool, rules = pool_of({"projects": ["app"]}, app=[APP], lib=LIBS, base=BASE)
    taken, missing, _ = closure(pool, rules, newest=True, subdirs=["linux-64"])
    assert taken == sorted([LIBS[2].filename, BASE[0].filename])
    assert missing == set()


def test_refusing_rules_hold_for_dependencies() -> None:
    # exclude_specs (the channel's) and subdirs still refuse; only_specs and keep_latest do not.
    mirror = {"projects": ["app"], "keep_latest": 1, "only_specs": ["app"]}
    pool, rules = pool_of(mirror, {"exclude_specs": ["lib>=1.1"]}, app=[APP], lib=LIBS, base=BASE)
    taken, _, _ = closure(pool, rules)
    assert taken == sorted([LIBS[1].filename, BASE[0].filename])
    linux_lib = record("lib-1.2-cp312-cp312-manylinux_2_17_x86_64.whl")
    pool, rules = pool_of(
        {"projects": ["app"], "subdirs": ["osx-arm64", "noarch"]}, app=[APP], lib=[linux_lib]
    )
    taken, _, _ = closure(pool, rules)
    assert taken == []


def test_extras_pull_in_what_they_add_and_prereleases_when_named() -> None:
    app = wheel("app", "1.0", "lib[fast]>=1.0", "beta>=2.0b1")
    lib = wheel("lib", "1.0", "speedups; extra == 'fast'", "slow; extra == 'slow'")
    pool, rules = pool_of(
        {"projects": ["app"]},
        app=[app],
        lib=[lib],
        speedups=[wheel("speedups", "1.0")],
        slow=[wheel("slow", "1.0")],
        beta=[wheel("beta", "2.0b1")],
    )
    taken, _, _ = closure(pool, rules)
    assert {name.split("-")[0] for name in taken} == {"lib", "speedups", "beta"}


def test_files_without_metadata_are_taken_not_followed_and_missing_projects_are_named() -> None:
    unknown = wheel("lib", "1.0", known=False)
    pool, rules = pool_of(
        {"projects": ["app"]}, app=[wheel("app", "1.0", "lib", "other")], lib=[unknown]
    )
    taken, missing, _ = closure(pool, rules)
    assert taken == [unknown.filename]
    assert missing == {"other"}
    # a later round, with the metadata read and the missing project added, goes on
    pool.projects["lib"][0].record = wheel("lib", "1.0", "base")
    pool.add_project("other", rules.judge_all([wheel("other", "3.0")]))
    pool.add_project("base", rules.judge_all(BASE))
    taken, missing, _ = closure(pool, rules)
    assert taken == sorted(["other-3.0-py3-none-any.whl", BASE[0].filename])
    assert missing == set()


def test_yanked_versions_only_for_an_exact_pin() -> None:
    spec = parse_requirement("lib>=1")
    assert spec is not None
    assert satisfying(spec.specifier, [("1.0", False), ("1.1", True)]) == ["1.0"]
    pin = parse_requirement("lib==1.1")
    assert pin is not None
    assert satisfying(pin.specifier, [("1.0", False), ("1.1", True)]) == ["1.1"]


def test_the_check_names_the_filter_that_removed_a_dependency() -> None:
    mirror = {"projects": ["app", "lib"]}
    pool, rules = pool_of(mirror, {"exclude_specs": ["lib"]}, app=[APP], lib=LIBS)
    report = DependencyReport()
    revision = [APP]  # lib was excluded by the channel
    check_revision(revision, pool, environments(None), report)
    assert report.checked
    by_dependency = {f.dependency: f for f in report.findings}
    assert set(by_dependency) == {"lib", "winonly"}
    assert by_dependency["lib"].causes == (Cause("channel", "exclude_specs", "lib"),)
    assert by_dependency["lib"].spec == "lib>=1.0"
    # a dependency outside the projects filter: the report names the refusing rule
    pool, rules = pool_of({"projects": ["app"]}, {"exclude_specs": ["lib"]}, app=[APP], lib=LIBS)
    pool.refusals = rules.refusals().judge
    assert pool.causes(parse_requirement("lib>=1.0")) == (  # type: ignore[arg-type]
        Cause("channel", "exclude_specs", "lib"),
    )
    # winonly was never read: the mirror's projects filter does not name it
    assert by_dependency["winonly"].causes == (Cause("mirror", "projects", "winonly"),)


def test_the_check_accepts_what_is_there_or_elsewhere_and_skips_unknown_files() -> None:
    pool, _ = pool_of({"projects": ["app"]}, app=[APP])
    report = DependencyReport()
    offered = {"winonly": [("1.0", False)]}
    check_revision(
        [APP, *LIBS, *BASE, wheel("unknown", "1.0", "nothing-here", known=False)],
        pool,
        environments(None),
        report,
        elsewhere=lambda project: offered.get(project, []),
    )
    assert report.findings == []


def test_core_metadata_requirements_are_kept_and_old_rows_decode() -> None:
    metadata = parse_core_metadata(
        b"Metadata-Version: 2.1\nName: app\nVersion: 1.0\nRequires-Dist: lib>=1.0\n"
        b"Requires-Dist: not a requirement !!\nRequires-Dist: x; extra == 'y'\n\n"
    )
    assert metadata.requires_dist == ("lib>=1.0", "x; extra == 'y'")
    old = encode_record(wheel("app", "1.0")).replace(b',"requires_dist":[]', b"")
    old = old.replace(b',"dependencies_known":true', b"")
    decoded = decode_record(old)
    assert decoded.requires_dist == () and decoded.dependencies_known is False


def test_a_marker_that_cannot_be_evaluated_applies_nowhere() -> None:
    from packaging.markers import Marker

    from headwater.dependencies.python import marker_holds

    environment = {"python_version": "3.12", "sys_platform": "linux"}
    assert not marker_holds(Marker('python_version ~= "abc"'), environment)
    assert marker_holds(Marker('sys_platform == "linux"'), environment)
