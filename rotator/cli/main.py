"""The command line: thin, mapping flags to settings and calling the engine.

Exit codes (README, "Commands"): 0 everything succeeded or nothing was due; 1 at least
one rotation failed (the others still ran); 2 invalid configuration or usage,
nothing changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import click
from rich.table import Table

from rotator import __version__
from rotator.adapters import shutdown
from rotator.adapters.discovery import registry
from rotator.adapters.durations import format_duration
from rotator.adapters.secret import SecretValue
from rotator.cli import audit as cli_audit
from rotator.cli import leaks as cli_leaks
from rotator.cli import permissions as cli_permissions
from rotator.cli.common import (
    EXIT_FAILED,
    common,
    engine_for,
    err,
    fail,
    log,
    out,
    plain,
    policies,
    when,
)
from rotator.clock import system_clock
from rotator.engine.concurrency import DEFAULT_PER_PROVIDER, DEFAULT_TOTAL
from rotator.engine.preflight import Verdict
from rotator.engine.report import Action, Outcome, PlanItem, Result, RunReport
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, JournalError, PolicyError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.output import logs
from rotator.output.escaping import printable
from rotator.reports.summary import RunSummary
from rotator.service.health import HealthServer
from rotator.service.loop import Service, ServiceSettings
from rotator.service.metrics import Metrics
from rotator.watch.usage import watch_usage


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="rotator")
def cli() -> None:
    """Rotate credentials on a schedule: mint, store, verify, promote, revoke."""


@cli.command()
@common
def validate(config: str, state: str) -> None:
    """Check every policy file; print every problem as FILE:LINE:COL: field.path: reason."""
    for skipped in registry().skipped:
        err.print(plain(f"rotator: warning: {skipped}"))
    loaded = policies(config)
    files = {p.source_file for p in loaded}
    out.print(f"{len(loaded)} policies in {len(files)} file(s) are valid", highlight=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common
def plan(config: str, state: str, as_json: bool) -> None:
    """Show what is due, when and why; changes nothing."""
    engine = engine_for(config, state)
    items = engine.plan()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in items], indent=2))
        return
    _print_plan(items, engine.clock())


def _print_plan(items: list[PlanItem], now: datetime) -> None:
    table = Table(title="plan", title_justify="left")
    for column in ("secret", "action", "due", "when", "why"):
        table.add_column(column)
    for item in items:
        table.add_row(
            plain(item.secret),
            item.action.value,
            "yes" if item.due else "no",
            when(item.due_at, now),
            plain(item.reason),
        )
    out.print(table)
    due = sum(1 for i in items if i.due)
    errors = sum(1 for i in items if i.action is Action.ERROR)
    tail = f"; {errors} could not be planned (see why)" if errors else ""
    out.print(f"{due} of {len(items)} due now{tail}", highlight=False)


@cli.command()
@click.option("--once", is_flag=True, help="Do everything due now, then exit.")
@click.option(
    "--reconcile",
    default=30.0,
    show_default=True,
    help="Service mode: seconds between passes at most (sooner when something is due).",
)
@click.option("--json", "as_json", is_flag=True, help="With --once: print the summary as JSON.")
@click.option(
    "--summary",
    "summary_file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="With --once: also write the run's summary as JSON to this file (a pipeline artifact).",
)
@click.option(
    "--summary-markdown",
    "summary_markdown",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    envvar="ROTATOR_SUMMARY_MARKDOWN",
    help='With --once: append the summary as Markdown to this file (e.g. "$GITHUB_STEP_SUMMARY").',
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help=f"Secrets rotated at once (default {DEFAULT_TOTAL}; at most "
    f"{DEFAULT_PER_PROVIDER} per store provider unless ROTATOR_CONCURRENCY says otherwise).",
)
@click.option(
    "--shutdown-deadline",
    type=click.FloatRange(min=0),
    default=25.0,
    show_default=True,
    help="Seconds running steps get to finish after SIGTERM or SIGINT.",
)
@click.option(
    "--listen",
    default="127.0.0.1:9464",
    show_default=True,
    envvar="ROTATOR_LISTEN",
    help="Service mode: HOST:PORT for /metrics, /healthz and /readyz ('' to turn off).",
)
@common
def run(
    config: str,
    state: str,
    once: bool,
    reconcile: float,
    as_json: bool,
    summary_file: str | None,
    summary_markdown: str | None,
    concurrency: int | None,
    shutdown_deadline: float,
    listen: str,
) -> None:
    """Resume unfinished rotations, rotate what is due, revoke what has passed its grace."""
    if not once and (summary_file or summary_markdown):
        raise ConfigError("--summary and --summary-markdown go with --once")
    metrics = Metrics(system_clock)
    engine = engine_for(
        config,
        state,
        mode="one-shot" if once else "service",
        concurrency=concurrency,
        on_request=None if once else metrics.provider_request,
    )
    if once:
        # A CronJob being deleted, or a CI job cancelled, sends SIGTERM: start
        # nothing more, give running steps the deadline, report, and exit.
        stopping = threading.Event()

        def stop(_signum: int, _frame: FrameType | None) -> None:
            stopping.set()
            engine.interrupt()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        started = engine.clock()
        report = engine.run_once(stop=stopping.is_set, deadline=shutdown_deadline)
        if stopping.is_set():  # hooks still running at the deadline: end their process groups
            shutdown.end_outside_work()
        else:
            # A CronJob is the only process some installations run: record
            # last use, alert on anomalies, and resend undelivered alerts here.
            watch_usage(engine)
        _report_json(report) if as_json else _print_report(report)
        summary = RunSummary(
            report, started, engine.clock(), engine.journal.actor, stopping.is_set()
        )
        if not _summary_written(summary, summary_file, summary_markdown):
            # The rotations happened: say so in the exit code, not a traceback.
            sys.exit(max(report.exit_code, EXIT_FAILED))
        sys.exit(report.exit_code)
    service = Service(
        engine,
        config,
        settings=ServiceSettings(reconcile=reconcile, shutdown_deadline=shutdown_deadline),
        report=lambda report: _print_report(report) if isinstance(report, RunReport) else None,
        metrics=metrics,
    )
    service.install_signal_handlers()
    probe = None
    if listen:
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
        # Alive while passes keep coming: the loop wakes at least every --reconcile.
        within = timedelta(seconds=3 * reconcile + 60)
        probe = HealthServer(
            metrics,
            host=host or "127.0.0.1",
            port=int(port),
            alive=lambda: service.last_pass is None or service.alive(within),
            ready=service.ready,
        )
        probe.start()
        log.info("health endpoint listening", url=probe.url)
    try:
        code = service.run()
    finally:
        shutdown.end_outside_work()  # hooks still running at the deadline: end their groups
        if probe is not None:
            probe.stop()
    sys.exit(code)


def _summary_written(summary: RunSummary, json_file: str | None, markdown: str | None) -> bool:
    """Write the summary files asked for; False, having said which, if one could not be."""
    for path, write in ((json_file, summary.write_json), (markdown, summary.append_markdown)):
        if not path:
            continue
        try:
            write(path)
        except OSError as exc:
            # The file the user named, not the temporary file beside it that failed.
            err.print(plain(f"rotator: summary not written: {exc.strerror}: {path}"))
            return False
    return True


@cli.group()
def db() -> None:
    """The journal's schema."""


