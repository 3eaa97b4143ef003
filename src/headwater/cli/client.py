"""The CLI as a client of a Headwater server's REST API: where the server is and the token it
signs in with (saved by `headwater login`, or HEADWATER_URL and HEADWATER_TOKEN), and requests
whose refusals come back as the server's own sentence."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from headwater.errors import HeadwaterError

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@dataclass(frozen=True)
class Login:
    url: str
    token: str


def credentials_path() -> Path:
    """Where `headwater login` keeps the server and token: the user's config directory."""
    return Path(typer.get_app_dir("headwater")) / "credentials.json"


def save_login(login: Login) -> Path:
    """Write the credentials readable by their owner only (0600, in a 0700 directory)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"url": login.url, "token": login.token}, file)
    os.chmod(path, 0o600)  # the file may have existed with looser rights
    return path


def forget_login() -> bool:
    path = credentials_path()
    if path.exists():
        path.unlink()
        return True
    return False


def saved_login() -> Login:
    """The server and token to use: HEADWATER_URL and HEADWATER_TOKEN if set, else what
    `headwater login` saved."""
    url, token = os.environ.get("HEADWATER_URL"), os.environ.get("HEADWATER_TOKEN")
    if not (url and token):
        try:
            saved = json.loads(credentials_path().read_text())
            url, token = url or saved["url"], token or saved["token"]
        except (OSError, ValueError, KeyError, TypeError):
            raise HeadwaterError(
                "not signed in: run `headwater login <server URL>` first (or set HEADWATER_URL "
                "and HEADWATER_TOKEN)"
            ) from None
    return Login(url=str(url).rstrip("/"), token=str(token))


def server_url(text: str) -> str:
    """A server's URL as typed: http(s)://host[:port][/prefix]; no other scheme."""
    url = text.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise HeadwaterError(f"{text!r} is not an http:// or https:// URL")
    return url


class Client:
    """One server, one token; every answer that is not 2xx raises HeadwaterError with the
    server's `detail`."""

    def __init__(self, login: Login | None = None) -> None:
        self.login = login or saved_login()
        self._http = httpx.Client(
            base_url=self.login.url,
            headers={"Authorization": f"Bearer {self.login.token}"},
            timeout=TIMEOUT,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise HeadwaterError(f"could not reach {self.login.url}: {error}") from None
        if response.status_code >= 400:
            raise HeadwaterError(refusal(response))
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None, **options: Any) -> Any:
        response = self.request("POST", path, json=body, **options)
        return response.json() if response.content else None

    def put(self, path: str, body: Any = None) -> Any:
        response = self.request("PUT", path, json=body)
        return response.json() if response.content else None

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def upload(self, path: str, file: Path) -> Any:
        with file.open("rb") as stream:
            return self.request("POST", path, files={"file": (file.name, stream)}).json()

    def pages(self, path: str, **params: Any) -> Iterator[Any]:
        """Every item of a paged list."""
        offset = 0
        while True:
            page = self.get(path, offset=offset, limit=1000, **params)
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total_count"]:
                return


def refusal(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if response.status_code == 401:
        detail = f"{detail or 'not signed in'} (run `headwater login` again)"
    return str(detail or f"the server answered {response.status_code}")
