"""`headwater cve ...`: import advisories, list and show CVEs, their files, and curate."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import typer

from headwater.cli.client import Client
from headwater.cli.output import JsonOption, console, print_json, print_table, reports_errors
from headwater.errors import HeadwaterError

app = typer.Typer(no_args_is_help=True)
MAX_DOWNLOAD_BYTES = 1 << 30


@app.command("import")
@reports_errors
def import_(
    source: str = typer.Argument(
        ..., help="An OSV or NVD JSON/YAML file, a directory or .zip of them, or a URL to one."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import advisories into the server's CVE database (administrators; for air-gapped sites,
    from files), then every file is matched again."""
    with _advisory_file(source) as path, Client() as client:
        out = client.upload("/api/cves/import", path)
    if as_json:
        print_json(out)
        return
    console.print(
        f"read {out['advisories']} advisories from {out['files']} files: {out['added']} new, "
        f"{out['updated']} updated, {out['unchanged']} unchanged, {out['withdrawn']} withdrawn",
        highlight=False,
    )
    matching = out.get("matching")
    if matching:
        console.print(
            f"matched {matching['files']} files: {matching['matches']} matches "
            f"({matching['added']} new, {matching['removed']} gone)",
            highlight=False,
        )
    for problem in out["problems"]:
        console.print(f"[yellow]skipped:[/yellow] {problem}", highlight=False)


@contextmanager
def _advisory_file(source: str) -> Iterator[Path]:
    """What to upload: the file itself; a directory zipped; a URL downloaded first."""
    with tempfile.TemporaryDirectory() as scratch:
        if source.startswith(("http://", "https://")):
            yield _download(source, Path(scratch))
            return
        path = Path(source)
        if path.is_dir():
            archive = Path(scratch) / f"{path.name or 'advisories'}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
                for member in sorted(path.rglob("*")):
                    if member.is_file():
                        bundle.write(member, member.relative_to(path).as_posix())
            yield archive
            return
        if not path.is_file():
            raise HeadwaterError(f"{source} is not a file, a directory or a URL")
        yield path


def _download(url: str, scratch: Path) -> Path:
    name = Path(urlsplit(url).path).name or "advisories.json"
    target = scratch / name
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            if response.status_code != 200:
                raise HeadwaterError(f"{url} answered {response.status_code}")
            written = 0
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    written += len(chunk)
                    if written > MAX_DOWNLOAD_BYTES:
                        raise HeadwaterError(f"{url} is larger than 1 GiB")
                    out.write(chunk)
    except httpx.HTTPError as error:
        raise HeadwaterError(f"could not fetch {url}: {error}") from None
    return target


@app.command("list")
@reports_errors
def list_(
    channel: str = typer.Option(None, help="Only CVEs matching this channel's files."),
    status: str = typer.Option(None, help="Only CVEs with matches in this status."),
    min_score: float = typer.Option(None, "--min-score", help="Only CVEs scored at least this."),
    limit: int = typer.Option(50, help="How many to list."),
    as_json: bool = JsonOption,
) -> None:
    """CVEs, best scored first, with how many files each matches in channels you may read."""
    with Client() as client:
        page = client.get(
            "/api/cves", channel=channel, status=status, min_score=min_score, limit=limit
        )
    if as_json:
        print_json(page)
        return
    print_table(
        f"{page['total_count']} CVEs",
        ["id", "score", "severity", "files", "statuses", "summary"],
        [
            [
                i["id"],
                i["score"],
                i["severity"],
                i["matched_files"],
                _statuses(i["statuses"]),
                i["summary"],
            ]
            for i in page["items"]
        ],
    )


def _statuses(statuses: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((statuses or {}).items()))


@app.command()
@reports_errors
def show(cve_id: str, as_json: bool = JsonOption) -> None:
    """One CVE: description, CVSS v3 and v2 scores and vectors, dates, references."""
    with Client() as client:
        detail: dict[str, Any] = client.get(f"/api/cves/{quote(cve_id, safe='')}")
    if as_json:
        print_json(detail)
        return
    console.print(f"[bold]{detail['id']}[/bold] {detail['severity']} {detail['score'] or ''}")
    for label, value in (
        ("summary", detail["summary"]),
        (
            "CVSS v3",
            f"{detail['cvss3_score']} {detail['cvss3_vector']} ({detail['cvss3_source']})",
        ),
        ("CVSS v2", f"{detail['cvss2_score']} {detail['cvss2_vector']}"),
        ("published", detail["published"]),
        ("aliases", ", ".join(detail["aliases"])),
    ):
        console.print(f"{label}: {value}", highlight=False)
    console.print(detail["description"] or "", highlight=False)
    for reference in detail["references"]:
        console.print(f"  {reference}", highlight=False)


@app.command()
@reports_errors
def files(cve_id: str, as_json: bool = JsonOption) -> None:
    """The files a CVE matches in channels you may read, with each match's id and status."""
    with Client() as client:
        items = list(client.pages(f"/api/cves/{quote(cve_id, safe='')}/files"))
    if as_json:
        print_json({"items": items, "total_count": len(items)})
        return
    print_table(
        f"Files matched by {cve_id}",
        ["match", "channel", "file", "version", "status", "note"],
        [
            [i["id"], i["channel"], i["filename"], i["version"], i["status"], i["note"]]
            for i in items
        ],
    )


@app.command()
@reports_errors
def curate(
    match_id: int,
    status: str = typer.Option(..., help="active, cleared, disputed, mitigated or reported."),
    note: str = typer.Option(None, help="Why."),
    as_json: bool = JsonOption,
) -> None:
    """Set a CVE match's status, with a note (those who manage the file's channel)."""
    with Client() as client:
        out = client.put(f"/api/cves/matches/{match_id}", {"status": status, "note": note})
    if as_json:
        print_json(out)
    else:
        console.print(
            f"match {out['id']} ({out['cve_id']} on {out['filename']}) is now {out['status']}"
        )
