"""rotator's environment variables: each one named, explained and checked at start.

:data:`CORE` lists rotator's own settings; each installed adapter declares
the ones it reads (``Adapter.settings``) and the quota names
``ROTATOR_RATE_LIMITS`` may set (``Adapter.quotas``). :func:`problems` judges
the whole environment against them, so a misspelt quota, a malformed number
or a ``ROTATOR_*`` name one letter off a real one is refused before the first
provider call (exit 2), never found in the middle of a rotation.

A ``ROTATOR_*`` name close to a known one is an error (it is a typo that
would silently change nothing); any other unknown ``ROTATOR_*`` name is left
alone, since it may belong to the caller's own scripts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from rotator.adapters import ratelimit
from rotator.adapters.discovery import Registry
from rotator.adapters.durations import parse_duration
from rotator.adapters.values import Setting
from rotator.engine.concurrency import Limits
from rotator.errors import ConfigError
from rotator.output import redact
from rotator.output.spelling import closest, did_you_mean

#: What every setting's name begins with.
PREFIX = "ROTATOR_"
#: The lease a replica holds on a secret unless ROTATOR_LEASE_TTL says otherwise, and the shortest.
DEFAULT_LEASE = "15m"
SHORTEST_LEASE = 5


def listen_address(text: str) -> tuple[str, int]:
    """Read ``HOST:PORT`` (``--listen``/``ROTATOR_LISTEN``); ValueError saying the form if not."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464 ('' turns it off)")
    return host or "127.0.0.1", int(port)


def _listen(text: str) -> None:
    """Check ``ROTATOR_LISTEN`` (empty: the endpoint is off)."""
    if text:
        listen_address(text)


def lease_ttl(text: str) -> timedelta:
    """Read ``ROTATOR_LEASE_TTL``; ValueError if it is no duration or shorter than 5s."""
    ttl = parse_duration(text)
    if ttl < timedelta(seconds=SHORTEST_LEASE):
        raise ValueError(f"must be at least {SHORTEST_LEASE}s")
    return ttl


def _file_to_write(text: str) -> None:
    """Refuse a path rotator could not append to (ValueError), without touching it."""
    if text.strip() == "-":
        return
    path = os.path.abspath(text.strip())
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ValueError(f"its folder {folder} does not exist")
    if os.path.isdir(path):
        raise ValueError("is a folder, not a file")
    if os.path.islink(path):
        raise ValueError("is a symbolic link, which rotator does not follow")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise ValueError("cannot be written by this user")


def _anchor_file(text: str) -> None:
    """Check ``ROTATOR_AUDIT_ANCHOR``: a file rotator can write and read back."""
    if text.strip() == "-":
        raise ValueError("must name a file (the head is read back)")
    _file_to_write(text)


#: rotator's own settings (the adapters' come from ``Adapter.settings``).
CORE: tuple[Setting, ...] = (
    Setting("ROTATOR_CONFIG", "Policy file or directory of *.yaml files (--config)."),
    Setting("ROTATOR_STATE", "Journal URL: sqlite:///PATH or postgresql://... (--state)."),
    Setting("ROTATOR_KEY_FILE", "The journal's key file (--key-file; required for PostgreSQL)."),
    Setting("ROTATOR_LOG_LEVEL", "debug, info, warning or error (--log-level)."),
    Setting(
        "ROTATOR_LISTEN",
        "Service mode: HOST:PORT of /metrics, /healthz and /readyz (--listen).",
        check=_listen,
    ),
    Setting(
        "ROTATOR_CONCURRENCY",
        "Rotations at once: 8,aws-secretsmanager=4,per-provider=2 (a bare number is the total).",
        check=Limits.parse,
    ),
    Setting(
        ratelimit.ENV,
        "Calls per second per quota: secretsmanager.write=20,vault=10 (0 turns one off).",
        check=ratelimit.parse,
    ),
    Setting(
        "ROTATOR_LEASE_TTL",
        "How long a silent replica keeps a secret's lease (default 15m).",
        check=lease_ttl,
    ),
    Setting(
        "ROTATOR_AUDIT_LOG",
        "Also append each audit record to this file, or - for stdout.",
        check=_file_to_write,
    ),
    Setting(
        "ROTATOR_AUDIT_ANCHOR",
        "Where the audit chain's head is kept outside the journal (file path).",
        check=_anchor_file,
    ),
    Setting("ROTATOR_ACTOR", "Who acts, as the audit trail records it (default: the login)."),
    Setting(
        "ROTATOR_SUMMARY_MARKDOWN",
        "run --once: append the summary as Markdown to this file (--summary-markdown).",
    ),
)

#: What rotator sets for the programs it runs (exec targets, verifiers, notifiers);
#: never read, so never checked, but not mistaken for a typo either.
GIVEN_TO_HOOKS = frozenset(
    {
        "ROTATOR_SECRET",
        "ROTATOR_PHASE",
        "ROTATOR_ROTATION_ID",
        "ROTATOR_HAS_VALUE",
        "ROTATOR_CREDENTIAL_REF",
        "ROTATOR_NOTIFIER",
        "ROTATOR_ALERT_EVENT",
        "ROTATOR_ALERT_KEY",
        "ROTATOR_ALERT_SEVERITY",
    }
)

#: Longest piece of a wrong value repeated in a message.
_SHOWN = 80


