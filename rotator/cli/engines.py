"""The journal and the engine a command builds from its options.

:func:`engine_for` and :func:`journal_for` build what a command calls from
the settings :func:`rotator.cli.options.config_options` reads;
:func:`engine_for_reading` is a read-only command's, which goes on past a
bad policy file or setting.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import click

from rotator.adapters.discovery import registry
from rotator.adapters.values import RequestObserver
from rotator.cli import environment
from rotator.cli.options import KEY_FILE, policies, readable_policies, warn_of_settings
from rotator.clock import system_clock, system_sleep
from rotator.engine.concurrency import Limits
from rotator.engine.runner import Engine
from rotator.errors import ConfigError
from rotator.journal.audit import actor, anchor_from_env, sink_from_env
from rotator.journal.journal import Journal
from rotator.policy.loader import PolicySet, ReadablePolicies


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
