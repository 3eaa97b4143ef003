"""`headwater cve ...`: import advisories, list and show CVEs, their files, and curate."""

from __future__ import annotations

import typer

from headwater.cli.context import (
    JsonOption,
    acting_user,
    conda_names,
    console,
    database,
    print_json,
    print_table,
    reports_errors,
    settings,
    upstream_policy,
    writing,
)
from headwater.models import Channel, PackageFile
from headwater.schemas.cves import CveDetail, CveOut, ImportOut, MatchOut
from headwater.services import cves as cve_service
from headwater.services.channels import get_channel
from headwater.services.cve_import import import_reading, read_source
from headwater.services.cve_matching import match_everything

app = typer.Typer(no_args_is_help=True)


@app.command("import")
@reports_errors
def import_(
    source: str = typer.Argument(
        ..., help="An OSV or NVD JSON/YAML file, a directory or .zip of them, or a URL to one."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import advisories (offline, for air-gapped sites), then match every file again."""
    reading = read_source(source, upstream_policy(), limit=settings().max_import_bytes)
    outcome = import_reading(database(), conda_names(), reading)
    out = ImportOut.of(outcome.files, outcome.imported, outcome.matched)
    if as_json:
        print_json(out)
        return
    console.print(
        f"read {out.advisories} advisories from {out.files} files: {out.added} new, "
        f"{out.updated} updated, {out.unchanged} unchanged, {out.withdrawn} withdrawn",
        highlight=False,
    )
    if out.matching:
        console.print(
            f"matched {out.matching['files']} files: {out.matching['matches']} matches "
            f"({out.matching['added']} new, {out.matching['removed']} gone)",
            highlight=False,
        )
    for problem in out.problems:
        console.print(f"[yellow]skipped:[/yellow] {problem}", highlight=False)


@app.command("list")
@reports_errors
def list_(
    channel: str = typer.Option(None, help="Only CVEs matching this channel's files."),
    status: str = typer.Option(None, help="Only CVEs with matches in this status."),
    min_score: float = typer.Option(None, "--min-score", help="Only CVEs scored at least this."),
    limit: int = typer.Option(50, help="How many to list."),
    as_json: bool = JsonOption,
) -> None:
    """CVEs, best scored first, with how many files each matches."""
    with database().reading() as session:
        channel_ids = None
        if channel is not None:
            channel_ids = [get_channel(session, channel).id]
        summaries, total = cve_service.list_cves(
            session,
            channel_ids=channel_ids,
            status=status,
            min_score=min_score,
            limit=limit,
            matched_only=channel is not None,
        )
        items = [CveOut.of(s) for s in summaries]
    if as_json:
        print_json({"items": [i.model_dump(mode="json") for i in items], "total_count": total})
        return
    print_table(
        f"{total} CVEs",
        ["id", "score", "severity", "files", "statuses", "summary"],
        [
            [i.id, i.score, i.severity, i.matched_files, _statuses(i.statuses), i.summary]
            for i in items
        ],
    )


def _statuses(statuses: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((statuses or {}).items()))


@app.command()
@reports_errors
def show(cve_id: str, as_json: bool = JsonOption) -> None:
    """One CVE: description, CVSS v3 and v2 scores and vectors, dates, references."""
    with database().reading() as session:
        detail = CveDetail.of_cve(cve_service.get_cve(session, cve_id))
    if as_json:
        print_json(detail)
        return
    console.print(f"[bold]{detail.id}[/bold] {detail.severity} {detail.score or ''}")
    for label, value in (
        ("summary", detail.summary),
        ("CVSS v3", f"{detail.cvss3_score} {detail.cvss3_vector} ({detail.cvss3_source})"),
        ("CVSS v2", f"{detail.cvss2_score} {detail.cvss2_vector}"),
        ("published", detail.published),
        ("aliases", ", ".join(detail.aliases)),
    ):
        console.print(f"{label}: {value}", highlight=False)
    console.print(detail.description or "", highlight=False)
    for reference in detail.references:
        console.print(f"  {reference}", highlight=False)


@app.command()
@reports_errors
def files(cve_id: str, as_json: bool = JsonOption) -> None:
    """The files a CVE matches, with each match's id, status and note."""
    with database().reading() as session:
        cve_service.get_cve(session, cve_id)
        items = [MatchOut.of_matched(m) for m in cve_service.cve_files(session, cve_id, None)]
    if as_json:
        print_json({"items": [i.model_dump(mode="json") for i in items], "total_count": len(items)})
        return
    print_table(
        f"Files matched by {cve_id}",
        ["match", "channel", "file", "version", "status", "note"],
        [[i.id, i.channel, i.filename, i.version, i.status, i.note] for i in items],
    )


@app.command()
@reports_errors
def curate(
    match_id: int,
    status: str = typer.Option(..., help="active, cleared, disputed, mitigated or reported."),
    note: str = typer.Option(None, help="Why."),
    as_json: bool = JsonOption,
) -> None:
    """Set a CVE match's status, with a note."""
    with writing() as session:
        match = cve_service.get_match(session, match_id)
        cve_service.curate(session, match, status, note, curated_by=acting_user())
        session.flush()
        file = session.get(PackageFile, match.file_id)
        assert file is not None
        channel = session.get(Channel, file.channel_id)
        assert channel is not None
        out = MatchOut.of(match, file, channel.name)
    if as_json:
        print_json(out)
    else:
        console.print(f"match {out.id} ({out.cve_id} on {out.filename}) is now {out.status}")


@app.command()
@reports_errors
def rematch(as_json: bool = JsonOption) -> None:
    """Match every file against the CVE database again."""
    report = match_everything(database(), conda_names())
    if as_json:
        print_json(vars(report))
    else:
        console.print(report.describe(), highlight=False)
