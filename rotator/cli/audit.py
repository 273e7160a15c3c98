"""``rotator audit verify``, ``accept`` and ``export``: the audit trail for auditors and SIEMs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click

from rotator.adapters.durations import parse_duration
from rotator.cli.console import out, plain, print_json
from rotator.cli.engines import engine_for_reading, journal_for
from rotator.cli.options import config_options, json_option, warn_of_settings
from rotator.clock import system_clock
from rotator.errors import ConfigError
from rotator.journal.audit import (
    ChainReport,
    Tampering,
    anchor_from_env,
    parse_anchor,
    to_csv,
    to_jsonl,
)


@click.group()
def audit() -> None:
    """The hash-chained audit trail: verify it, export it."""


@audit.command()
@click.option(
    "--anchor",
    default=None,
    help="A head printed by an earlier verify (SEQ:HASH) that must still be in the chain "
    "(detects records cut off the end).",
)
@json_option()
@config_options
def verify(config: str, state: str, anchor: str | None, as_json: bool) -> None:
    """Check every record's hash and link and every journal row's seal (exit 1 if any fails).

    When the policy files are at hand (--config), a broken chain is also
    alerted to every notifier that wants audit-chain-broken (those declared
    validly, while another policy file has problems: they are warned of).
    """
    kept = anchor_from_env()
    try:
        anchored = parse_anchor(anchor) if anchor else (kept.read() if kept else None)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    journal = journal_for(state, writing=False)
    if not journal.trail.exists():
        raise ConfigError(
            f"journal {journal.describe()} has no audit trail: it does not exist or predates it "
            "(run `rotator db upgrade`)"
        )
    if Path(config).exists():
        engine, _ = engine_for_reading(config, state)
        report = engine.check_audit(full=True, anchor=anchored)
    else:
        report = journal.trail.verify(anchor=anchored)
        if kept is not None:
            kept.keep(report)
    if as_json:
        print_json(_as_dict(report))
    elif report.intact:
        out.print(
            plain(
                f"audit trail intact: {report.records} record(s) verified; head {report.head} "
                "(keep it to check later with --anchor)"
            )
        )
    else:
        if report.problem is not None:
            out.print(
                plain(
                    f"audit trail BROKEN at record {report.broken_at}: {report.problem}. "
                    f"{report.records} record(s) before it verified; last good head {report.head}"
                )
            )
        else:
            out.print(plain(f"audit trail: {report.records} record(s) verified, but:"))
        for found in report.tampering:
            out.print(plain(f"TAMPERED: {found.what}"))
    sys.exit(0 if report.intact else 1)


@audit.command()
@click.option("--reason", required=True, help="Why the journal is taken as it is (recorded).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option("With --yes: print the findings accepted as JSON.")
@config_options
def accept(config: str, state: str, reason: str, yes: bool, as_json: bool) -> None:
    """Take journal rows that failed their checks as they are now, after checking them.

    For after an investigation: rows are sealed again, a tampering-accepted
    record names every finding, and the secrets are acted on again. Records
    of the trail are never rewritten. Exit 0 when accepted or nothing to
    accept, 2 when not confirmed.
    """
    if as_json and not yes:
        # The confirmation prompt would land in the middle of the JSON.
        raise click.UsageError("--json: only with --yes (a prompt cannot be answered in JSON)")
    journal = journal_for(state)
    if not journal.trail.exists():
        raise ConfigError(f"journal {journal.describe()} has no audit trail")
    found = journal.tampering.find()
    if not as_json:
        _print_findings(found)
    if (
        found
        and not yes
        and not (sys.stdin.isatty() and click.confirm("Take these rows as they are?"))
    ):
        raise ConfigError("not accepted (pass --yes to accept without a prompt)")
    accepted = journal.trail.accept(reason, expected=found) if found else ()
    if as_json:
        print_json({"accepted": [{"secret": t.secret, "problem": t.what} for t in accepted]})
    elif found:
        out.print(plain(f"accepted {len(accepted)} finding(s); recorded as tampering-accepted"))


def _print_findings(found: Sequence[Tampering]) -> None:
    """Name each row that failed its check (or say every row matches its seal)."""
    if not found:
        out.print(plain("nothing to accept: every journal row matches its seal"))
    for item in found:
        out.print(plain(f"TAMPERED: {item.what}"))


def _as_dict(report: ChainReport) -> dict[str, object]:
    return {
        "intact": report.intact,
        "records": report.records,
        "head": None if report.head_seq is None else report.head,
        "broken_at": report.broken_at,
        "problem": report.problem,
        "tampered": [{"secret": t.secret, "problem": t.what} for t in report.tampering],
    }


def _when(text: str | None, option: str) -> datetime | None:
    """Parse ``--since``/``--until``: ISO 8601 (UTC if no zone), or a duration ago."""
    if text is None:
        return None
    try:
        return system_clock() - parse_duration(text)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: expected an ISO 8601 date or time (2026-11-01, "
            "2026-11-01T12:00:00Z) or a duration ago (7d, 12h)"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


@audit.command()
@click.option("--since", default=None, help="From this time (ISO 8601) or this long ago (7d).")
@click.option("--until", default=None, help="Before this time (ISO 8601) or this long ago.")
@click.option("--secret", "secret", default=None, help="Only the records of this secret.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file (default: standard output).",
)
@config_options
def export(
    config: str,
    state: str,
    since: str | None,
    until: str | None,
    secret: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Print audit records in chain order, hashes included, as JSON lines or CSV."""
    warn_of_settings()
    journal = journal_for(state, writing=False)
    if not journal.trail.exists():
        raise ConfigError(
            f"journal {journal.describe()} has no audit trail: it does not exist or predates it "
            "(run `rotator db upgrade`)"
        )
    records = journal.trail.records(
        since=_when(since, "--since"), until=_when(until, "--until"), secret=secret
    )
    lines = to_jsonl(records) if fmt == "jsonl" else to_csv(records)
    if output is None:
        _write(lines, sys.stdout)
        return
    with open(output, "w", encoding="utf-8", newline="") as stream:
        _write(lines, stream)


def _write(lines: Iterable[str], stream: TextIO) -> None:
    for line in lines:
        stream.write(line)
    stream.flush()