@db.command()
@common
def upgrade(config: str, state: str) -> None:
    """Bring the journal to this rotator's schema (safe to run from several places at once)."""
    journal = Journal(state, system_clock)
    version = journal.migrate()
    out.print(plain(f"journal {journal.describe()} is at schema version {version}"))


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common
def check(config: str, state: str, names: tuple[str, ...], as_json: bool) -> None:
    """Preflight, changing nothing: store, issuer, targets and checks of each policy (or NAMES)."""
    engine = engine_for(config, state)
    unknown = sorted(set(names) - set(engine.policies))
    if unknown:
        raise ConfigError(f"no policy named {', '.join(repr(n) for n in unknown)}")
    findings = engine.check(names or sorted(engine.policies))
    failed = [f for f in findings if f.verdict is Verdict.FAILED]
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        table = Table(title="check", title_justify="left")
        for column in ("secret", "check", "result", "detail"):
            table.add_column(column)
        style = {Verdict.OK: "green", Verdict.FAILED: "red", Verdict.SKIPPED: "yellow"}
        for f in findings:
            verdict = plain(f.verdict.value, style[f.verdict])
            table.add_row(plain(f.secret), plain(f.check), verdict, plain(f.detail))
        out.print(table)
        secrets = {f.secret for f in findings}
        out.print(
            f"{len(findings)} checks of {len(secrets)} secret(s): {len(failed)} failed",
            highlight=False,
        )
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("name")
@click.option(
    "--emergency",
    is_flag=True,
    help="Leaked key: no grace, the old credential dies as soon as the new one is live.",
)
@click.option("--reason", default=None, help="Why (recorded in the journal and the audit trail).")
@click.option(
    "--value-from-stdin",
    "value_from_stdin",
    is_flag=True,
    help="Take the new value from standard input (issuer manual: a key only a person can "
    "change); asked for without echo on a terminal.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@common
def rotate(
    config: str,
    state: str,
    name: str,
    emergency: bool,
    reason: str | None,
    value_from_stdin: bool,
    as_json: bool,
) -> None:
    """Rotate one secret now."""
    engine = engine_for(config, state)
    value = _value_from_stdin(name) if value_from_stdin else None
    with _stopped_at_once_by_signals(engine):
        report = engine.rotate(name, emergency=emergency, reason=reason, value=value)
    _report_json(report) if as_json else _print_report(report)
    sys.exit(report.exit_code)


@contextlib.contextmanager
def _stopped_at_once_by_signals(engine: Engine) -> Iterator[None]:
    """While inside, SIGTERM or SIGINT start no new step and end the running hooks now.

    A hook runs in a process group of its own, which the signal does not
    reach: unended, it would outlive rotator. The rotation stays at its
    recorded step (the next run resumes it); a second signal stops at once.
    The previous handlers are back afterwards.
    """
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}

    def stop(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        engine.interrupt()
        shutdown.end_outside_work()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(signum, handler)


#: The longest value ``--value-from-stdin`` takes (Secrets Manager's own limit).
MAX_SUPPLIED_VALUE = 65536


def _value_from_stdin(name: str) -> SecretValue:
    """Read a new value from stdin (without echo, twice, on a terminal); ConfigError if unusable."""
    if sys.stdin.isatty():
        text = click.prompt(
            f"new value for {printable(name)}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        text = sys.stdin.read(MAX_SUPPLIED_VALUE + 2)
        # One trailing newline is the shell's (echo, a here-string), not the value's.
        text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError("--value-from-stdin: standard input was empty; nothing was changed")
    if len(text.encode()) > MAX_SUPPLIED_VALUE:
        raise ConfigError(
            f"--value-from-stdin: the value is longer than {MAX_SUPPLIED_VALUE} bytes; "
            "nothing was changed"
        )
    return SecretValue(text)


def _print_report(report: RunReport) -> None:
    if not report.outcomes:
        out.print("nothing was due", highlight=False)
        return
    table = Table(title="run", title_justify="left")
    for column in ("secret", "result", "state", "rotation", "detail"):
        table.add_column(column)
    style = {
        Result.OK: "green",
        Result.FAILED: "red",
        Result.SKIPPED: "yellow",
        Result.WAITING: "cyan",
    }
    for o in report.outcomes:
        table.add_row(
            plain(o.secret),
            plain(o.result.value, style[o.result]),
            o.state.value if o.state else "-",
            plain((o.rotation_id or "-")[:12]),
            plain(o.message),
        )
    out.print(table)
    failed = len(report.failed)
    out.print(f"{len(report.outcomes)} handled, {failed} failed", highlight=False)


def _report_json(report: RunReport) -> None:
    click.echo(json.dumps([_outcome_dict(o) for o in report.outcomes], indent=2))


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    return {
        "secret": o.secret,
        "result": o.result.value,
        "state": o.state.value if o.state else None,
        "rotation_id": o.rotation_id,
        "message": o.message,
    }


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common
def status(config: str, state: str, as_json: bool) -> None:
    """Per secret: state, age, last rotation, next due, grace deadline of the old one."""
    _print_status(engine_for(config, state), as_json)


def _print_status(engine: Engine, as_json: bool) -> None:
    journal = engine.journal
    summaries = journal.summaries() if journal.exists() else {}
    now = engine.clock()
    plan = engine.plan(summaries)
    due = {i.secret: i for i in plan if i.action in (Action.ROTATE, Action.REMIND)}
    attention = {i.secret for i in plan if i.action is Action.ATTENTION}
    overdue = {i.secret for i in plan if i.overdue_since is not None}
    used = journal.usage.of(engine.policies) if summaries else {}

    def last_use(name: str, ref: str | None) -> str | None:
        """Say when the issuer last saw ``ref`` used: a time, ``never``, or None (not asked)."""
        found = used.get((name, ref)) if ref else None
        if found is None:
            return None
        return found.last_used.isoformat() if found.last_used else "never"

    rows: list[dict[str, Any]] = []
    for name in sorted(engine.policies):
        s = summaries.get(name)
        last = s.last_rotation if s else None
        grace = next((r for r in (s.open if s else []) if r.state is State.GRACE), None)
        item = due.get(name)
        current_ref = (last.new_ref if last.succeeded else last.old_ref) if last else None
        old_ref = grace.old_ref if grace else None
        rows.append(
            {
                "secret": name,
                "state": "needs-attention"
                if name in attention
                else (last.state.value if last else "never rotated"),
                "current_since": s.last_success.isoformat() if s and s.last_success else None,
                "age": format_duration(
                    timedelta(seconds=int((now - s.last_success).total_seconds()))
                )
                if s and s.last_success
                else None,
                "last_rotation": last.id if last else None,
                "last_rotation_at": last.created_at.isoformat() if last else None,
                "last_error": last.error if last else None,
                "next_due": item.due_at.isoformat() if item and item.due_at else None,
                "old_grace_deadline": grace.grace_deadline.isoformat()
                if grace and grace.grace_deadline
                else None,
                "overdue": name in overdue,
                "current_ref": current_ref,
                "current_last_used": last_use(name, current_ref),
                "old_ref": old_ref,
                "old_last_used": last_use(name, old_ref),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="status", title_justify="left")
    table.add_column("secret", no_wrap=True)
    for column in (
        "state",
        "age",
        "last rotation",
        "next due",
        "old revoked",
        "last used (current / old)",
        "last error",
    ):
        table.add_column(column)

    def used_when(at: str | None, ref: str | None) -> str:
        if ref is None or at is None:
            return "-"  # nothing to ask about, or not asked (yet, or the issuer cannot tell)
        return at if at == "never" else when(datetime.fromisoformat(at), now)

    for r in rows:
        started = r["last_rotation_at"]
        usage = used_when(r["current_last_used"], r["current_ref"])
        if r["old_ref"]:
            usage += f" / {used_when(r['old_last_used'], r['old_ref'])}"
        table.add_row(
            plain(r["secret"]),
            plain(r["state"] + (" (overdue)" if r["overdue"] else "")),
            r["age"] or "-",
            f"{r['last_rotation'][:8]} {when(datetime.fromisoformat(started), now)}"
            if r["last_rotation"] and started
            else "-",
            when(datetime.fromisoformat(r["next_due"]), now) if r["next_due"] else "-",
            when(datetime.fromisoformat(r["old_grace_deadline"]), now)
            if r["old_grace_deadline"]
            else "-",
            usage,
            plain(r["last_error"] or ""),
        )
    out.print(table)


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@common
def history(config: str, state: str, name: str, as_json: bool) -> None:
    """Every rotation of one secret, step by step."""
    engine = engine_for(config, state)
    journal = engine.journal
    entries = journal.history(name) if journal.exists() else []
    if not entries and name not in engine.policies:
        raise ConfigError(f"no policy and no history for {name!r}")
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "rotation_id": r.id,
                        "state": r.state.value,
                        "trigger": r.trigger,
                        "reason": r.reason,
                        "emergency": r.emergency,
                        "created_at": r.created_at.isoformat(),
                        "promoted_at": r.promoted_at.isoformat() if r.promoted_at else None,
                        "grace_deadline": r.grace_deadline.isoformat()
                        if r.grace_deadline
                        else None,
                        "old_ref": r.old_ref,
                        "new_ref": r.new_ref,
                        "old_version_id": r.old_version_id,
                        "new_version_id": r.new_version_id,
                        "new_fingerprint": r.new_fingerprint,
                        "extensions": r.extensions,
                        "error": r.error,
                        "steps": [
                            {
                                "at": e.at.isoformat(),
                                "step": e.step,
                                "outcome": e.outcome,
                                "from": e.state_from,
                                "to": e.state_to,
                                "detail": e.detail,
                            }
                            for e in events
                        ],
                    }
                    for r, events in entries
                ],
                indent=2,
            )
        )
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


