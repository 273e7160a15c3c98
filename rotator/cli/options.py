"""The options every command takes, and the policies read from them.

:func:`config_options` adds ``--config``, ``--state`` and the log options
and turns a bad configuration into exit 2; :func:`json_option` is the one
``--json`` flag; :func:`policies` and :func:`readable_policies` load what
``--config`` names. The journal and the engine built from the options are
:mod:`rotator.cli.engines`' (kept apart so that a command that builds
neither, ``validate``, never imports them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from rotator.adapters.discovery import registry
from rotator.cli import environment
from rotator.cli.console import err, fail, plain, warn
from rotator.errors import ConfigError, JournalError, PolicyError
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
#: Where :func:`config_options` keeps ``--key-file`` in the command's context
#: (:func:`rotator.cli.engines.named_key_file` reads it).
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


def warn_of_settings() -> list[str]:
    """Warn of every bad environment setting (a command that only reads goes on); return them."""
    problems = environment.problems(registry())
    for problem in problems:
        warn(
            f"{problem} (this command only reads: it goes on with the default where it can; "
            "what needs this setting may show an error)"
        )
    return problems
