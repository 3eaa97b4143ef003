"""The conda closure and revision check, on records built here (tests/functional/
test_dependencies.py runs them through real mirror runs)."""

from __future__ import annotations

import orjson

from headwater.dependencies.conda import Pool, SubdirIndex, check_revision, take_dependencies
from headwater.dependencies.report import Cause, DependencyReport
from headwater.filters import FilterSet
from headwater.filters.rules import Exclusion, MirrorRules
from headwater.formats.conda.repodata import CondaRecord


def record(
    name: str,
    version: str,
    depends: tuple[str, ...] = (),
    constrains: tuple[str, ...] = (),
    build: str = "0",
    license: str = "MIT",
) -> CondaRecord:
    raw = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "constrains": list(constrains),
        "license": license,
    }
    return CondaRecord(
        filename=f"{name}-{version}-{build}.conda",
        name=name,
        version=version,
        build=build,
        build_number=0,
        sha256="0" * 64,
        size=1,
        timestamp=None,
        license=license,
        license_family=None,
        raw=orjson.dumps(raw),
    )


def pool_of(rules: MirrorRules, records: dict[str, list[CondaRecord]]) -> Pool:
    pool = Pool(refusals=rules.refusals().judge)
    for subdir, listed in records.items():
        for item in listed:
            pool.add(subdir, item, rules.judge(item, subdir))
    return pool


def kept(pool: Pool) -> set[str]:
    return {entry.record.filename for entry in pool.kept()}


UPSTREAM = {
    "linux-64": [
        record("app", "1.0", depends=("lib >=2", "__glibc >=2.17")),
        record("lib", "1.0", depends=("base",)),
        record("lib", "2.0", depends=("base >=1", "python_abi 3.9.* *_cp39")),
        record("lib", "3.0", depends=("base",)),
        record("python_abi", "3.9", build="4_cp39"),
        record("python_abi", "3.9", build="4_pypy39"),
        record("gpl", "1.0", license="GPL-3.0-only"),
        record("tool", "1.0", depends=("gpl",), constrains=("lib <3",)),
    ],
    "noarch": [record("base", "1.0"), record("base", "1.1", depends=("python >=3.9",))],
}


def test_the_closure_takes_every_satisfying_version_transitively_with_who_needed_it() -> None:
    rules = MirrorRules(FilterSet(only_specs=("app",)), FilterSet())
    pool = pool_of(rules, UPSTREAM)
    report = DependencyReport()

    taken = take_dependencies(pool, rules.refusals().judge, newest=False, report=report)

    assert kept(pool) == {
        "app-1.0-0.conda",
        "lib-2.0-0.conda",
        "lib-3.0-0.conda",
        "python_abi-3.9-4_cp39.conda",  # the build string of the spec, not the pypy one
        "base-1.0-0.conda",
        "base-1.1-0.conda",
    }
    assert {entry.dependency_of for entry in taken} == {"app", "lib"}
    assert sum(report.taken.values()) == len(taken) == 5
    assert {"subdir": "noarch", "filename": "base-1.1-0.conda", "reason": "dependency of lib"} in (
        report.taken_files
    )


def test_newest_takes_one_version_and_constrains_narrow_it() -> None:
    rules = MirrorRules(FilterSet(only_specs=("app", "tool")), FilterSet())
    pool = pool_of(rules, UPSTREAM)

    take_dependencies(pool, rules.refusals().judge, newest=True, report=DependencyReport())

    assert {"lib-3.0-0.conda", "base-1.1-0.conda", "gpl-1.0-0.conda"} <= kept(pool)
    assert "lib-2.0-0.conda" not in kept(pool) and "base-1.0-0.conda" not in kept(pool)

    # tool constrains lib <3: a package needing lib through it gets the newest below 3
    constrained = MirrorRules(FilterSet(only_specs=("user",)), FilterSet())
    upstream = {"linux-64": [*UPSTREAM["linux-64"], record("user", "1", ("lib",), ("lib <3",))]}
    pool = pool_of(constrained, {**UPSTREAM, **upstream})
    take_dependencies(pool, constrained.refusals().judge, newest=True, report=DependencyReport())
    assert "lib-2.0-0.conda" in kept(pool) and "lib-3.0-0.conda" not in kept(pool)


def test_refusing_filters_hold_and_are_blamed_for_what_stays_missing() -> None:
    rules = MirrorRules(FilterSet(only_specs=("tool",)), FilterSet(exclude_licenses=("gpl3",)))
    pool = pool_of(rules, UPSTREAM)
    take_dependencies(pool, rules.refusals().judge, newest=False, report=DependencyReport())
    assert "gpl-1.0-0.conda" not in kept(pool)

    revision = {"linux-64": SubdirIndex("linux-64"), "noarch": SubdirIndex("noarch")}
    for entry in pool.kept():
        index = revision[entry.subdir]
        listing = SubdirIndex.of_repodata(
            entry.subdir,
            orjson.dumps(
                {"packages.conda": {entry.record.filename: orjson.loads(entry.record.raw)}}
            ),
            keep_records=True,
        )
        for name, versions in listing.names.items():
            for version, builds in versions.items():
                index.names.setdefault(name, {}).setdefault(version, []).extend(builds)
        index.records += listing.records
    report = DependencyReport()
    check_revision(revision, pool, report)

    [finding] = [f for f in report.findings if f.dependency == "gpl"]
    assert finding.filename == "tool-1.0-0.conda"
    # gpl's first exclusion is the mirror's only_specs; the channel's license rule refuses it
    assert finding.causes == (Cause("channel", "exclude_licenses", "gpl3"),)