@cli.command()
@click.option(
    "--duration",
    default=45.0,
    show_default=True,
    help="Seconds to keep rotating before printing the status and exiting.",
)
@click.option(
    "--config",
    "config",
    default=None,
    help="Policy file (default: the packaged schedules/demo.yaml).",
)
@click.option(
    "--state",
    "state",
    default=None,
    help="Journal URL (default: a fresh one in a temporary directory).",
)
@click.option("--log-format", type=click.Choice(["json", "console"]), default=None)
def sandbox(duration: float, config: str | None, state: str | None, log_format: str | None) -> None:
    """Start local emulators, seed them, and watch whole rotations in under a minute."""
    from rotator.sandbox import run as emulators

    logs.configure(log_format or "console", "info")
    try:
        with emulators.session(config, state) as current:
            code = emulators.run_passes(current, duration)
            out.rule("rotator status")
            watched = engine_for(current.config, current.state)
            watch_usage(watched)  # last use of the IAM keys, for the status below
            _print_status(watched, as_json=False)
            chain = watched.journal.trail.verify()
            out.print(
                plain(
                    f"audit trail: {chain.records} records, "
                    + ("intact" if chain.intact else f"BROKEN at {chain.broken_at}")
                    + f" (`rotator audit verify --state {current.state}`)"
                )
            )
    except PolicyError as exc:
        for problem in exc.problems:
            err.print(plain(problem))
        fail("the sandbox policy is invalid")
    except (ConfigError, JournalError) as exc:
        fail(str(exc))
    sys.exit(code)


cli.add_command(cli_audit.audit)
cli.add_command(cli_leaks.leaks)
cli.add_command(cli_permissions.permissions)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="rotator")
