"""``rotator leaks``: emergency rotation from secret-scanner reports.

``rotator leaks ingest REPORT`` exits 2 for a bad report or usage (nothing
rotated), 1 when a human must act (a rotation failed, a secret could not be
checked, or a finding matched no managed secret: a leak nobody has dealt
with, which is why gitleaks itself exits 1 on leaks), 0 otherwise. A dry
run's would-be rotations do not by themselves make it 1.
"""

from __future__ import annotations

import sys

import click
from rich.table import Table

from rotator.cli.console import out, plain, print_json, warn
from rotator.cli.engines import engine_for
from rotator.cli.options import config_options, json_option
from rotator.errors import ConfigError
from rotator.watch import leaks as scanner
from rotator.watch.scanners import TOOLS, parse_report


@click.group()
def leaks() -> None:
    """Act on leak reports from secret scanners (gitleaks, trufflehog)."""


@leaks.command()
@click.argument("report")
@click.option(
    "--scanner",
    "tool",
    type=click.Choice(TOOLS),
    default=None,
    help="The scanner that wrote the report (default: from the content: a JSON array is "
    "gitleaks, JSON lines trufflehog).",
)
@click.option(
    "--format",
    "old_tool",
    type=click.Choice(TOOLS),
    default=None,
    hidden=True,
    help="Deprecated spelling of --scanner.",
)
@click.option("--dry-run", is_flag=True, help="Report what would be rotated; change nothing.")
@json_option()
@config_options
def ingest(
    config: str,
    state: str,
    report: str,
    tool: str | None,
    old_tool: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Emergency-rotate every managed secret a scanner REPORT found ('-': stdin).

    Reads `gitleaks detect --report-format json` or `trufflehog ... --json`
    output, compares each finding with the current and past credentials of
    every managed secret by keyed fingerprint, and rotates (no grace) each
    secret whose current credential, or an old one still in its grace, leaked.
    A finding that matches by a public identifier alone (an AWS access key
    id without its secret key) gets what the secret's policy says under
    leaks.on_identifier_only: by default an alert and a normal rotation, with
    its grace.
    Exit 0: every finding dealt with; 1: a human must act (a finding matched
    nothing, a rotation failed, a secret could not be checked); 2: bad report
    or usage, nothing rotated.
    """
    parsed = parse_report(*_read(report), _scanner(tool, old_tool))
    engine = engine_for(config, state)
    result = scanner.triage(engine, parsed, dry_run=dry_run)
    if as_json:
        print_json(result.as_dict())
    else:
        _print(result)
    sys.exit(result.exit_code)


def _scanner(tool: str | None, old_tool: str | None) -> str | None:
    """Return the scanner named by --scanner, or by the deprecated --format (with a warning).

    ``--format`` meant the report's input format here but the output format
    in ``audit export``: one meaning per option name, so it became --scanner.
    """
    if old_tool is None:
        return tool
    warn("`leaks ingest --format` is deprecated and will be removed; use --scanner")
    if tool is not None and tool != old_tool:
        raise click.UsageError(f"--scanner {tool} and --format {old_tool} disagree")
    return tool or old_tool


def _read(report: str) -> tuple[bytes, str]:
    """Return the report's bytes and the name messages give it."""
    if report == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        with open(report, "rb") as handle:
            return handle.read(), report
    except OSError as exc:
        raise ConfigError(f"{report}: cannot read the report: {exc.strerror}") from None


_STYLE = {
    scanner.Action.ROTATED: "green",
    scanner.Action.WOULD_ROTATE: "yellow",
    scanner.Action.ROTATED_WITH_GRACE: "green",
    scanner.Action.WOULD_ROTATE_WITH_GRACE: "yellow",
    scanner.Action.ALERTED: "yellow",
    scanner.Action.WOULD_ALERT: "yellow",
    scanner.Action.ALREADY_REVOKED: "cyan",
    scanner.Action.FAILED: "red",
    scanner.Action.BY_HAND: "red",
    scanner.Action.NO_MATCH: "red",
}


def _print(result: scanner.Triage) -> None:
    if result.rows:
        table = Table(title=plain(f"leaks: {result.source}", "table.title"), title_justify="left")
        for column in ("#", "location", "rule", "commit", "secret", "credential", "action"):
            table.add_column(column)
        for row in result.rows:
            finding = row.finding
            table.add_row(
                str(finding.number),
                plain(finding.location),
                plain(finding.rule or "-"),
                plain(finding.short_commit or "-"),
                plain(row.secret or "no match"),
                row.known.standing.value if row.known else "-",
                plain(row.says(), _STYLE[row.action]),
            )
        out.print(table)
    if result.unchecked:
        table = Table(title="could not be checked", title_justify="left")
        table.add_column("secret")
        table.add_column("error")
        for name, error in sorted(result.unchecked.items()):
            table.add_row(plain(name), plain(error, "red"))
        out.print(table)
    out.print(plain(result.summary()))
