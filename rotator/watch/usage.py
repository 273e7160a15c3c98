"""Watching credentials' use between rotations: last use recorded, undelivered alerts resent.

For issuers that report last use, the current credential's and any old
one's (in grace, or revoked and not yet deleted) last use is asked and
recorded (``rotator status`` shows it), and a revoked credential used after
its revocation is alerted. Then alerts left undelivered are sent again.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass

import structlog

from rotator.engine.runner import Engine
from rotator.errors import RotatorError
from rotator.journal.records import Rotation, SecretSummary
from rotator.lifecycle import State

log = structlog.get_logger("rotator.engine")


@dataclass
class WatchReport:
    """What a watch pass did: credentials checked, failures, alerts sent again."""

    checked: int = 0
    errors: int = 0
    alerts_resent: int = 0


def watch_usage(engine: Engine, names: Collection[str] | None = None) -> WatchReport:
    """Record last use of credentials, alert on anomalies, resend undelivered alerts.

    Covers every policy of ``engine`` (or those ``names``). One secret's
    failure is logged and the others go on. Changes no credential.
    """
    report = WatchReport()
    policies = engine.policies
    chosen = sorted(policies if names is None else set(names) & policies.keys())
    watched = [
        n for n in chosen if engine.adapters.issuer(policies[n].issuer.kind).reports_last_use
    ]
    journal = engine.journal
    summaries = journal.summaries(names=watched) if watched else {}
    for name in watched:
        summary = summaries.get(name)
        if summary is None:
            continue
        try:
            report.checked += _watch_usage(engine, name, summary)
        except RotatorError as exc:
            report.errors += 1
            log.warning("last use not checked", secret=name, error=str(exc))
    delivery = engine.alerting.flush()
    report.alerts_resent = len(delivery.sent)
    return report


def _watch_usage(engine: Engine, name: str, summary: SecretSummary) -> int:
    """Ask and record the last use of one secret's credentials; return how many were asked."""
    b = engine.binding(name)
    refs: dict[str, Rotation | None] = {}
    last = summary.last_rotation
    if last is not None:
        current = last.new_ref if last.succeeded else last.old_ref
        if current:
            refs[current] = None
    for rotation in summary.open:
        if rotation.state is State.GRACE and rotation.old_ref:
            refs.setdefault(rotation.old_ref, None)
        if rotation.state is State.REVOKED and rotation.old_ref:
            refs[rotation.old_ref] = rotation
    journal = engine.journal
    for ref, revoked in refs.items():
        if revoked is not None:
            engine.grace.check_revoked_use(b, revoked)
            continue
        used = engine.retrier.call(functools.partial(b.issuer.last_used, ref))
        journal.usage.record(name, ref, used)
    return len(refs)