def test_the_check_reads_noarch_against_each_platform_and_skips_virtual_packages() -> None:
    revision = {
        "linux-64": SubdirIndex.of_repodata(
            "linux-64",
            orjson.dumps(
                {
                    "packages": {
                        "python-3.9-0.tar.bz2": {"name": "python", "version": "3.9", "build": "0"},
                        "app-1-0.tar.bz2": {
                            "name": "app",
                            "version": "1",
                            "depends": ["__glibc >=2.17", "python >=3.9", "missing 1.*"],
                        },
                    }
                }
            ),
            keep_records=True,
        ),
        "osx-64": SubdirIndex.of_repodata("osx-64", b"{}", keep_records=True),
        "noarch": SubdirIndex.of_repodata(
            "noarch",
            orjson.dumps(
                {
                    "packages.conda": {
                        "pure-1-0.conda": {
                            "name": "pure",
                            "version": "1",
                            "depends": ["python >=3.8"],
                        }
                    }
                }
            ),
            keep_records=True,
        ),
    }
    report = DependencyReport()
    check_revision(revision, Pool(), report)

    found = {(f.subdir, f.filename, f.spec, f.causes) for f in report.findings}
    assert found == {
        ("linux-64", "app-1-0.tar.bz2", "missing 1.*", ()),
        # python is in linux-64 but not osx-64: pure cannot install on osx-64
        ("noarch", "pure-1-0.conda", "python >=3.8", ()),
    }
    elsewhere = SubdirIndex.of_repodata(
        "osx-64",
        orjson.dumps({"packages": {"p.tar.bz2": {"name": "python", "version": "3.12"}}}),
        keep_records=False,
    )
    report = DependencyReport()
    check_revision(
        revision,
        Pool(),
        report,
        elsewhere=lambda subdir: [elsewhere] if subdir == "osx-64" else [],
    )
    assert {f.spec for f in report.findings} == {"missing 1.*"}


def test_an_exclusion_names_its_filter_key_value_and_level() -> None:
    rules = MirrorRules(
        FilterSet(subdirs=("linux-64",), exclude_specs=("lib 1.*",)),
        FilterSet(exclude_licenses=("gpl3",), date_from=None),
    )
    assert rules.judge(record("app", "1"), "osx-64") == Exclusion(
        "subdir", "subdir osx-64 is not in subdirs", "subdirs", "osx-64", "mirror"
    )
    dropped = rules.judge(record("lib", "1.0"), "linux-64")
    assert dropped is not None and (dropped.key, dropped.value, dropped.hard) == (
        "exclude_specs",
        "lib 1.*",
        True,
    )
    gpl = rules.judge(record("gpl", "1.0", license="GPL-3.0-only"), "linux-64")
    assert gpl is not None
    assert (gpl.reason, gpl.level, gpl.key, gpl.value) == (
        "channel filter",
        "channel",
        "exclude_licenses",
        "gpl3",
    )
    only = MirrorRules(FilterSet(only_specs=("x",)), FilterSet()).judge(record("y", "1"), "noarch")
    assert only is not None and not only.hard


def test_a_noarch_record_for_one_system_is_checked_on_that_system_alone() -> None:
    def listing(subdir: str, records: dict[str, dict[str, object]]) -> SubdirIndex:
        return SubdirIndex.of_repodata(
            subdir, orjson.dumps({"packages.conda": records}), keep_records=True
        )

    revision = {
        "linux-64": listing("linux-64", {}),
        "win-64": listing("win-64", {"pywin32-306-0.conda": {"name": "pywin32", "version": "306"}}),
        "noarch": listing(
            "noarch",
            {
                "tool-1-win_0.conda": {
                    "name": "tool",
                    "version": "1",
                    "build": "win_0",
                    "depends": ["__win", "pywin32"],
                },
                "tool-1-unix_0.conda": {
                    "name": "tool",
                    "version": "1",
                    "build": "unix_0",
                    "depends": ["__unix", "pexpect"],
                },
            },
        ),
    }
    report = DependencyReport()
    check_revision(revision, Pool(), report)
    # pywin32 is there for Windows; pexpect is missing for Linux, the one unix platform here
    assert [(f.filename, f.spec) for f in report.findings] == [("tool-1-unix_0.conda", "pexpect")]


def test_the_quick_reading_of_depends_agrees_with_matchspec_on_real_conda_forge() -> None:
    import json
    from pathlib import Path

    import pytest

    from headwater.dependencies.conda import dependency_spec
    from headwater.filters.conda_specs import SpecError, parse_conda_spec

    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "repodata"
    root = root / "conda-forge-subchannel-python3.9"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    texts = set()
    for subdir in root.iterdir():
        document = json.loads((subdir / "repodata.json").read_text())
        for found in {
            **document.get("packages", {}),
            **document.get("packages.conda", {}),
        }.values():
            texts.update(found.get("depends") or ())
    texts |= {"numpy", "numpy 1.26.*", "python 3.9.* *_cpython", "python ==2.7.*|>=3.6", "x >=>=1"}
    for text in sorted(text for text in texts if not text.startswith("__")):
        quick = dependency_spec(text)
        try:
            full = parse_conda_spec(text)
        except SpecError:
            assert quick is None, text
            continue
        assert quick is not None, text
        assert (quick.name, str(quick.version), quick.build) == (
            full.name,
            str(full.version),
            full.build,
        ), text
    assert len(texts) > 1000
