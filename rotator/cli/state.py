"""``rotator status``, ``rotator history`` and ``rotator db upgrade``: what the journal knows."""

from __future__ import annotations

from datetime import datetime

import click
import yaml
from rich.table import Table

from rotator.adapters.discovery import registry
from rotator.adapters.durations import format_duration
from rotator.cli import environment
from rotator.cli.console import out, plain, print_json, when
from rotator.cli.engines import engine_for_reading, named_key_file
from rotator.cli.options import config_options, json_option, secret_names, selection_options
from rotator.clock import system_clock
from rotator.errors import ConfigError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.output.spelling import did_you_mean
from rotator.policy.selection import Selection
from rotator.reports.description import Description
from rotator.reports.description import describe as describe_secret
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
@click.option(
    "--in-state",
    "in_states",
    multiple=True,
    metavar="STATE",
    help="Only secrets in this state (grace, done, rolled_back, needs-attention, "
    "never rotated...; repeat for several). --state is the journal.",
)
@json_option()
@selection_options
@config_options
def status(
    config: str, state: str, selection: Selection, in_states: tuple[str, ...], as_json: bool
) -> None:
    """Per secret: state, age, last rotation, next due, grace deadline of the old one.

    NAME... (shell patterns such as 'payments/*'), --label, --owner and
    --in-state narrow the list. Works while a policy file is invalid: its
    problems are warned of on stderr, and the secrets the journal knows whose
    policy did not load are shown from the journal alone (no next due). Exit 0.
    """
    wanted = _known_states(in_states)
    engine, readable = engine_for_reading(config, state)
    complete = not readable.problems
    if complete and not selection.everything:
        # Only the chosen are read and planned: no other secret's store is asked.
        report = read_status(engine, names=selection.chosen(engine.policies))
    else:
        report = read_status(engine, complete=complete)
        selection.check_names(r.secret for r in report.rows)
    rows = [
        r
        for r in report.rows
        if selection.chooses(r.secret, engine.policies.get(r.secret))
        and (not wanted or r.state in wanted)
    ]
    report = StatusReport(report.now, rows)
    if as_json:
        print_json(report.as_json())
        return
    if not rows and (wanted or not selection.everything):
        out.print("no secret matches", highlight=False)
        return
    print_status(report)


def _known_states(states: tuple[str, ...]) -> set[str]:
    """Check ``--in-state`` values against what status shows (ConfigError, did-you-mean)."""
    known = [*(s.value for s in State), "never rotated", "needs-attention"]
    for wanted in states:
        if wanted not in known:
            raise ConfigError(
                f"--in-state {wanted!r} is no state{did_you_mean(wanted, known)} "
                f"(known: {', '.join(known)})"
            )
    return set(states)


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
@click.argument("name", shell_complete=secret_names)
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
        known = [*engine.policies, *(journal.summaries() if journal.exists() else {})]
        raise ConfigError(
            f"no policy and no history for {name!r}{did_you_mean(name, known)}{unsure}"
        )
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


@click.command()
@click.argument("name", shell_complete=secret_names)
@json_option()
@config_options
def describe(config: str, state: str, name: str, as_json: bool) -> None:
    """One secret whole: its policy as loaded, state, next due and why, credentials, alerts.

    The policy is shown with every default filled in; the credentials by
    version and reference as the journal knows them; the last rotations and
    the alerts raised. Works while a policy file is invalid (from the journal
    alone). Exit 0; 2 for a name neither the policies nor the journal know.
    """
    engine, readable = engine_for_reading(config, state)
    found = describe_secret(engine, name, complete=not readable.problems)
    if found.policy is None and not found.rotations:
        known = [*engine.policies, *(engine.journal.summaries() if engine.journal.exists() else {})]
        raise ConfigError(f"no policy and no history for {name!r}{did_you_mean(name, known)}")
    if as_json:
        print_json(found.as_dict())
        return
    print_description(found)


def print_description(found: Description) -> None:
    """Print a description: the policy as YAML, then standing, plan, credentials and history."""
    now = found.now
    out.print(plain(f"secret {found.name}", "bold"))
    policy = found.policy_as_dict()
    if policy is None:
        out.print(
            "policy: not loaded (no policy file names it, or its file has problems: "
            "see `rotator validate`)"
        )
    else:
        shown = yaml.safe_dump({"policy": policy}, sort_keys=False, allow_unicode=True)
        for line in shown.splitlines():  # escaped line by line: plain() escapes line breaks
            out.print(plain(line))
    row = found.status
    if row is not None:
        out.print(
            plain(
                f"state: {row.state}{' (overdue)' if row.overdue else ''}; "
                f"current since {when(row.current_since, now)}; next due {when(row.next_due, now)}"
            )
        )
    for item in found.plan:
        due = "due now" if item.due else when(item.due_at, now)
        out.print(plain(f"next: {item.action.value} {due}: {item.reason}"))
    for which, credential in found.credentials.items():
        out.print(
            plain(
                f"{which}: version {credential['version'] or '-'}, ref {credential['ref'] or '-'}"
            )
        )
    if found.rotations:
        table = Table(title="last rotations", title_justify="left")
        for column in ("rotation", "trigger", "state", "started", "error"):
            table.add_column(column)
        for rotation, _ in found.rotations:
            table.add_row(
                plain(rotation.id[:12]),
                plain(rotation.trigger + (" (emergency)" if rotation.emergency else "")),
                rotation.state.value,
                when(rotation.created_at, now),
                plain(rotation.error or ""),
            )
        out.print(table)
    else:
        out.print("never rotated")
    if found.alerts:
        table = Table(title="alerts", title_justify="left")
        for column in ("event", "notifier", "raised", "delivered"):
            table.add_column(column)
        for alert in found.alerts:
            table.add_row(
                plain(alert.event),
                plain(alert.notifier),
                when(alert.raised_at, now),
                when(alert.sent_at, now) if alert.sent_at else f"no ({alert.attempts} attempts)",
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
    environment.check(registry())  # as every command that writes (see journal_for)
    journal = Journal(state, system_clock, key_file=named_key_file())
    # Migrating seals the rows found: the key is checked before anything is written.
    journal.database.keys.check(writing=True)
    version = journal.migrate()
    if as_json:
        print_json({"journal": journal.describe(), "schema_version": version})
        return
    out.print(plain(f"journal {journal.describe()} is at schema version {version}"))
