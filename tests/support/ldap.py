"""A real OpenLDAP server (Debian's slapd) on a free loopback port: its own configuration, an
mdb database with people and groups, started for a test and stopped after it."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ldap3 import MODIFY_ADD, MODIFY_DELETE, NONE, Connection, Server

from tests.support.server import free_port

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
USER_DN_TEMPLATE = f"uid={{username}},{PEOPLE}"
ADMIN_DN = f"cn=admin,{SUFFIX}"  # the rootdn: what the directory's administrator binds as
ADMIN_PASSWORD = "directory admin password"
SERVICE_DN = f"cn=headwater,ou=services,{SUFFIX}"  # the account Headwater searches with
SERVICE_PASSWORD = "headwater service password"
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
SCHEMA_DIR = Path("/etc/ldap/schema")  # where Debian's slapd puts them
MODULE_DIR = Path("/usr/lib/ldap")
MISSING = "slapd is missing: `make test` installs it from Debian's packages (scripts/ensure-slapd)"


@dataclass(frozen=True)
class Person:
    uid: str
    password: str
    mail: str
    groups: tuple[str, ...] = ()  # the cn of each groupOfNames they are a member of

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{PEOPLE}"


@dataclass
class Slapd:
    url: str
    log: Path

    def admin(self) -> Connection:
        connection = Connection(
            Server(self.url, get_info=NONE), ADMIN_DN, ADMIN_PASSWORD, raise_exceptions=True
        )
        connection.bind()
        return connection

    def add_to_group(self, person: Person, group: str) -> None:
        self._change_member(person, group, MODIFY_ADD)

    def remove_from_group(self, person: Person, group: str) -> None:
        """As the directory's administrator does; a group keeps at least one other member
        (groupOfNames requires one)."""
        self._change_member(person, group, MODIFY_DELETE)

    def _change_member(self, person: Person, group: str, change: str) -> None:
        connection = self.admin()
        try:
            connection.modify(f"cn={group},{GROUPS}", {"member": [(change, [person.dn])]})
        finally:
            connection.unbind()


def find_slapd() -> str | None:
    found = shutil.which("slapd", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    return found if found and SCHEMA_DIR.is_dir() and MODULE_DIR.is_dir() else None


@contextmanager
def run_slapd(directory: Path, people: Iterable[Person]) -> Iterator[Slapd]:
    """slapd for `people` (their groups made from what they name), its files in `directory`."""
    slapd = find_slapd()
    if slapd is None:
        raise RuntimeError(MISSING)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir()
    config = directory / "slapd.conf"
    config.write_text(_configuration(directory))
    (directory / "entries.ldif").write_text(_entries(list(people)))
    slapadd = Path(slapd).with_name("slapadd")
    subprocess.run(
        [slapadd, "-q", "-f", config, "-l", directory / "entries.ldif"],
        check=True,
        capture_output=True,
    )
    url = f"ldap://127.0.0.1:{free_port()}"
    log = directory / "slapd.log"
    with log.open("wb") as output:
        # -d: stay in the foreground (0: log nothing more), so the test holds the process.
        process = subprocess.Popen(
            [slapd, "-f", config, "-h", url, "-d", "0"], stdout=output, stderr=output
        )
    server = Slapd(url, log)
    try:
        _wait_until_answering(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_answering(server: Slapd, process: subprocess.Popen[bytes]) -> None:
    address = urlsplit(server.url)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((address.hostname, address.port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"slapd did not start: {server.log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.05)


def _configuration(directory: Path) -> str:
    schemas = "".join(f"include {SCHEMA_DIR / name}.schema\n" for name in SCHEMAS)
    return f"""{schemas}
modulepath {MODULE_DIR}
moduleload back_mdb
pidfile {directory / "slapd.pid"}
argsfile {directory / "slapd.args"}

database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ssha(ADMIN_PASSWORD)}
directory {directory / "data"}
index objectClass,uid,member eq

# As a directory is usually set up: passwords only to bind with, everything else readable by
# those who have bound (so groups are read as the user, or as the service account).
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by users read
    by * none
"""


def _entries(people: list[Person]) -> str:
    entries = [
        {
            "dn": SUFFIX,
            "objectClass": ["dcObject", "organization"],
            "dc": ["example"],
            "o": ["Example"],
        },
        *(
            {"dn": f"ou={ou},{SUFFIX}", "objectClass": ["organizationalUnit"], "ou": [ou]}
            for ou in ("people", "groups", "services")
        ),
        {
            "dn": SERVICE_DN,
            "objectClass": ["applicationProcess", "simpleSecurityObject"],
            "cn": ["headwater"],
            "userPassword": [ssha(SERVICE_PASSWORD)],
        },
    ]
    for person in people:
        entries.append(
            {
                "dn": person.dn,
                "objectClass": ["inetOrgPerson"],
                "uid": [person.uid],
                "cn": [person.uid],
                "sn": [person.uid],
                "mail": [person.mail],
                "userPassword": [ssha(person.password)],
            }
        )
    for group in sorted({group for person in people for group in person.groups}):
        members = [person.dn for person in people if group in person.groups]
        entries.append(
            {
                "dn": f"cn={group},{GROUPS}",
                "objectClass": ["groupOfNames"],
                "cn": [group],
                "member": members,
            }
        )
    return "\n".join(
        "".join(f"{key}: {value}\n" for key, values in entry.items() for value in _list(values))
        for entry in entries
    )


def _list(values: str | list[str]) -> list[str]:
    return [values] if isinstance(values, str) else values


def ssha(password: str) -> str:
    """userPassword as directories store it: salted SHA-1, {SSHA}."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()
