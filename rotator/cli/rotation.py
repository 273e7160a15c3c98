"""``rotator plan``, ``run``, ``rotate`` and ``check``: what is due, doing it, and preflight.

Exit codes (docs/commands.md): 0 everything succeeded or nothing was due; 1 at least
one rotation (or check) failed, the others still ran, or a secret needs attention; 2
invalid configuration or usage, nothing changed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from types import FrameType
from typing import NoReturn

import click
import structlog
from click.core import ParameterSource
from rich.table import Table

from rotator.adapters import shutdown
from rotator.adapters.secret import SecretValue
from rotator.cli.console import EXIT_FAILED, err, out, plain, print_json, when
from rotator.cli.engines import engine_for
from rotator.cli.environment import listen_address
from rotator.cli.options import config_options, json_option, secret_names, selection_options
from rotator.engine.concurrency import DEFAULT_PER_PROVIDER, DEFAULT_TOTAL
from rotator.engine.preflight import Verdict
from rotator.engine.report import Action, PlanItem, Result, RunReport
from rotator.engine.runner import Engine
from rotator.errors import ConfigError
from rotator.output.escaping import printable
from rotator.policy.selection import Selection
from rotator.reports.summary import RunSummary, outcomes_as_json
from rotator.watch.usage import watch_usage

log = structlog.get_logger("rotator.cli")

#: The longest value ``--value-from-stdin`` takes (Secrets Manager's own limit).
MAX_SUPPLIED_VALUE = 65536


@click.command()
@json_option()
@selection_options
@config_options
def plan(config: str, state: str, selection: Selection, as_json: bool) -> None:
    """Show what is due, when and why; changes nothing.

    NAME... (shell patterns such as 'payments/*'), --label and --owner narrow
    it. Exits 1 when a secret could not be planned (its store unreadable, or
    an open rotation no policy names any more), so a pipeline gating on the
    plan stops there.
    """
    engine = engine_for(config, state)
    items = engine.plan(names=None if selection.everything else selection.chosen(engine.policies))
    if as_json:
        print_json([i.as_dict() for i in items])
    else:
        _print_plan(items, engine.clock())
    if any(i.action is Action.ERROR for i in items):
        sys.exit(EXIT_FAILED)


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


@click.command()
@click.option("--once", is_flag=True, help="Do everything due now, then exit.")
@click.option(
    "--reconcile",
    default=30.0,
    show_default=True,
    help="Service mode: seconds between passes at most (sooner when something is due).",
)
@json_option("With --once: print the outcomes as JSON.")
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
    show_envvar=True,
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
    show_envvar=True,
    callback=lambda ctx, _param, value: _listen_option(ctx, str(value)),
    help="Service mode: HOST:PORT for /metrics, /healthz and /readyz ('' to turn off).",
)
@config_options
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
    if once:
        engine = engine_for(config, state, mode="one-shot", concurrency=concurrency)
        _run_once(engine, shutdown_deadline, as_json, summary_file, summary_markdown)
    _refuse_without_once(as_json=as_json, summary=summary_file, markdown=summary_markdown)
    # Imported only to serve: a one-shot run (a CronJob, a CI job) never
    # loads the service loop, its metrics or its HTTP endpoint.
    from rotator.cli import serving

    sys.exit(
        serving.serve(
            config,
            state,
            concurrency=concurrency,
            reconcile=reconcile,
            shutdown_deadline=shutdown_deadline,
            listen=listen,
        )
    )


def _listen_option(ctx: click.Context, value: str) -> str:
    """Check ``--listen`` as it is read (click's usage error, exit 2, if it is no HOST:PORT)."""
    if value:
        try:
            listen_address(value)
        except ValueError as exc:
            came = ctx.get_parameter_source("listen") is ParameterSource.ENVIRONMENT
            said = f"ROTATOR_LISTEN={value!r}: {exc}" if came else str(exc)
            raise click.BadParameter(said) from None
    return value


def _refuse_without_once(*, as_json: bool, summary: str | None, markdown: str | None) -> None:
    """Refuse (exit 2) the options that only a one-shot run can honour."""
    asked = (("--json", as_json), ("--summary", summary), ("--summary-markdown", markdown))
    given = [name for name, value in asked if value]
    if given:
        raise click.UsageError(
            f"{' and '.join(given)}: only with --once "
            "(the service writes only log lines, and no summary)"
        )


def _run_once(
    engine: Engine,
    deadline: float,
    as_json: bool,
    summary_file: str | None,
    summary_markdown: str | None,
) -> NoReturn:
    """Do everything due now, print the outcomes, write the summaries, and exit as the run did."""
    # A CronJob being deleted, or a CI job cancelled, sends SIGTERM: start
    # nothing more, give running steps the deadline, report, and exit.
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        engine.interrupt()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = engine.clock()
    report = engine.run_once(stop=stopping.is_set, deadline=deadline)
    if stopping.is_set():  # hooks still running at the deadline: end their process groups
        shutdown.end_outside_work()
    else:
        # A CronJob is the only process some installations run: record
        # last use, alert on anomalies, and resend undelivered alerts here.
        watch_usage(engine)
    print_json(outcomes_as_json(report)) if as_json else print_report(report)
    summary = RunSummary(report, started, engine.clock(), engine.journal.actor, stopping.is_set())
    if not _summary_written(summary, summary_file, summary_markdown):
        # The rotations happened: say so in the exit code, not a traceback.
        sys.exit(max(report.exit_code, EXIT_FAILED))
    sys.exit(report.exit_code)


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


@click.command()
@json_option()
@selection_options
@config_options
def check(config: str, state: str, selection: Selection, as_json: bool) -> None:
    """Preflight, changing nothing: store, issuer, targets and checks of each policy (or NAMES).

    NAME... (shell patterns such as 'payments/*'), --label and --owner narrow it.
    """
    engine = engine_for(config, state)
    findings = engine.check(selection.chosen(engine.policies))
    failed = [f for f in findings if f.verdict is Verdict.FAILED]
    unchecked = [f for f in findings if f.verdict is Verdict.UNKNOWN]
    # What could not be checked is no proof: a pipeline gating on check stops there too.
    code = EXIT_FAILED if failed or unchecked else 0
    if as_json:
        print_json([f.as_dict() for f in findings])
        sys.exit(code)
    table = Table(title="check", title_justify="left")
    for column in ("secret", "check", "result", "detail"):
        table.add_column(column)
    style = {
        Verdict.OK: "green",
        Verdict.FAILED: "red",
        Verdict.UNKNOWN: "magenta",
        Verdict.SKIPPED: "yellow",
    }
    for f in findings:
        verdict = plain(f.verdict.value, style[f.verdict])
        table.add_row(plain(f.secret), plain(f.check), verdict, plain(f.detail))
    out.print(table)
    secrets = {f.secret for f in findings}
    out.print(
        f"{len(findings)} checks of {len(secrets)} secret(s): {len(failed)} failed, "
        f"{len(unchecked)} could not be checked",
        highlight=False,
    )
    sys.exit(code)


@click.command()
@click.argument("name", shell_complete=secret_names)
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
@json_option("Print the outcome as JSON.")
@config_options
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
    title = f"rotate {name}" + (" --emergency" if emergency else "")
    print_json(outcomes_as_json(report)) if as_json else print_report(report, title)
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


def print_report(report: RunReport, title: str = "run") -> None:
    """Print a run's outcomes as a table (or say nothing was due), then the counts by result."""
    if not report.outcomes:
        out.print("nothing was due", highlight=False)
        return
    table = Table(title=plain(title), title_justify="left")
    for column in ("secret", "result", "state", "rotation", "detail"):
        table.add_column(column)
    style = {
        Result.OK: "green",
        Result.FAILED: "red",
        Result.ATTENTION: "red",
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
    counts = Counter(o.result for o in report.outcomes)
    said = ", ".join(f"{counts[r]} {r.value}" for r in Result if counts[r])
    out.print(f"{len(report.outcomes)} handled: {said}", highlight=False)