@dataclass(frozen=True)
class Known:
    """Every setting and quota name the installed adapters and rotator itself declare."""

    settings: Mapping[str, Setting]
    #: Quota name -> the adapters declaring it (``store.aws-secretsmanager``...).
    quotas: Mapping[str, tuple[str, ...]]
    providers: tuple[str, ...]

    @classmethod
    def of(cls, adapters: Registry) -> Known:
        """Collect what ``adapters`` declare, beside rotator's own settings."""
        settings = {s.name: s for s in CORE}
        quotas: dict[str, list[str]] = {}
        for role, table in (
            ("store", adapters.stores),
            ("issuer", adapters.issuers),
            ("target", adapters.targets),
            ("verifier", adapters.verifiers),
            ("notifier", adapters.notifiers),
        ):
            for name, adapter in sorted(table.items()):
                for setting in adapter.settings:
                    settings.setdefault(setting.name, setting)
                for quota in adapter.quotas:
                    quotas.setdefault(quota, []).append(f"{role}.{name}")
        return cls(
            settings,
            {quota: tuple(names) for quota, names in sorted(quotas.items())},
            tuple(sorted(adapters.stores)),
        )


def problems(adapters: Registry, environ: Mapping[str, str] | None = None) -> list[str]:
    """Return what is wrong with rotator's environment variables, one sentence each."""
    env = os.environ if environ is None else environ
    known = _known_for(adapters, env)
    found: list[str] = []
    for name in sorted(n for n in env if n.startswith(PREFIX)):
        setting = known.settings.get(name)
        if setting is None:
            found.extend(_unknown_setting(name, known.settings))
            continue
        found.extend(_judged(setting, env[name]))
    if ratelimit.ENV in env:
        found.extend(_quota_names(env[ratelimit.ENV], known))
    if "ROTATOR_CONCURRENCY" in env:
        found.extend(_provider_names(env["ROTATOR_CONCURRENCY"], known))
    return found


def _known_for(adapters: Registry, env: Mapping[str, str]) -> Known:
    """Return what judging ``env`` needs: rotator's own settings alone, if they are all it sets.

    What the adapters declare (their settings, their quotas, the store
    names) is gathered only when ``env`` sets a ``ROTATOR_*`` name beyond
    rotator's own, a rate limit or a concurrency: doing so imports every
    installed adapter, which a command over two adapters need not.
    """
    own = {s.name: s for s in CORE}
    named = {n for n in env if n.startswith(PREFIX)}
    if named <= own.keys() and not named & {ratelimit.ENV, "ROTATOR_CONCURRENCY"}:
        return Known(own, {}, ())
    return Known.of(adapters)


def check(adapters: Registry, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError listing every problem of the environment (exit 2), if there is one."""
    found = problems(adapters, environ)
    if found:
        raise ConfigError("; ".join(found) + "; nothing was done")


def _unknown_setting(name: str, settings: Iterable[str]) -> list[str]:
    """Refuse a ``ROTATOR_*`` name one slip from a setting; leave any other be (not ours)."""
    if name in GIVEN_TO_HOOKS:
        return []
    # Compared without the prefix every name shares, which would make any two look alike.
    close = closest(
        name.removeprefix(PREFIX), [s.removeprefix(PREFIX) for s in settings], cutoff=0.8
    )
    if close is None:
        return []
    return [f"{name} is not a rotator setting; did you mean {PREFIX}{close}?"]


def _judged(setting: Setting, value: str) -> list[str]:
    """Run a setting's own check on ``value``; say what is wrong, its value shown unless secret."""
    if setting.check is None:
        return []
    try:
        setting.check(value)
    except (ValueError, ConfigError) as exc:
        if setting.secret:
            # The check's own words may repeat the value: none of them is shown.
            return [f"{setting.name} (value hidden) is not valid: {setting.help}"]
        shown = repr(redact.outside_text(value, _SHOWN))
        reason = str(exc).removeprefix(f"{setting.name}: ")
        return [f"{setting.name}={shown}: {redact.outside_text(reason, 2 * _SHOWN)}"]
    return []


def _quota_names(text: str, known: Known) -> list[str]:
    """Say which quota names of ``ROTATOR_RATE_LIMITS`` no installed adapter declares."""
    try:
        named = ratelimit.parse(text)
    except ConfigError:
        return []  # already said by the setting's own check
    return _undeclared(ratelimit.ENV, named, list(known.quotas), "no installed adapter has a quota")


def _provider_names(text: str, known: Known) -> list[str]:
    """Say which provider names of ``ROTATOR_CONCURRENCY`` no installed store has."""
    try:
        limits = Limits.parse(text)
    except ConfigError:
        return []  # already said by the setting's own check
    named = limits.overrides
    nobody = "no installed store provider is"
    return _undeclared("ROTATOR_CONCURRENCY", named, list(known.providers), nobody)


def _undeclared(variable: str, named: Iterable[str], known: list[str], nobody: str) -> list[str]:
    """Say, for each of ``named`` not ``known``: ``nobody`` called it, the closest, the known."""
    listing = ", ".join(known) or "none"
    return [
        f"{variable}: {nobody} called {redact.outside_text(name, _SHOWN)!r}"
        f"{did_you_mean(name, known)} (known: {listing})"
        for name in named
        if name not in known
    ]
