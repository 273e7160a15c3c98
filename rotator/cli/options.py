"""The options every command takes, and the journal and engine built from them.

:func:`config_options` adds ``--config``, ``--state`` and the log options
and turns a bad configuration into exit 2; :func:`json_option` is the one
``--json`` flag; :func:`engine_for` and :func:`journal_for` build what a
command calls from those settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from rotator.adapters.discovery import registry
from rotator.adapters.values import RequestObserver
from rotator.cli import environment
from rotator.cli.console import err, fail, plain, warn
from rotator.clock import system_clock, system_sleep
from rotator.engine.concurrency import Limits
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, JournalError, PolicyError
from rotator.journal.audit import actor, anchor_from_env, sink_from_env
from rotator.journal.journal import Journal
from rotator.output import logs, redact
from rotator.policy.loader import (
    PolicySet,
    ReadablePolicies,
    load_policies,
    load_readable_policies,
)
from rotator.policy.selection import Selection

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STATE = "sqlite:///rotator.db"
#: Where :func:`config_options` keeps ``--key-file`` in the command's context.
KEY_FILE = "rotator.key_file"


def config_options(func: F) -> F:
    """Add ``--config``, ``--state``, ``--log-format`` and ``--log-level`` to a command.

    The command's configuration errors become ``rotator: error: ...`` and
    exit 2 (a policy error lists every problem first, one per line).
    """

    @click.option(
        "--config",
        "config",
        envvar="ROTATOR_CONFIG",
        show_envvar=True,
        default="schedules",
        show_default=True,
        help="Policy file or directory of *.yaml files.",
    )
    @click.option(
        "--state",
        "state",
        envvar="ROTATOR_STATE",
        show_envvar=True,
        default=DEFAULT_STATE,
        show_default=True,
        help="Journal URL (sqlite:///PATH or postgresql://...).",
    )
    @click.option(
        "--key-file",
        "key_file",
        envvar="ROTATOR_KEY_FILE",
        show_envvar=True,
        default=None,
        type=click.Path(dir_okay=True, path_type=Path),
        help="The journal's key file, the same for every run against the journal "
        "(default: FILE.key beside a SQLite journal; required for PostgreSQL).",
    )
    @click.option(
        "--log-format",
        type=click.Choice(["json", "console"]),
        default=None,
        help="Log format (default: console on a terminal, JSON otherwise).",
    )
    @click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
        envvar="ROTATOR_LOG_LEVEL",
        show_envvar=True,
    )
    @wraps(func)
    def wrapper(
        *args: Any, key_file: Path | None, log_format: str | None, log_level: str, **kwargs: Any
    ) -> Any:
        # rotator's own database password (in the journal URL, or its query) is
        # masked wherever a driver or a server echoes it, from the start.
        redact.register_url(str(kwargs.get("state") or ""))
        logs.configure(log_format, log_level)
        # Kept beside the command rather than passed to it: only the journal
        # (journal_for) needs it, and every command opens the journal there.
        click.get_current_context().meta[KEY_FILE] = key_file
        try:
            return func(*args, **kwargs)
        except PolicyError as exc:
            for problem in exc.problems:
                err.print(plain(problem))
            fail(f"{len(exc.problems)} problem(s) in the policy files; nothing was changed")
        except (ConfigError, JournalError) as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def secret_names(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Complete a secret's name from the policies ``--config`` names (shell completion).

    Reads what loads of the policy files, quietly: a completion never fails
    out loud, it offers nothing.
    """
    config = ctx.params.get("config") or os.environ.get("ROTATOR_CONFIG") or "schedules"
    # The shell reads stdout as the candidates: a log line there would be one.
    logs.configure("json", "error")
    try:
        names = [p.name for p in load_readable_policies(Path(config)).policies]
    except Exception:  # noqa: BLE001 (whatever is wrong, a completion offers nothing)
        return []
    return sorted(n for n in names if n.startswith(incomplete))


def selection_options(func: F) -> F:
    """Add ``NAME...``, ``--label KEY=VALUE`` and ``--owner`` (passed as ``selection``)."""

    @click.argument("names", nargs=-1, shell_complete=secret_names)
    @click.option(
        "--label",
        "labels",
        multiple=True,
        metavar="KEY=VALUE",
        help="Only secrets with this label (repeat: all must match).",
    )
    @click.option("--owner", default=None, help="Only secrets of this owner.")
    @wraps(func)
    def wrapper(*args: Any, names: tuple[str, ...], labels: tuple[str, ...], **kwargs: Any) -> Any:
        owner = kwargs.pop("owner")
        try:
            selection = Selection.of(names, labels, owner)
        except ConfigError as exc:
            fail(str(exc))
        return func(*args, selection=selection, **kwargs)

    return wrapper  # type: ignore[return-value]


