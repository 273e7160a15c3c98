"""The steps of the lifecycle: what each does at the adapters before the journal records it.

:data:`STEP_HANDLERS` is the one table from each :class:`~rotator.lifecycle.Step`
to the method of :class:`Steps` that runs it (``FORWARD`` says which step is
next). Every step calls its adapters first and then records the new state in
the journal, and is safe to repeat, so a run killed anywhere is finished by
the next one:

- before minting, the issuer's inventory is recorded, so that a credential
  minted by a run that died before recording it is found and adopted or
  deleted (``Issuer.recover``): nothing is orphaned, nothing minted twice;
- the new value goes to the store as a pending version at once, keyed by the
  rotation id, so a crash cannot lose it;
- a failure before promote rolls back; after promote, nothing ever rolls
  back to a credential that may have been revoked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Final

import structlog

from rotator.adapters.secret import SecretValue
from rotator.adapters.values import AlertEvent, Credential, Severity
from rotator.clock import Clock, Sleep
from rotator.engine import faults
from rotator.engine.alerts import SecretAlerts
from rotator.engine.binding import Binding
from rotator.engine.grace import Grace
from rotator.engine.waits import format_time
from rotator.errors import (
    ConflictError,
    Interrupted,
    PermanentError,
    RotatorError,
    TransientError,
    VerificationError,
)
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import State, Step, Transition
from rotator.policy.model import Policy
from rotator.policy.schedule import next_due

log = structlog.get_logger("rotator.engine")


class Steps:
    """Runs each step of a rotation against its policy's adapters, then records it."""

    def __init__(
        self,
        journal: Journal,
        *,
        clock: Clock,
        sleep: Sleep,
        interrupted: threading.Event,
        alerts: SecretAlerts,
        grace: Grace,
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.sleep = sleep
        self.interrupted = interrupted
        self.alerts = alerts
        self.grace = grace
        #: New credentials minted by this process, by rotation id: between mint
        #: and store the value lives only here (a crash there is what
        #: Issuer.recover is for).
        self.minted: dict[str, Credential] = {}
        #: Values a person supplied (rotate --value-from-stdin), by rotation
        #: id, until the mint step takes them.
        self.supplied: dict[str, SecretValue] = {}

    def mint(self, b: Binding, rotation: Rotation) -> Rotation:
        """PLANNED -> MINTED: take the inventory, make room, mint (or adopt after a crash)."""
        if rotation.known_refs is None:
            current = b.store.current()
            old_ref = b.issuer.ref_of(current.value) if current else None
            deleted = b.issuer.prepare(self._keep(rotation, old_ref))
            known = tuple(b.issuer.inventory())
            detail = f"inventory: {len(known)} existing"
            if deleted:
                detail += f"; made room by deleting stale {', '.join(deleted)}"
            rotation = self.journal.record(
                rotation,
                Step.MINT,
                "info",
                detail,
                old_version_id=current.version_id if current else None,
                old_ref=old_ref,
                old_fingerprint=self.journal.fingerprint(current.value) if current else None,
                known_refs=known,
            )
        else:
            # A run died inside this step: adopt what it minted, or delete it.
            found = b.issuer.recover(
                rotation.id, known=rotation.known_refs, pending=b.store.pending(rotation.id)
            )
            if found is not None:
                return self._minted_as(
                    rotation,
                    found,
                    f"adopted {found.ref or 'credential'} minted by an interrupted run",
                )
        supplied = self.supplied.pop(rotation.id, None)
        if supplied is not None:
            credential = Credential(supplied, b.issuer.ref_of(supplied))
            self.minted[rotation.id] = credential
            return self._minted_as(
                rotation, credential, f"new value supplied by {self.journal.actor}"
            )
        credential = b.issuer.mint(rotation.id)
        self.minted[rotation.id] = credential
        faults.point("mint:issued")
        log.info("minted new credential", ref=credential.ref, issuer=b.issuer.kind)
        return self._minted_as(
            rotation, credential, f"minted {credential.ref or 'a new value'} at {b.issuer.kind}"
        )

    def store(self, b: Binding, rotation: Rotation) -> Rotation:
        """MINTED -> PENDING: write the new credential as the store's pending version."""
        credential = self.minted.get(rotation.id)
        if credential is None:
            # Resumed after a crash between mint and store: the value is in the
            # store already, or recoverable from the issuer, or lost for good.
            credential = b.issuer.recover(
                rotation.id, known=rotation.known_refs or (), pending=b.store.pending(rotation.id)
            )
            if credential is None:
                credential = b.issuer.mint(rotation.id)
                rotation = self._minted_as(
                    rotation,
                    credential,
                    "re-minted: the interrupted run's credential could not be recovered "
                    "and was deleted",
                )
            self.minted[rotation.id] = credential
        version_id = b.store.put_pending(rotation.id, credential.value)
        faults.point("store:written")
        log.info("stored as pending", store=b.store.describe(), version=version_id)
        return self.journal.advance(
            rotation,
            Transition.STORED_PENDING,
            f"pending version {version_id} in {b.store.describe()}",
            new_version_id=version_id,
            new_ref=credential.ref,
            new_fingerprint=self.journal.fingerprint(credential.value),
        )

    def propagate(self, b: Binding, rotation: Rotation) -> Rotation:
        """PENDING -> PROPAGATED: write the new value to every target, in order.

        Every target write is idempotent, so a run that died between two
        targets writes them all again and converges.
        """
        if not b.targets:
            log.info("propagated", targets=0)
            return self.journal.advance(
                rotation, Transition.PROPAGATED, "no targets: consumers read the store"
            )
        value = self._new_value(b, rotation, read_back=False)
        for number, target in enumerate(b.targets, start=1):
            with _naming(f"target {number} ({target.describe()})"):
                target.write(rotation.id, value)
            faults.point(f"propagate:target{number}")
            log.info("propagated to target", target=target.describe(), number=number)
            # One audit record per target: which consumer got the new value when.
            rotation = self.journal.advance(
                rotation, Transition.PROPAGATED_TO_TARGET, f"target {number}: {target.describe()}"
            )
        return self.journal.advance(
            rotation,
            Transition.PROPAGATED,
            f"written to {len(b.targets)} target(s): " + ", ".join(t.describe() for t in b.targets),
        )

    def verify(self, b: Binding, rotation: Rotation) -> Rotation:
        """PROPAGATED -> VERIFIED: after the propagation delay, read back and prove it works."""
        delay = b.policy.propagation_delay
        if delay:
            # Counted from when propagation was recorded, so a restart does
            # not wait the whole delay again.
            left = (rotation.updated_at + delay - self.clock()).total_seconds()
            if left > 0:
                log.info("waiting for propagation", seconds=round(left, 3))
                self.sleep(left)
                if self.interrupted.is_set():
                    raise Interrupted("stopping while waiting for propagation")
        value = self._new_value(b, rotation, read_back=True)
        credential = Credential(value, rotation.new_ref)
        b.issuer.verify(credential)
        for verifier in b.verifiers:
            with _naming(f"check {verifier.describe()}"):
                verifier.verify(credential)
        log.info("verified new credential", ref=rotation.new_ref, checks=len(b.verifiers))
        checks = "".join(f", {v.describe()}" for v in b.verifiers)
        return self.journal.advance(
            rotation,
            Transition.VERIFIED,
            f"read back from the store (fingerprint matches) and accepted by {b.issuer.kind}"
            + checks,
        )

    def promote(self, b: Binding, rotation: Rotation) -> Rotation:
        """VERIFIED -> GRACE: make the new version current; start the old one's grace."""
        previous = b.store.promote(rotation.id, expires_on=self._expires_on(b.policy))
        faults.point("promote:moved")
        return self._promoted(b, rotation, previous, "promoted")

    def revoke(self, b: Binding, rotation: Rotation) -> Rotation:
        """GRACE -> REVOKED: at the grace deadline, revoke the old credential and retire it."""
        if (
            not rotation.emergency
            and rotation.old_ref
            and b.issuer.reports_last_use
            and rotation.promoted_at is not None
        ):
            since = rotation.checked_at or rotation.promoted_at
            last = b.issuer.last_used(rotation.old_ref)
            if last is not None and last > since:
                held = self.grace.still_used(b.policy, rotation, last)
                if held is not None:
                    return held
        if rotation.old_ref:
            b.issuer.revoke(rotation.old_ref)
        faults.point("revoke:revoked")
        if b.issuer.reminder_only:
            self.alerts.raise_alert(
                rotation.secret,
                AlertEvent.ROTATION_DUE,
                Severity.WARNING,
                f"{rotation.secret}: the old credential's grace ended; revoke it by hand now"
                + (
                    f" ({b.issuer.config.instructions})"
                    if getattr(b.issuer.config, "instructions", None)
                    else ""
                ),
                condition=f"revoke:{rotation.id}",
                rotation_id=rotation.id,
            )
        if rotation.old_version_id:
            b.store.retire(rotation.old_version_id)
        for target in b.targets:  # replicas retire the old value as the store just did
            target.retire(rotation.id)
        delay: timedelta = getattr(b.issuer.config, "delete_after", timedelta(0))
        delete_at = self.clock() + (delay if b.issuer.two_stage_revoke else timedelta(0))
        log.info("revoked old credential", ref=rotation.old_ref, version=rotation.old_version_id)
        return self.journal.advance(
            rotation,
            Transition.REVOKED,
            f"revoked {rotation.old_ref or 'old value'}; retired version "
            f"{rotation.old_version_id or '-'}",
            delete_at=delete_at,
            revoked_at=self.clock(),
        )

    def delete(self, b: Binding, rotation: Rotation) -> Rotation:
        """REVOKED -> DONE: look once more for use of the revoked credential, delete it for good."""
        try:
            self.grace.check_revoked_use(b, rotation)
        except (TransientError, PermanentError) as exc:
            # Evidence for an alert, not a condition of deleting: go on.
            log.warning("last use of the revoked credential not checked", error=str(exc))
        if rotation.old_ref and b.issuer.two_stage_revoke:
            b.issuer.delete(rotation.old_ref)
            log.info("deleted old credential", ref=rotation.old_ref)
        return self.journal.advance(
            rotation,
            Transition.DELETED,
            f"deleted {rotation.old_ref}"
            if rotation.old_ref and b.issuer.two_stage_revoke
            else "done",
        )

    def rollback(self, b: Binding, rotation: Rotation) -> Rotation:
        """ROLLING_BACK -> ROLLED_BACK: remove the new credential; the old stays current."""
        current = b.store.current()
        if current is not None and self.journal.fingerprint(current.value) == (
            rotation.new_fingerprint
        ):
            # The store promoted it before the failure: it is live, never revoke
            # it. Judged by the keyed fingerprint, not the version id: stores
            # differ in what id a promoted version gets (Vault counts, Azure
            # mints a new one), while a fresh credential's value is unique.
            return self._promoted(b, rotation, rotation.old_version_id, "found already promoted")
        doomed = {rotation.new_ref} if rotation.new_ref else set()
        if rotation.known_refs is not None:
            found = b.issuer.recover(rotation.id, known=rotation.known_refs, pending=None)
            if found is not None and found.ref:
                doomed.add(found.ref)
        if b.targets:
            written = self.minted.get(rotation.id)
            new_value = written.value if written is not None else b.store.pending(rotation.id)
            old = current.value if current is not None else None
            for target in reversed(b.targets):
                with _naming(f"restoring target {target.describe()}"):
                    target.restore(rotation.id, written=new_value, previous=old)
                log.info("restored target", target=target.describe())
        for ref in sorted(doomed):
            b.issuer.revoke(ref)
            b.issuer.delete(ref)
        b.store.discard(rotation.id)
        self.minted.pop(rotation.id, None)
        log.warning("rolled back", deleted=sorted(doomed))
        return self.journal.advance(
            rotation,
            Transition.ROLLED_BACK,
            "new credential deleted, pending version removed; the old credential stays current"
            + (f" (deleted {', '.join(sorted(doomed))})" if doomed else ""),
        )

    def _keep(self, rotation: Rotation, old_ref: str | None) -> set[str]:
        """Refs the issuer must not touch: the current one and any still in grace."""
        keep = {old_ref} if old_ref else set()
        for other in self.journal.open_rotations(rotation.secret):
            if other.id != rotation.id and other.state is State.GRACE:
                keep |= {r for r in (other.old_ref, other.new_ref) if r}
        return keep

    def _minted_as(self, rotation: Rotation, credential: Credential, detail: str) -> Rotation:
        """Keep a new credential in memory and record the rotation as minted."""
        self.minted[rotation.id] = credential
        return self.journal.advance(
            rotation,
            Transition.MINTED,
            detail,
            new_ref=credential.ref,
            new_fingerprint=self.journal.fingerprint(credential.value),
        )

    def _new_value(self, b: Binding, rotation: Rotation, *, read_back: bool) -> SecretValue:
        """Return the rotation's new value, read back from the store (or kept since mint).

        With ``read_back`` the store's pending version is always read (what
        verify proves); otherwise the value kept in memory since mint is used
        when there is one. Raises ``ConflictError`` if the store lost it and
        ``VerificationError`` if it holds a value other than the one minted.
        """
        minted = None if read_back else self.minted.get(rotation.id)
        value = minted.value if minted is not None else b.store.pending(rotation.id)
        if value is None:
            raise ConflictError(
                f"pending version of rotation {rotation.id} vanished from {b.store.describe()}"
            )
        if self.journal.fingerprint(value) != rotation.new_fingerprint:
            raise VerificationError(
                f"{b.store.describe()} holds a different pending value than was minted"
            )
        return value

    def _expires_on(self, policy: Policy) -> datetime:
        """Return when a credential promoted now will have been replaced at the latest."""
        now = self.clock()
        return next_due(policy.schedule, policy.name, now, now).due_at + policy.grace

    def _promoted(self, b: Binding, rotation: Rotation, previous: str | None, how: str) -> Rotation:
        """Record the new credential as current and the old one's grace deadline."""
        now = self.clock()
        grace = timedelta(0) if rotation.emergency else b.policy.grace
        deadline = now + grace
        self.minted.pop(rotation.id, None)
        log.info(
            f"{how}: new credential is current",
            grace_until=deadline.isoformat(),
            emergency=rotation.emergency,
        )
        return self.journal.advance(
            rotation,
            Transition.PROMOTED,
            f"{how}; old credential valid until {format_time(deadline)}"
            + (" (emergency: no grace)" if rotation.emergency else ""),
            promoted_at=now,
            grace_deadline=deadline,
            old_version_id=previous or rotation.old_version_id,
        )


#: A step's handler: given the steps, the policy's adapters and the rotation, it runs the
#: step and returns the rotation as the journal now records it.
StepHandler = Callable[[Steps, Binding, Rotation], Rotation]

#: The handler that runs each step of the lifecycle (``FORWARD`` says which step is next).
STEP_HANDLERS: Final[Mapping[Step, StepHandler]] = {
    Step.MINT: Steps.mint,
    Step.STORE: Steps.store,
    Step.PROPAGATE: Steps.propagate,
    Step.VERIFY: Steps.verify,
    Step.PROMOTE: Steps.promote,
    Step.REVOKE: Steps.revoke,
    Step.DELETE: Steps.delete,
    Step.ROLLBACK: Steps.rollback,
}


@contextmanager
def _naming(what: str) -> Iterator[None]:
    """Prefix an adapter's error with which target or check failed, keeping its kind."""
    try:
        yield
    except RotatorError as exc:
        if exc.retryable:
            delay = exc.delay if isinstance(exc, TransientError) else None
            raise TransientError(f"{what}: {exc}", delay=delay) from exc
        kind = VerificationError if isinstance(exc, VerificationError) else PermanentError
        raise kind(f"{what}: {exc}") from exc
