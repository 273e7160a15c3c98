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

from rotator.adapters.durations import parse_duration
from rotator.adapters.values import RequestObserver
from rotator.cli.console import err, fail, plain
from rotator.clock import system_clock, system_sleep
from rotator.engine.concurrency import Limits
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, JournalError, PolicyError
from rotator.journal.audit import actor, anchor_from_env, sink_from_env
from rotator.journal.journal import Journal
from rotator.output import logs, redact
from rotator.policy.loader import PolicySet, load_policies

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STATE = "sqlite:///rotator.db"


def config_options(func: F) -> F:
    """Add ``--config``, ``--state``, ``--log-format`` and ``--log-level`` to a command.

    The command's configuration errors become ``rotator: error: ...`` and
    exit 2 (a policy error lists every problem first, one per line).
    """

    @click.option(
        "--config",
        "config",
        envvar="ROTATOR_CONFIG",
        default="schedules",
        show_default=True,
        help="Policy file or directory of *.yaml files.",
    )
    @click.option(
        "--state",
        "state",
        envvar="ROTATOR_STATE",
        default=DEFAULT_STATE,
        show_default=True,
        help="Journal URL (sqlite:///PATH or postgresql://...).",
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
    )
    @wraps(func)
    def wrapper(*args: Any, log_format: str | None, log_level: str, **kwargs: Any) -> Any:
        # rotator's own database password (in the journal URL, or its query) is
        # masked wherever a driver or a server echoes it, from the start.
        redact.register_url(str(kwargs.get("state") or ""))
        logs.configure(log_format, log_level)
        try:
            return func(*args, **kwargs)
        except PolicyError as exc:
            for problem in exc.problems:
                err.print(plain(problem))
            fail(f"{len(exc.problems)} problem(s) in the policy files; nothing was changed")
        except (ConfigError, JournalError) as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def json_option(help_text: str = "Print JSON.") -> Callable[[F], F]:
    """Add ``--json`` (passed as ``as_json``): the command prints JSON on stdout instead."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def policies(config: str) -> PolicySet:
    """Load the policies (and the notifiers declared with them) from ``--config``."""
    return load_policies(Path(config))


def journal_for(state: str, mode: str = "operator") -> Journal:
    """Open the journal at ``--state``, recording ``mode``'s actor and feeding the audit sink."""
    return Journal(state, system_clock, actor=actor(mode), sink=sink_from_env())


def engine_for(
    config: str,
    state: str,
    *,
    mode: str = "operator",
    concurrency: int | None = None,
    on_request: RequestObserver | None = None,
) -> Engine:
    """Build the engine for a command: ``mode`` (service, one-shot, operator) names the actor."""
    loaded = policies(config)
    return Engine(
        loaded,
        journal_for(state, mode),
        clock=system_clock,
        sleep=system_sleep,
        limits=Limits.from_env(total=concurrency),
        on_request=on_request,
        lease_ttl=lease_ttl(),
        notifiers=loaded.notifiers,
        anchor=anchor_from_env(),
    )


def lease_ttl() -> timedelta:
    """Return ``ROTATOR_LEASE_TTL`` (default 15m): how long a silent lease holder keeps a secret.

    Every recorded step extends the lease, so the TTL bounds the longest
    single step (provider calls with their retries), not a whole rotation.
    """
    text = os.environ.get("ROTATOR_LEASE_TTL", "15m")
    try:
        ttl = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"ROTATOR_LEASE_TTL={text!r}: {exc}") from None
    if ttl < timedelta(seconds=5):
        raise ConfigError(f"ROTATOR_LEASE_TTL={text!r}: must be at least 5s")
    return ttl