def json_option(help_text: str = "Print JSON.") -> Callable[[F], F]:
    """Add ``--json`` (passed as ``as_json``): the command prints JSON on stdout instead."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def policies(config: str) -> PolicySet:
    """Load the policies (and the notifiers declared with them) from ``--config``."""
    return load_policies(Path(config))


def readable_policies(config: str) -> ReadablePolicies:
    """Load what can be loaded of ``--config`` for a read-only command, warning of every problem.

    Each problem goes to stderr as ``rotator: warning: FILE:LINE:COL: ...``
    (the line ``validate`` prints), then one line saying which files were
    left out and that the commands that act refuse until they are fixed.
    """
    readable = load_readable_policies(Path(config))
    if readable.problems:
        for problem in readable.problems:
            warn(str(problem))
        left_out = ", ".join(readable.skipped_files)
        warn(
            f"{len(readable.problems)} problem(s) in the policy files; left out: {left_out}. "
            "Showing the journal and the policies that loaded; `rotator run` and "
            "`rotator rotate` refuse until `rotator validate` passes"
        )
    return readable


def engine_for_reading(config: str, state: str) -> tuple[Engine, ReadablePolicies]:
    """Build the engine of a read-only command: the policies that load, the journal to read.

    An invalid policy file is warned of, not refused (see
    :func:`readable_policies`), as is a bad environment variable; a key file
    that does not exist is not made.
    """
    problems = warn_of_settings()
    readable = readable_policies(config)
    engine = _engine(readable.policies, journal_for(state, writing=False), lenient=bool(problems))
    return engine, readable


def warn_of_settings() -> list[str]:
    """Warn of every bad environment setting (a command that only reads goes on); return them."""
    problems = environment.problems(registry())
    for problem in problems:
        warn(
            f"{problem} (this command only reads: it goes on with the default where it can; "
            "what needs this setting may show an error)"
        )
    return problems


def journal_for(state: str, mode: str = "operator", *, writing: bool = True) -> Journal:
    """Open the journal at ``--state`` with its key file checked, for ``mode``'s actor.

    The key file (``--key-file``, or beside a SQLite journal) is checked
    here, before any provider is called: a missing, exposed or malformed key
    is one error (JournalError, exit 2), not a failure of each secret. A
    command that only reads (not ``writing``) goes on without a key file
    that does not exist, as reads never make one. Records go to the audit
    sink ``ROTATOR_AUDIT_LOG`` names. A command that writes has the
    environment checked first (:mod:`rotator.cli.environment`): a bad setting
    is a ConfigError, exit 2, before anything is opened.
    """
    if writing:
        environment.check(registry())
    journal = Journal(
        state, system_clock, key_file=named_key_file(), actor=actor(mode), sink=sink_from_env()
    )
    journal.database.keys.check(writing=writing)
    return journal


def named_key_file() -> Path | None:
    """Return the key file named by ``--key-file`` or ``ROTATOR_KEY_FILE`` (None: not named)."""
    context = click.get_current_context(silent=True)
    named = context.meta.get(KEY_FILE) if context is not None else None
    return named if isinstance(named, Path) else None


def engine_for(
    config: str,
    state: str,
    *,
    mode: str = "operator",
    concurrency: int | None = None,
    on_request: RequestObserver | None = None,
) -> Engine:
    """Build the engine for a command: ``mode`` (service, one-shot, operator) names the actor.

    The environment is checked as the journal is opened (:func:`journal_for`):
    a bad setting is a ConfigError (exit 2) before any provider is called.
    """
    loaded = policies(config)
    return _engine(loaded, journal_for(state, mode), concurrency=concurrency, on_request=on_request)


def _engine(
    loaded: PolicySet,
    journal: Journal,
    *,
    concurrency: int | None = None,
    on_request: RequestObserver | None = None,
    lenient: bool = False,
) -> Engine:
    """Build an engine over ``loaded`` and ``journal`` with the settings of the environment.

    ``lenient`` (a read-only command, its bad settings already warned of)
    takes the defaults where the environment's settings are malformed.
    """
    try:
        limits, ttl = Limits.from_env(total=concurrency), lease_ttl()
    except ConfigError:
        if not lenient:
            raise
        limits, ttl = Limits(), environment.lease_ttl(environment.DEFAULT_LEASE)
    return Engine(
        loaded,
        journal,
        clock=system_clock,
        sleep=system_sleep,
        limits=limits,
        on_request=on_request,
        lease_ttl=ttl,
        notifiers=loaded.notifiers,
        anchor=anchor_from_env(),
    )


def lease_ttl() -> timedelta:
    """Return ``ROTATOR_LEASE_TTL`` (default 15m): how long a silent lease holder keeps a secret.

    Every recorded step extends the lease, so the TTL bounds the longest
    single step (provider calls with their retries), not a whole rotation.
    """
    text = os.environ.get("ROTATOR_LEASE_TTL", environment.DEFAULT_LEASE)
    try:
        return environment.lease_ttl(text)
    except ValueError as exc:
        raise ConfigError(f"ROTATOR_LEASE_TTL={text!r}: {exc}") from None
