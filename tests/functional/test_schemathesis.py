"""Generated requests against the OpenAPI schema never get a 5xx: schemathesis draws cases
that fit the schema and cases that do not, with an administrator's token and anonymously, on
SQLite and on PostgreSQL, against a server holding real channels, mirrors, files and CVEs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import make_settings
from tests.functional.test_cves import ADVISORIES
from tests.support.advisories import zip_of
from tests.support.conda_packages import CHAIN, PackageSpec, build_channel, build_package
from tests.support.flows import create_channel, create_mirror, run_mirror
from tests.support.python_packages import Dist, build_dist, build_index
from tests.support.server import Headwater, run_headwater
from tests.support.upstream import serve_directory

SEED = 20261202
CASES = 1200  # per identity and database
# Path parameters that name what the server holds, so that generated cases reach past 404s.
KNOWN = {
    "channel": "forge",
    "mirror_id": 1,
    "run_id": 1,
    "match_id": 1,
    "cve_id": "CVE-2099-0001",
    "name": "scorepkg",
    "organization": "acme",
    "group": "devs",
    "username": "bob",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Headwater, str]]:
    """A server with a public and a private channel, a conda and a PyPI mirror that ran,
    uploaded files, and CVEs matching some of them; yields it with an administrator's token."""
    overrides = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    build_channel(tmp_path / "upstream" / "conda", CHAIN)
    build_index(tmp_path / "upstream" / "pypi", [Dist("scorepkg", "2.0")], json_pages=True)
    package = build_package(PackageSpec("probe-tool", "1.0"), tmp_path / "packages")
    wheel = build_dist(tmp_path / "dist", Dist("scorepkg", "1.0"))
    with (
        serve_directory(tmp_path / "upstream") as upstream,
        run_headwater(make_settings(tmp_path / "var", **overrides)) as headwater,
        headwater.client(headwater.login()) as client,
    ):
        create_channel(client, "forge")
        create_channel(client, "vault", privacy="private")
        headwater.add_user("bob", "bobs password")
        assert client.post("/api/organizations", json={"name": "acme"}).status_code == 201
        assert client.post("/api/organizations/acme/groups", json={"name": "devs"}).is_success
        assert client.put("/api/organizations/acme/groups/devs/members/bob").is_success
        create_channel(client, "acme-tools", organization="acme", privacy="authenticated")
        conda = create_mirror(client, "forge", upstream.url + "conda/")
        assert run_mirror(client, "forge", conda["id"])["state"] == "completed"
        pypi = create_mirror(
            client,
            "forge",
            upstream.url + "pypi/simple/",
            mirror_name="py",
            mirror_type="python_simple",
            mirror_mode="active",
            filters={"projects": ["scorepkg"]},
        )
        assert run_mirror(client, "forge", pypi["id"])["state"] == "completed"
        for channel, path in (("forge", package), ("forge", wheel.path), ("vault", package)):
            with path.open("rb") as stream:
                sent = client.post(
                    f"/api/channels/{channel}/files", files={"file": (path.name, stream)}
                )
            assert sent.status_code == 201, sent.text
        imported = client.post("/api/cves/import", files={"file": ("a.zip", zip_of(ADVISORIES))})
        assert imported.status_code == 200, imported.text
        yield headwater, client.headers["X-Auth"]


@pytest.mark.parametrize("identity", ["administrator", "anonymous"])
def test_no_generated_request_gets_a_5xx(seeded: tuple[Headwater, str], identity: str) -> None:
    headwater, token = seeded
    headers = {"X-Auth": token} if identity == "administrator" else {}
    schema = schemathesis.openapi.from_url(headwater.url + "/openapi.json")
    # Deleting the seeded channel or organization early would leave most cases answering
    # 404, and revoking the token the cases are sent with, 401.
    schema = schema.exclude(method="DELETE", path="/api/channels/{channel}")
    schema = schema.exclude(method="DELETE", path="/api/organizations/{organization}")
    schema = schema.exclude(method="DELETE", path="/api/account/tokens/{token_id}")
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.NEGATIVE),
        schema.as_strategy(GenerationMode.POSITIVE, path_parameters=KNOWN),
        schema.as_strategy(GenerationMode.NEGATIVE, path_parameters=KNOWN),
    )
    answers: Counter[int] = Counter()
    session = requests.Session()

    @settings(
        max_examples=CASES,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    @given(case=cases)
    def answered_without_a_5xx(case: schemathesis.Case) -> None:
        response = case.call(base_url=headwater.url, session=session, headers=headers, timeout=60)
        answers[response.status_code] += 1
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

    answered_without_a_5xx()
    assert sum(answers.values()) >= 1000, answers
    # The cases reached real data too (anonymous callers, only what is public: any channel
    # they may not read, existing or not, answers 401 before its parameters are looked at,
    # so most of their cases end there).
    assert answers[200] + answers[201] > (50 if identity == "administrator" else 10), answers
