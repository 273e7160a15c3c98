"""Driving rotations: one secret's rotations under its lease, each taken through its steps.

For a secret, the driver takes its lease, checks its journal rows, finishes
its open rotations (an emergency cuts a grace short, and rolls back a
rotation not yet promoted), decides again whether a new rotation is due now
that the lease is held, and starts it. Each rotation goes from step to step
(:data:`~rotator.engine.steps.STEP_HANDLERS`) as far as time allows: a
permanent failure before promote rolls back; any other failure is recorded
and left for the next run. What ends a rotation becomes an outcome, and a
failure or a success is alerted.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from rotator.adapters.secret import SecretValue
from rotator.adapters.values import AlertEvent, Severity
from rotator.clock import Clock
from rotator.engine import faults
from rotator.engine.alerts import Alerting, SecretAlerts
from rotator.engine.binding import Binding
from rotator.engine.report import Action, Outcome, PlanItem, Result
from rotator.engine.retry import Retrier
from rotator.engine.steps import STEP_HANDLERS, Steps
from rotator.engine.trust import JournalTrust
from rotator.engine.waits import (
    format_time,
    held_message,
    is_held,
    waiting_message,
    waits_until,
)
from rotator.errors import Interrupted, JournalTampered, LeaseLost, RotatorError, StillInUseError
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation, SecretSummary
from rotator.lifecycle import BEFORE_PROMOTE, FORWARD, TERMINAL, State, Transition

log = structlog.get_logger("rotator.engine")


class Driver:
    """Takes a secret's rotations through the lifecycle under its lease."""

    def __init__(
        self,
        journal: Journal,
        *,
        clock: Clock,
        lease: tuple[str, timedelta],
        interrupted: threading.Event,
        steps: Steps,
        retrier: Retrier,
        trust: JournalTrust,
        alerts: SecretAlerts,
        alerting: Alerting,
        binding: Callable[[str], Binding],
        replan: Callable[[str, SecretSummary, datetime], list[PlanItem]],
        digest: Callable[[str], str],
        rotating: Callable[[], contextlib.AbstractContextManager[None]],
    ) -> None:
        self.journal = journal
        self.clock = clock
        #: Who holds the leases this driver takes, and for how long each is taken.
        self.owner, self.lease_ttl = lease
        self.interrupted = interrupted
        self.steps = steps
        self.retrier = retrier
        self.trust = trust
        self.alerts = alerts
        self.alerting = alerting
        #: The adapters of a secret's policy.
        self.binding = binding
        #: Plans a secret again from its summary (what is due now the lease is held).
        self.replan = replan
        #: The digest of a secret's policy, recorded with each rotation.
        self.digest = digest
        #: Held while a rotation's steps are taken: the run holds its quota shares only then.
        self.rotating = rotating

    def process(
        self,
        name: str,
        *,
        start: bool,
        trigger: str,
        emergency: bool = False,
        reason: str | None = None,
        value: SecretValue | None = None,
    ) -> list[Outcome]:
        """Handle one secret under its lease: finish open rotations, maybe start one."""
        if self.trust.trail_problem is not None:
            return [self.trust.refuse(name, self.trust.trail_problem)]
        if start and trigger == "schedule" and self._rotated_since_planned(name):
            return []
        try:
            lease = self.journal.leases.acquire(name, self.owner, self.lease_ttl)
        except JournalTampered as exc:
            return [self.trust.refuse(name, str(exc))]
        if lease is None:
            log.info("skipped: another run holds this secret", secret=name)
            return [Outcome(name, Result.SKIPPED, "another run holds this secret's lease")]
        structlog.contextvars.bind_contextvars(secret=name)
        try:
            with self.journal.leases.holding(lease):
                found, unfinished = self.journal.checked_open_rotations(name)
                if found:
                    return [self.trust.refuse(name, found[0].what)]
                return self._process_locked(
                    name, unfinished, start, trigger, emergency, reason, value
                )
        except JournalTampered as exc:
            return [self.trust.refuse(name, str(exc))]
        finally:
            structlog.contextvars.unbind_contextvars("secret", "rotation_id", "step")
            with contextlib.suppress(RotatorError):  # an unreachable journal: the lease expires
                self.journal.leases.release(lease)

    def _rotated_since_planned(self, name: str) -> bool:
        """Tell whether the journal now says nothing is due for a secret planned due: passed over.

        Read before taking the lease: the runs on one journal each go through
        the whole list of due secrets, so most of what a run reaches was
        rotated by another since its plan; one journal read then tells it,
        where taking the lease, checking the secret's rows and giving the
        lease back cost two writes more. Only a secret some run has rotated
        can be passed over (one the journal knows nothing of was rotated by
        nobody), and only when nothing at all is due or wrong (an unfinished
        rotation's next step, an error): everything else is decided again
        under the lease, as before.
        """
        summary = self.journal.summaries(name).get(name, SecretSummary())
        if summary.last_rotation is None:
            return False
        again = self.replan(name, summary, self.clock())
        return not any(i.due or i.action in (Action.ERROR, Action.ATTENTION) for i in again)

    def _process_locked(
        self,
        name: str,
        open_rotations: list[Rotation],
        start: bool,
        trigger: str,
        emergency: bool,
        reason: str | None,
        value: SecretValue | None,
    ) -> list[Outcome]:
        """Finish a secret's open rotations, then start one if asked and nothing blocks it."""
        outcomes: list[Outcome] = []
        blocking: Rotation | None = None
        for unfinished in open_rotations:
            rotation = unfinished
            if emergency and rotation.state is State.GRACE:
                rotation = self.journal.advance(
                    rotation,
                    Transition.GRACE_CUT_SHORT,
                    "emergency rotation: grace cut short",
                    grace_deadline=self.clock(),
                )
            if emergency and rotation.state in BEFORE_PROMOTE and not rotation.emergency:
                # Finishing it would give the leaked credential a normal grace
                # (and its own new credential may be what leaked): roll it back,
                # and let the emergency rotation replace the credential at once.
                why = "superseded by an emergency rotation"
                rotation = self.journal.advance(
                    rotation, Transition.ROLLBACK_STARTED, why, error=why
                )
                rolled = self._advance_outcome(rotation)
                if rolled.state is State.ROLLED_BACK:
                    rolled.result, rolled.message = Result.OK, f"rolled back: {why}"
                outcomes.append(rolled)
                if rolled.state is not State.ROLLED_BACK:
                    blocking = rotation
                continue
            if not self.step_due(rotation) and not is_held(rotation):
                # Waiting for its deadline (grace, deletion): this run does nothing
                # to it, so it reports nothing of it (another run may be the one
                # that promoted it a moment ago).
                if rotation.state not in TERMINAL | {State.REVOKED}:
                    blocking = rotation
                continue
            outcome = self.advance_safely(rotation)
            outcomes.append(outcome)
            finished_by_hand = trigger == "manual" or (
                trigger == "emergency" and unfinished.emergency
            )
            if (
                finished_by_hand
                and unfinished.state in BEFORE_PROMOTE
                and outcome.result is Result.OK
            ):
                # An interrupted rotation was finished: asked for by hand, that
                # is the rotation the operator wanted; do not mint another.
                outcome.message = f"finished interrupted rotation; {outcome.message}"
                return outcomes
            if outcome.state is not None and outcome.state not in TERMINAL | {State.REVOKED}:
                blocking = rotation
        if start and trigger == "schedule":
            # The plan was made before the lease was ours: another run may have
            # rotated this secret since. Decide again on what the journal says
            # now; a secret the journal still knows nothing of was rotated by
            # nobody, so the store need not be asked again.
            summary = self.journal.summaries(name).get(name, SecretSummary())
            if summary.last_rotation is not None:
                again = self.replan(name, summary, self.clock())
                errors = [i for i in again if i.action in (Action.ERROR, Action.ATTENTION)]
                if errors:
                    # As the runner says it: nothing tried now, a person must look.
                    first = errors[0]
                    result = Result.FAILED if first.action is Action.ERROR else Result.ATTENTION
                    return [*outcomes, Outcome(name, result, first.reason, first.rotation_id)]
                start = any(i.due and i.action is Action.ROTATE for i in again)
        if not start:
            return outcomes
        if blocking is not None:
            failed = any(
                o.rotation_id == blocking.id and o.result is Result.FAILED for o in outcomes
            )
            if trigger != "schedule" and not failed:
                # One row for what was asked: this rotation cannot start, and why.
                outcomes = [o for o in outcomes if o.rotation_id != blocking.id]
                outcomes.append(
                    Outcome(
                        name,
                        Result.FAILED,
                        f"not rotated: {_unfinished(self.journal.get(blocking.id) or blocking)}; "
                        "wait for it, or use --emergency to cut its grace short",
                        blocking.id,
                        blocking.state,
                    )
                )
            return outcomes
        return [*outcomes, self._start(name, trigger, emergency, reason, value)]

    def _start(
        self,
        name: str,
        trigger: str,
        emergency: bool,
        reason: str | None,
        value: SecretValue | None,
    ) -> Outcome:
        """Record a new rotation of a secret and take it as far as it goes."""
        now = self.clock()
        structlog.contextvars.unbind_contextvars("step", "rotation_id")  # a rotation before it
        rotation = self.journal.create(
            Rotation(
                id=uuid.uuid4().hex,
                secret=name,
                state=State.PLANNED,
                trigger=trigger,
                created_at=now,
                updated_at=now,
                reason=reason,
                emergency=emergency,
                policy_digest=self.digest(name),
            ),
            detail=f"{trigger} rotation" + (f": {reason}" if reason else ""),
        )
        log.info("rotation started", rotation_id=rotation.id, trigger=trigger, emergency=emergency)
        if value is not None:
            self.steps.supplied[rotation.id] = value
        try:
            return self.advance_safely(rotation)
        finally:
            self.steps.supplied.pop(rotation.id, None)

    def advance_safely(self, rotation: Rotation) -> Outcome:
        """Advance a rotation, turning what ends it into an outcome (and an alert)."""
        outcome = self._advance_outcome(rotation)
        if outcome.result is Result.FAILED and not outcome.alerted:
            self.alerts.raise_alert(
                rotation.secret,
                AlertEvent.ROTATION_FAILED,
                Severity.WARNING,
                f"rotation of {rotation.secret} failed: {outcome.message}",
                condition=f"{rotation.id}:{outcome.state}",
                rotation_id=rotation.id,
                details={"state": str(outcome.state or "-")},
            )
        elif (
            outcome.result is Result.OK
            and rotation.state in BEFORE_PROMOTE | {State.ROLLING_BACK}
            and outcome.state in (State.GRACE, State.REVOKED, State.DONE)
        ):
            self.alerting.clear(
                rotation.secret,
                (
                    AlertEvent.ROTATION_FAILED,
                    AlertEvent.NEEDS_ATTENTION,
                    AlertEvent.OVERDUE,
                    AlertEvent.ROTATION_DUE,
                ),
            )
            self.alerts.raise_alert(
                rotation.secret,
                AlertEvent.ROTATION_SUCCEEDED,
                Severity.INFO,
                f"{rotation.secret} rotated: {outcome.message}",
                condition=rotation.id,
                rotation_id=rotation.id,
            )
        return outcome

    def _advance_outcome(self, rotation: Rotation) -> Outcome:
        """Advance a rotation and say how that ended (failures become outcomes, not errors)."""
        before = rotation.extensions
        try:
            with self.rotating():
                rotation = self.advance(rotation)
        except Interrupted:
            latest = self.journal.get(rotation.id) or rotation
            log.warning("rotation interrupted by shutdown", state=str(latest.state))
            return Outcome(
                rotation.secret,
                Result.WAITING,
                f"interrupted by shutdown at {latest.state}; the next start resumes it",
                rotation.id,
                latest.state,
            )
        except StillInUseError as exc:
            # Alerted as old-still-in-use where it was found; not a failed rotation.
            latest = self.journal.get(rotation.id) or rotation
            return Outcome(
                rotation.secret,
                Result.ATTENTION,
                str(exc),
                rotation.id,
                latest.state,
                alerted=True,
                hold=Transition.GRACE_HELD,
            )
        except RotatorError as exc:
            latest = self.journal.get(rotation.id) or rotation
            log.error(
                "rotation failed", rotation_id=rotation.id, state=str(latest.state), error=str(exc)
            )
            return Outcome(rotation.secret, Result.FAILED, str(exc), rotation.id, latest.state)
        if rotation.state is State.ROLLED_BACK:
            return Outcome(
                rotation.secret,
                Result.FAILED,
                f"rolled back: {rotation.error or 'see history'}",
                rotation.id,
                rotation.state,
            )
        if is_held(rotation) and not self.step_due(rotation):
            # Alerted as old-still-in-use where it was held; promoted all the same.
            return Outcome(
                rotation.secret,
                Result.ATTENTION,
                held_message(rotation),
                rotation.id,
                rotation.state,
                alerted=True,
                # Only an extension adds to the count without raising (a hold raises).
                hold=Transition.GRACE_EXTENDED if rotation.extensions > before else None,
            )
        if rotation.state in (State.GRACE, State.REVOKED) and not self.step_due(rotation):
            by_hand = self.binding(rotation.secret).issuer.reminder_only
            return Outcome(
                rotation.secret,
                Result.OK,
                waiting_message(rotation, by_hand=by_hand),
                rotation.id,
                rotation.state,
            )
        return Outcome(
            rotation.secret, Result.OK, f"rotation {rotation.state}", rotation.id, rotation.state
        )

    def step_due(self, rotation: Rotation) -> bool:
        """Tell whether a rotation's next step may run now (it waits for no deadline)."""
        until = waits_until(rotation)
        return rotation.state not in TERMINAL and (until is None or until <= self.clock())

    def advance(self, rotation: Rotation) -> Rotation:
        """Drive one rotation forward as far as time allows; return where it stopped.

        A permanent failure before promote rolls back (and the rolled-back
        rotation is returned); any other failure is recorded and raised, the
        rotation staying where it was so the next run resumes it.
        """
        binding = self.binding(rotation.secret)
        # The step a rotation stopped at stays bound for the lines that report
        # how it ended ("rotation failed"); the next rotation starts without it.
        structlog.contextvars.unbind_contextvars("step")
        structlog.contextvars.bind_contextvars(rotation_id=rotation.id)
        while rotation.state not in TERMINAL and self.step_due(rotation):
            step, _ = FORWARD[rotation.state]
            structlog.contextvars.bind_contextvars(step=step.value)
            faults.point(f"before:{step}")
            log.debug("step starting", state=str(rotation.state))
            try:
                if self.interrupted.is_set():
                    raise Interrupted(f"stopping before step {step}")
                handler = functools.partial(STEP_HANDLERS[step], self.steps, binding)
                after = self.retrier.step(rotation, step, handler)
            except LeaseLost:
                raise  # another run owns the secret now: record nothing, undo nothing
            except Interrupted as exc:
                latest = self.journal.get(rotation.id) or rotation
                self.journal.record(latest, step, "interrupted", f"{exc}; resumes at next start")
                raise
            except RotatorError as exc:
                latest = self.journal.get(rotation.id) or rotation
                if latest.state in BEFORE_PROMOTE and not exc.retryable:
                    log.warning("step failed; rolling back", error=str(exc))
                    rotation = self.journal.advance(
                        latest,
                        Transition.ROLLBACK_STARTED,
                        f"failed: {exc}",
                        step=step,
                        error=str(exc),
                    )
                    continue
                self.journal.record(latest, step, "error", str(exc))
                raise
            faults.point(f"after:{step}")
            if after.state is rotation.state and after.state is State.GRACE:
                # The grace was extended: nothing more to do until the new deadline.
                return after
            rotation = after
        return rotation


def _unfinished(rotation: Rotation) -> str:
    """Say what an unfinished rotation waits for, for the operator who asked for another."""
    if rotation.state is State.GRACE:
        return f"rotation {rotation.id} is in grace until {format_time(rotation.grace_deadline)}"
    return f"rotation {rotation.id} is not finished ({rotation.state})"
