"""Alerts: telling people, once per condition, through the notifiers they declared.

A secret's policy names its notifiers (``alerts: [ops]``), and a notifier
may also take the alerts of every secret its ``match:`` selects (by labels,
by owner); each notifier says which events it wants (``events:``, by default every event but
``rotation-succeeded``). :meth:`Alerting.raise_alert` records the alert in
the journal's ``alerts`` table first (one row per secret, event and
notifier, holding the *condition*: the failed rotation's id, the overdue
credential's age basis...), then delivers it. The same condition is never
sent twice; a new condition replaces the old and is sent; a condition that
ended is cleared (:meth:`Alerting.clear`), so that the next one is sent
again. Delivery is retried with backoff a few times at once, and an alert
still undelivered stays in the table and is retried by :meth:`Alerting.flush`
(the service calls it on its watch pass, ``run --once`` at its end): a
notifier down during an incident does not lose the alert.

Alerts never carry a secret value: their text is built from identifiers and
from rotator's own error messages, which by contract carry none.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from rotator.adapters.discovery import Registry
from rotator.adapters.roles import Notifier
from rotator.adapters.values import Alert, AlertEvent, Runtime, Severity
from rotator.errors import RotatorError, TransientError
from rotator.journal.journal import Journal
from rotator.journal.records import AlertRow
from rotator.policy.model import NotifierSpec, Policy

log = structlog.get_logger("rotator.alerts")

#: Delivery attempts made at once before the alert is left for the next flush.
ATTEMPTS = 3
#: The first wait between two attempts (doubling), and the longest.
BASE_DELAY, MAX_DELAY = 1.0, 8.0
#: Undelivered alerts older than this many attempts are given up (logged).
MAX_ATTEMPTS = 30


def alert_key(event: AlertEvent, secret: str | None, condition: str) -> str:
    """Return a short stable id of one condition (receivers deduplicate on it)."""
    text = f"{event.value}|{secret or ''}|{condition}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Delivery:
    """What became of one alert: sent to these notifiers, left for later to those."""

    sent: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


class Alerting:
    """Sends alerts to the notifiers that want them, once per condition, durably."""

    def __init__(
        self,
        notifiers: Mapping[str, NotifierSpec],
        journal: Journal,
        *,
        adapters: Registry,
        runtime: Runtime,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self.journal = journal
        self.adapters = adapters
        self.runtime = runtime
        #: Told ``(event, outcome)`` per notifier: sent, failed or deduplicated (metrics).
        self.on_outcome = on_outcome or (lambda _event, _outcome: None)
        self.replace(notifiers)

    def replace(self, notifiers: Mapping[str, NotifierSpec]) -> None:
        """Switch to a new set of declared notifiers (a reload)."""
        self.specs = dict(notifiers)
        self._built: dict[str, Notifier[Any]] = {}

    def notifier(self, name: str) -> Notifier[Any]:
        """Return the adapter of a declared notifier, built once."""
        found = self._built.get(name)
        if found is None:
            spec = self.specs[name]
            found = self.adapters.notifiers[spec.kind](spec.config, self.runtime, name)
            self._built[name] = found
        return found

    def recipients(self, event: AlertEvent, names: Iterable[str] | None) -> list[str]:
        """Return the notifiers (of ``names``, or all declared) that want ``event``."""
        chosen = self.specs if names is None else [n for n in names if n in self.specs]
        return [n for n in chosen if event in self.specs[n].events]

    def raise_alert(
        self,
        event: AlertEvent,
        severity: Severity,
        summary: str,
        *,
        secret: str | None,
        condition: str,
        to: Iterable[str] | None,
        rotation_id: str | None = None,
        owner: str | None = None,
        labels: Mapping[str, str] | None = None,
        details: Mapping[str, str] | None = None,
    ) -> Delivery:
        """Raise an alert for ``condition``; send it where it was not sent for this condition.

        ``to`` names the notifiers of the secret's policy (None: every
        declared notifier, for alerts about no secret). Never raises: a
        notifier that fails is logged, and its alert kept for ``flush``.
        """
        alert = Alert(
            event=event,
            severity=severity,
            secret=secret,
            summary=summary,
            at=self.runtime.clock(),
            key=alert_key(event, secret, condition),
            rotation_id=rotation_id,
            owner=owner,
            labels=dict(labels or {}),
            details=dict(details or {}),
        )
        quiet = event is AlertEvent.ROTATION_SUCCEEDED  # the rotation itself is logged
        log.log(
            logging.DEBUG if quiet else _LEVELS[severity],
            "alert",
            alert=event.value,
            alert_secret=secret,
            summary=summary,
        )
        payload = json.dumps(alert.as_dict(), sort_keys=True)
        sent: list[str] = []
        failed: list[str] = []
        skipped: list[str] = []
        for name in self.recipients(event, to):
            try:
                fresh = self.journal.alerts.raised(
                    secret or "", event.value, name, condition, payload
                )
            except RotatorError as exc:
                log.error("alert not recorded", notifier=name, error=str(exc))
                fresh = True  # deliver all the same: better twice than never
            if not fresh:
                skipped.append(name)
                self.on_outcome(event.value, "deduplicated")
                continue
            row = AlertRow(secret or "", event.value, name, condition, alert.at, None, 0, None, "")
            (sent if self._deliver(name, alert, row) else failed).append(name)
        return Delivery(tuple(sent), tuple(failed), tuple(skipped))

    def clear(self, secret: str, events: Collection[AlertEvent]) -> None:
        """Forget the conditions of ``events`` for ``secret`` (they ended); never raises."""
        try:
            self.journal.alerts.cleared(secret, [e.value for e in events])
        except RotatorError as exc:
            log.warning("alert conditions not cleared", error=str(exc))

    def flush(self) -> Delivery:
        """Send again every alert raised but not delivered; return what became of them."""
        sent: list[str] = []
        failed: list[str] = []
        try:
            rows = self.journal.alerts.rows(unsent=True)
        except RotatorError as exc:
            log.warning("undelivered alerts not read", error=str(exc))
            return Delivery()
        for row in rows:
            if row.notifier not in self.specs:
                continue
            if not row.intact:
                substitute = self._altered(row)
                ok = self._deliver(row.notifier, substitute, row, replaced=True)
                (sent if ok else failed).append(row.notifier)
                continue
            if row.attempts >= MAX_ATTEMPTS:
                continue
            data = json.loads(row.payload)
            alert = Alert(
                event=AlertEvent(data["event"]),
                severity=Severity(data["severity"]),
                secret=data["secret"],
                summary=data["summary"],
                at=datetime.fromisoformat(data["at"]),
                key=data["key"],
                rotation_id=data["rotation_id"],
                owner=data["owner"],
                labels=data.get("labels", {}),  # alerts kept before labels were sent have none
                details=data["details"],
            )
            ok = self._deliver(row.notifier, alert, row)
            (sent if ok else failed).append(row.notifier)
        return Delivery(tuple(sent), tuple(failed))

    def _altered(self, row: AlertRow) -> Alert:
        """Return the alert sent instead of one whose journal row was altered outside rotator.

        Its payload, attempts or delivery mark cannot be trusted, so what is
        sent says so, critically, rather than repeat a text someone wrote.
        """
        what = f"{row.event} alert about {row.secret or 'the journal'}"
        return Alert(
            event=AlertEvent.JOURNAL_TAMPERED,
            severity=Severity.CRITICAL,
            secret=row.secret or None,
            summary=f"the {what} was altered in the journal outside rotator (marked sent, "
            "given up on or reworded); its text is not trusted: run `rotator audit verify`",
            at=self.runtime.clock(),
            key=alert_key(AlertEvent.JOURNAL_TAMPERED, row.secret or None, row.condition),
            details={"event": row.event, "condition": row.condition},
        )

    def _deliver(self, name: str, alert: Alert, row: AlertRow, *, replaced: bool = False) -> bool:
        """Send to one notifier, retrying transient failures; record how it went."""
        error: str | None = None
        delay = BASE_DELAY
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self.notifier(name).send(alert)
            except RotatorError as exc:
                error = str(exc)
                if not exc.retryable or attempt == ATTEMPTS:
                    break
                hint = exc.delay if isinstance(exc, TransientError) else None
                self.runtime.sleep(min(hint if hint is not None else delay, MAX_DELAY))
                delay = min(delay * 2, MAX_DELAY)
                continue
            error = None
            break
        delivered = error is None
        self.on_outcome(alert.event.value, "sent" if delivered else "failed")
        if not delivered:
            log.warning(
                "alert not delivered; kept to send again",
                notifier=name,
                alert=alert.event.value,
                error=error,
            )
        try:
            payload = json.dumps(alert.as_dict(), sort_keys=True) if replaced else None
            self.journal.alerts.attempted(row, delivered=delivered, error=error, replaced=payload)
        except RotatorError as exc:
            log.warning("alert delivery not recorded", notifier=name, error=str(exc))
        return delivered


_LEVELS = {
    Severity.CRITICAL: logging.ERROR,
    Severity.WARNING: logging.WARNING,
    Severity.INFO: logging.INFO,
}


class SecretAlerts:
    """Raises alerts about one secret to the notifiers its policy names, naming its owner."""

    def __init__(self, alerting: Alerting, policies: Callable[[], Mapping[str, Policy]]) -> None:
        self.alerting = alerting
        #: The current policies by secret (a reload replaces them).
        self.policies = policies

    def raise_alert(
        self,
        name: str,
        event: AlertEvent,
        severity: Severity,
        summary: str,
        *,
        condition: str,
        rotation_id: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Raise an alert about secret ``name`` for ``condition`` (see ``Alerting.raise_alert``)."""
        policy = self.policies().get(name)
        self.alerting.raise_alert(
            event,
            severity,
            summary,
            secret=name,
            condition=condition,
            to=self.notifiers_of(policy) if policy is not None else (),
            rotation_id=rotation_id,
            owner=policy.owner if policy is not None else None,
            labels=policy.labels if policy is not None else None,
            details=details,
        )

    def notifiers_of(self, policy: Policy) -> list[str]:
        """Return the notifiers a secret's alerts go to: those it names, then those matching it."""
        matching = [
            name
            for name, spec in sorted(self.alerting.specs.items())
            if spec.match is not None and spec.match.selects(policy)
        ]
        return list(dict.fromkeys([*policy.alerts, *matching]))
