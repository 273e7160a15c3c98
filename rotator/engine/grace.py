"""The old credential after promotion: its grace extended, held or ended while it is still used.

An issuer that reports last use tells the engine, at the grace deadline,
whether the old credential was used after its successor became current.
The policy says what then: extend the grace, hold it with an alert, or
revoke it anyway; never past ``max_grace``. After revocation, a use of the
revoked credential is alerted as someone still holding it.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime

import structlog

from rotator.adapters.values import AlertEvent, Severity
from rotator.clock import Clock
from rotator.engine.alerts import SecretAlerts
from rotator.engine.binding import Binding
from rotator.engine.retry import Retrier
from rotator.engine.waits import format_time
from rotator.errors import RotatorError, StillInUseError
from rotator.journal.audit import AuditAction
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import Transition
from rotator.policy.model import MIN_EXTENSION, Policy

log = structlog.get_logger("rotator.engine")


class Grace:
    """Decides what becomes of an old credential used after promotion, and alerts it."""

    def __init__(
        self, journal: Journal, clock: Clock, alerts: SecretAlerts, retrier: Retrier
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.alerts = alerts
        self.retrier = retrier

    def still_used(self, policy: Policy, rotation: Rotation, last: datetime) -> Rotation | None:
        """Handle an old credential used after promotion: extend, hold, or None to revoke it.

        Never past ``max_grace`` after promotion: there, the old credential
        is revoked (``when_old_still_used_after_max: revoke``, the default)
        or held with a critical alert on every check (``alert``). A stolen
        key is not kept alive by using it.
        """
        assert rotation.promoted_at is not None and rotation.old_ref is not None
        now = self.clock()
        limit = rotation.promoted_at + policy.grace_limit
        what = f"old credential {rotation.old_ref} was used at {format_time(last)}"
        mode = policy.when_old_still_used if now < limit else policy.when_old_still_used_after_max
        at_limit = now >= limit
        number = rotation.extensions + 1
        if mode == "extend":
            until = min(now + max(policy.grace, MIN_EXTENSION), limit)
            self._alert_still_used(
                rotation,
                Severity.WARNING,
                f"{what}; grace extended to {format_time(until)} (extension {number}; never past "
                f"{format_time(limit)}, max_grace after promotion)",
                condition=f"{rotation.id}:{number}",
                last=last,
            )
            log.warning("old credential still in use; grace extended", until=until.isoformat())
            return self.journal.advance(
                rotation,
                Transition.GRACE_EXTENDED,
                f"{what}; grace extended to {format_time(until)} (extension {number}, "
                f"limit {format_time(limit)})",
                grace_deadline=until,
                checked_at=now,
                extensions=number,
            )
        if mode == "alert":
            which = "when_old_still_used_after_max" if at_limit else "when_old_still_used"
            self._alert_still_used(
                rotation,
                Severity.CRITICAL if at_limit else Severity.WARNING,
                f"{what}; held, not revoked ({which}: alert"
                + (f", past max_grace {format_time(limit)})" if at_limit else ")"),
                # Past the limit every check is alerted again; before it, once.
                condition=f"{rotation.id}:{f'limit:{number}' if at_limit else 'held'}",
                last=last,
            )
            self.journal.advance(
                rotation,
                Transition.GRACE_HELD,
                f"{what}; holding it (alert)",
                checked_at=now,
                extensions=number,
            )
            raise StillInUseError(
                f"{what} after its successor became current; not revoked "
                f"({which}: alert). Find the consumer, or rotate with --emergency to revoke it now"
            )
        why = "past max_grace" if at_limit else "when_old_still_used: revoke"
        self._alert_still_used(
            rotation,
            Severity.CRITICAL,
            f"{what}; revoked anyway ({why}): a consumer still using it fails from now on",
            condition=f"{rotation.id}:revoked",
            last=last,
        )
        log.warning("old credential still in use; revoking anyway", last_used=format_time(last))
        return None

    def check_revoked_use(self, b: Binding, rotation: Rotation) -> bool:
        """Alert if the issuer saw the revoked old credential used after its revocation."""
        if not (b.issuer.reports_last_use and rotation.old_ref and rotation.revoked_at):
            return False
        last = self.retrier.call(functools.partial(b.issuer.last_used, rotation.old_ref))
        with contextlib.suppress(RotatorError):
            self.journal.usage.record(rotation.secret, rotation.old_ref, last)
        if last is None or last <= rotation.revoked_at:
            return False
        what = (
            f"{rotation.old_ref}, revoked at {format_time(rotation.revoked_at)}, "
            f"was used at {format_time(last)}"
        )
        self.alerts.raise_alert(
            rotation.secret,
            AlertEvent.REVOKED_CREDENTIAL_USED,
            Severity.CRITICAL,
            f"{rotation.secret}: revoked credential {what}: someone still holds it "
            "(a consumer left behind, or a leak)",
            condition=f"{rotation.old_ref}:{last.isoformat()}",
            rotation_id=rotation.id,
            details={"ref": rotation.old_ref, "last_used": format_time(last)},
        )
        with contextlib.suppress(RotatorError):
            self.journal.trail.note(
                AuditAction.REVOKED_CREDENTIAL_USED,
                "alert",
                f"revoked credential {what}",
                secret=rotation.secret,
                rotation_id=rotation.id,
                refs=(rotation.old_ref, None),
            )
        return True

    def _alert_still_used(
        self, rotation: Rotation, severity: Severity, what: str, *, condition: str, last: datetime
    ) -> None:
        """Alert that an old credential was used after its successor became current."""
        self.alerts.raise_alert(
            rotation.secret,
            AlertEvent.OLD_STILL_IN_USE,
            severity,
            f"{rotation.secret}: {what}: a consumer never picked up the new credential "
            "(or someone else holds the old one)",
            condition=condition,
            rotation_id=rotation.id,
            details={"ref": rotation.old_ref or "", "last_used": format_time(last)},
        )
