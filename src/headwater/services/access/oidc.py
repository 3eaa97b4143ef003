"""Signing in through an OpenID Connect provider: the authorization code flow with PKCE, the
ID token checked against the provider's keys (joserfc), and the claims Headwater uses."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from headwater.errors import NotAuthenticatedError

MAX_DOCUMENT_BYTES = 1 << 20
METADATA_TTL = 300.0


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: str = "openid profile email"
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    timeout: float = 10.0


@dataclass(frozen=True)
class PendingSignIn:
    """What the browser keeps (in an HttpOnly cookie) between leaving for the provider and
    coming back: the state it must bring back, the nonce the ID token must hold, the PKCE
    verifier, and where to go afterwards."""

    state: str
    nonce: str
    verifier: str
    next_url: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(
            orjson.dumps([self.state, self.nonce, self.verifier, self.next_url])
        ).decode()

    @classmethod
    def decode(cls, value: str | None) -> PendingSignIn:
        try:
            state, nonce, verifier, next_url = orjson.loads(base64.urlsafe_b64decode(value or ""))
            return cls(str(state), str(nonce), str(verifier), str(next_url))
        except (ValueError, TypeError):
            raise NotAuthenticatedError(
                "this sign-in was not started here, or took too long; sign in again"
            ) from None


@dataclass(frozen=True)
class ProviderUser:
    subject: str  # issuer and subject: the provider's stable name for the user
    username: str
    email: str | None
    groups: list[str]


class OidcProvider:
    """One per process; its discovery document and keys are cached for a few minutes."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._client = httpx.AsyncClient(timeout=config.timeout, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._fetched = 0.0

    async def close(self) -> None:
        await self._client.aclose()

    async def start(self, redirect_uri: str, next_url: str) -> tuple[str, PendingSignIn]:
        """The provider's URL to send the browser to, and what to keep until it comes back."""
        metadata = await self._provider()
        pending = PendingSignIn(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            next_url=next_url,
        )
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(pending.verifier.encode()).digest()
        ).rstrip(b"=")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.config.scopes,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": challenge.decode(),
                "code_challenge_method": "S256",
            }
        )
        endpoint = str(metadata["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", pending

    async def finish(
        self, redirect_uri: str, params: dict[str, str], pending: PendingSignIn
    ) -> ProviderUser:
        """The user the provider vouches for, once the code it sent back is exchanged and its
        ID token checked; NotAuthenticatedError for anything amiss."""
        if "error" in params:
            raise NotAuthenticatedError(f"the identity provider refused: {params['error'][:100]}")
        if not secrets.compare_digest(params.get("state", ""), pending.state):
            raise NotAuthenticatedError("this sign-in was not started here; sign in again")
        code = params.get("code")
        if not code:
            raise NotAuthenticatedError("the identity provider sent no code; sign in again")
        metadata = await self._provider()
        tokens = await self._exchange(metadata, redirect_uri, code, pending.verifier)
        claims = await self._id_claims(metadata, tokens, pending.nonce)
        return self._user(claims)

    async def _provider(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._fetched > METADATA_TTL:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            metadata = await self._get_json(url)
            if metadata.get("issuer") != self.config.issuer:
                raise NotAuthenticatedError(
                    "the identity provider names another issuer than HEADWATER_OIDC_ISSUER"
                )
            metadata["keys"] = await self._get_json(str(metadata["jwks_uri"]))
            self._metadata, self._fetched = metadata, time.monotonic()
        return self._metadata

    async def _exchange(
        self, metadata: dict[str, Any], redirect_uri: str, code: str, verifier: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": self.config.client_id,
        }
        auth = None
        if self.config.client_secret:
            auth = httpx.BasicAuth(self.config.client_id, self.config.client_secret)
        response = await self._send("POST", str(metadata["token_endpoint"]), data=form, auth=auth)
        if response.status_code != 200 or "id_token" not in response.json():
            raise NotAuthenticatedError("the identity provider did not accept the sign-in")
        return dict(response.json())

    async def _id_claims(
        self, metadata: dict[str, Any], tokens: dict[str, Any], nonce: str
    ) -> dict[str, Any]:
        try:
            keys = KeySet.import_key_set(metadata["keys"])
            token = jwt.decode(str(tokens["id_token"]), keys)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, KeyError, TypeError):
            raise NotAuthenticatedError("the identity provider's ID token is not valid") from None
        claims = dict(token.claims)
        userinfo = metadata.get("userinfo_endpoint")
        access = tokens.get("access_token")
        if userinfo and access:
            response = await self._send(
                "GET", str(userinfo), headers={"Authorization": f"Bearer {access}"}
            )
            if response.status_code == 200:
                extra = response.json()
                if isinstance(extra, dict) and extra.get("sub") == claims["sub"]:
                    claims = {**extra, **claims}
        return claims

    def _user(self, claims: dict[str, Any]) -> ProviderUser:
        name = claims.get(self.config.username_claim) or claims.get("email") or claims["sub"]
        groups = claims.get(self.config.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        email = claims.get("email")
        return ProviderUser(
            subject=f"{self.config.issuer} {claims['sub']}"[:512],
            username=str(name),
            email=str(email) if isinstance(email, str) else None,
            groups=[str(group) for group in groups if isinstance(group, str)][:1000],
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._send("GET", url)
        if response.status_code != 200:
            raise NotAuthenticatedError(
                f"the identity provider answered {response.status_code} for {url}"
            )
        document = response.json()
        if not isinstance(document, dict):
            raise NotAuthenticatedError(f"the identity provider's {url} is not a JSON object")
        return document

    async def _send(self, method: str, url: str, **options: Any) -> _Answer:
        try:
            async with self._client.stream(method, url, **options) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise NotAuthenticatedError(f"the identity provider's {url} is too large")
                return _Answer(response.status_code, bytes(body))
        except httpx.HTTPError:
            raise NotAuthenticatedError(
                "the identity provider could not be reached; try again later"
            ) from None


@dataclass(frozen=True)
class _Answer:
    status_code: int
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise NotAuthenticatedError(
                "the identity provider answered with something other than JSON"
            ) from None
