"""Signing in against an LDAP directory (ldap3): bind as the user, read their groups."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from ldap3 import NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from headwater.errors import NotAuthenticatedError

MAX_GROUPS = 1000


@dataclass(frozen=True)
class LdapConfig:
    """Either `user_dn_template` (`uid={username},ou=people,dc=example,dc=org`: bind with
    it directly), or `bind_dn` with `user_search_base` and `user_filter` (bind as a service
    account, find the user, bind as them)."""

    url: str
    user_dn_template: str | None = None
    bind_dn: str | None = None
    bind_password: str | None = None
    user_search_base: str | None = None
    user_filter: str = "(uid={username})"
    group_search_base: str | None = None
    group_filter: str = "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"
    group_name_attribute: str = "cn"
    email_attribute: str = "mail"
    start_tls: bool = False
    timeout: float = 10.0


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    username: str
    email: str | None
    groups: list[str]


class Directory:
    """One per process; `authenticate` is blocking (ldap3 speaks LDAP on a socket), so it is
    called from a worker thread."""

    def __init__(self, config: LdapConfig) -> None:
        self.config = config

    def authenticate(self, username: str, password: str) -> DirectoryUser:
        """The user, bound with their own password, or NotAuthenticatedError."""
        # An empty password is an "unauthenticated bind", which many servers accept for any
        # name: it must never count as a password.
        if not password or not username:
            raise NotAuthenticatedError("wrong username or password")
        try:
            return self._authenticate(username, password)
        except LDAPException:
            raise NotAuthenticatedError(
                "the directory could not be asked; try again, or tell an administrator"
            ) from None

    def _server(self) -> Server:
        return Server(self.config.url, connect_timeout=self.config.timeout, get_info=NONE)

    def _connect(self, dn: str | None, password: str | None) -> Connection | None:
        connection = Connection(
            self._server(),
            user=dn,
            password=password,
            # A whole number of seconds: ldap3 packs it into SO_RCVTIMEO as an integer, and a
            # float fails every connection on Linux (struct.error).
            receive_timeout=math.ceil(self.config.timeout),
            raise_exceptions=False,
            read_only=True,
        )
        bound = False
        try:
            if self.config.start_tls:
                connection.open()
                connection.start_tls()
            bound = connection.bind()
        finally:
            if not bound:
                # A refused bind leaves the socket open until the collector finds the
                # connection: one held connection to the directory per wrong password.
                with contextlib.suppress(LDAPException):
                    connection.unbind()
        return connection if bound else None

    def _authenticate(self, username: str, password: str) -> DirectoryUser:
        dn = self._user_dn(username)
        if dn is None:
            raise NotAuthenticatedError("wrong username or password")
        connection = self._connect(dn, password)
        if connection is None:
            raise NotAuthenticatedError("wrong username or password")
        try:
            dn, email = self._entry(connection, dn)
            groups = self._groups(connection, dn, username)
        finally:
            connection.unbind()
        return DirectoryUser(dn=dn, username=username, email=email, groups=groups)

    def _user_dn(self, username: str) -> str | None:
        config = self.config
        if config.user_dn_template:
            return config.user_dn_template.format(username=escape_rdn(username))
        service = self._connect(config.bind_dn, config.bind_password)
        if service is None:
            raise LDAPException("the service account could not bind")
        try:
            service.search(
                config.user_search_base or "",
                config.user_filter.format(username=escape_filter_chars(username)),
                search_scope=SUBTREE,
                attributes=[],
                size_limit=2,
            )
            entries = [
                entry for entry in service.response or [] if entry.get("type") == "searchResEntry"
            ]
            return str(entries[0]["dn"]) if len(entries) == 1 else None
        finally:
            service.unbind()

    def _entry(self, connection: Connection, dn: str) -> tuple[str, str | None]:
        """The user's DN as the directory spells it, and their email. A DN built from the
        template is spelled as the user typed their name, and names are matched without
        regard to case: `ALICE` binds as `alice`, and must be the same account here (else
        signing in as `ALICE` makes a second one, past an administrator's disabling)."""
        connection.search(
            dn, "(objectClass=*)", search_scope="BASE", attributes=[self.config.email_attribute]
        )
        for entry in connection.response or []:
            if entry.get("type") != "searchResEntry":
                continue
            values = entry.get("attributes", {}).get(self.config.email_attribute)
            email = str(values[0] if isinstance(values, list) else values) if values else None
            return str(entry.get("dn") or dn), email
        return dn, None

    def _groups(self, connection: Connection, dn: str, username: str) -> list[str]:
        config = self.config
        if not config.group_search_base:
            return []
        connection.search(
            config.group_search_base,
            config.group_filter.format(
                dn=escape_filter_chars(dn), username=escape_filter_chars(username)
            ),
            search_scope=SUBTREE,
            attributes=[config.group_name_attribute],
            size_limit=MAX_GROUPS,
        )
        names: list[str] = []
        for entry in connection.response or []:
            values = entry.get("attributes", {}).get(config.group_name_attribute) or []
            names.extend(str(value) for value in (values if isinstance(values, list) else [values]))
        return sorted(set(names))
