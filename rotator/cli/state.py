"""``rotator status``, ``rotator history`` and ``rotator db upgrade``: what the journal knows."""

from __future__ import annotations

from datetime import datetime

import click
from rich.table import Table

from rotator.adapters.durations import format_duration
from rotator.cli.console import out, plain, print_json, when
from rotator.cli.options import (
    config_options,
    engine_for_reading,
    json_option,
    named_key_file,
)
from rotator.clock import system_clock
from rotator.errors import ConfigError
from rotator.journal.journal import Journal
from rotator.reports.history import history_as_json
from rotator.reports.status import LastUse, StatusReport, read_status

STATUS_COLUMNS = (
    "state",
    "age",
    "last rotation",
    "next due",
    "old revoked",
    "last used (current / old)",
    "last error",
)


@click.command()
@json_option()
@config_options
def status(config: str, state: str, as_json: bool) -> None:
    """Per secret: state, age, last rotation, next due, grace deadline of the old one.

    Works while a policy file is invalid: its problems are warned of on
    stderr, and the secrets the journal knows whose policy did not load are
    shown from the journal alone (no next due). Exit 0.
    """
    engine, readable = engine_for_reading(config, state)
    report = read_status(engine, complete=not readable.problems)
    if as_json:
        print_json(report.as_json())
        return
    print_status(report)


def print_status(report: StatusReport) -> None:
    """Print the status table: one line per secret, times relative to when it was read."""
    now = report.now
    table = Table(title="status", title_justify="left")
    table.add_column("secret", no_wrap=True)
    for column in STATUS_COLUMNS:
        table.add_column(column)
    for r in report.rows:
        usage = _used_when(r.current_last_used, r.current_ref, now)
        if r.old_ref:
            usage += f" / {_used_when(r.old_last_used, r.old_ref, now)}"
        shown_state = r.state + (" (overdue)" if r.overdue else "")
        if not r.policy_loaded:
            shown_state += "; policy not loaded"
        table.add_row(
            plain(r.secret),
            plain(shown_state),
            format_duration(r.age) if r.age is not None else "-",
            f"{r.last_rotation[:8]} {when(r.last_rotation_at, now)}"
            if r.last_rotation and r.last_rotation_at
            else "-",
            when(r.next_due, now),
            when(r.old_grace_deadline, now),
            usage,
            plain(r.last_error or ""),
        )
    out.print(table)


def _used_when(at: LastUse, ref: str | None, now: datetime) -> str:
    """Say when a credential was last used: ``5m ago``, ``never``, or ``-``."""
    if ref is None or at is None:
        return "-"  # nothing to ask about, or not asked (yet, or the issuer cannot tell)
    return at if isinstance(at, str) else when(at, now)


@click.command()
@click.argument("name")
@json_option()
@config_options
def history(config: str, state: str, name: str, as_json: bool) -> None:
    """Every rotation of one secret, step by step (also while a policy file is invalid)."""
    engine, readable = engine_for_reading(config, state)
    journal = engine.journal
    entries = journal.history(name) if journal.exists() else []
    if not entries and name not in engine.policies:
        unsure = (
            f"; {len(readable.skipped_files)} policy file(s) did not load"
            if readable.skipped_files
            else ""
        )
        raise ConfigError(f"no policy and no history for {name!r}{unsure}")
    if as_json:
        print_json(history_as_json(entries))
        return
    if not entries:
        out.print(plain(f"{name}: never rotated"))
        return
    for r, events in entries:
        title = f"{r.id}  {r.trigger}{' (emergency)' if r.emergency else ''}  now {r.state.value}"
        table = Table(title=plain(title, "table.title"), title_justify="left")
        for column in ("at", "step", "outcome", "state", "detail"):
            table.add_column(column)
        for e in events:
            moved = f"{e.state_from or ''} -> {e.state_to}" if e.state_from != e.state_to else ""
            table.add_row(
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                plain(e.step),
                plain(e.outcome),
                plain(moved),
                plain(e.detail or ""),
            )
        out.print(table)


@click.group()
def db() -> None:
    """The journal's schema."""


@db.command()
@json_option()
@config_options
def upgrade(config: str, state: str, as_json: bool) -> None:
    """Bring the journal to this rotator's schema (safe to run from several places at once)."""
    journal = Journal(state, system_clock, key_file=named_key_file())
    # Migrating seals the rows found: the key is checked before anything is written.
    journal.database.keys.check(writing=True)
    version = journal.migrate()
    if as_json:
        print_json({"journal": journal.describe(), "schema_version": version})
        return
    out.print(plain(f"journal {journal.describe()} is at schema version {version}"))
