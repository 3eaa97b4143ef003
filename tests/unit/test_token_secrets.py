"""What a token looks like: 43 URL-safe characters, never a leading `-` (a command line such as
`twine upload -p <token>` would read it as an option), and the shape the logs redact."""

from __future__ import annotations

from headwater.logs import redact_target
from headwater.services.access.tokens import new_secret


def test_tokens_never_start_with_a_dash_and_are_redacted_in_logs() -> None:
    secrets = [new_secret() for _ in range(5000)]  # 1 in 64 would start with "-" by chance
    assert not [secret for secret in secrets if secret.startswith("-")]
    assert {len(secret) for secret in secrets} == {43}
    assert len(set(secrets)) == len(secrets)
    for secret in secrets[:50]:
        assert redact_target(f"/api/repo/t/{secret}/forge/noarch/repodata.json") == (
            "/api/repo/t/***/forge/noarch/repodata.json"
        )
