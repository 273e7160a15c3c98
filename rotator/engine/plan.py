"""Planning: what is due for each secret, when and why, as pure functions of what is known.

The engine gathers the inputs (the policies, the journal's summaries, the
store's last change when the journal knows no rotation, what it knows to be
tampered with) and calls these; nothing here reads the journal or calls an
adapter, so a plan is the same for the same inputs and the same ``now``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta

from rotator.engine.report import Action, PlanItem
from rotator.engine.waits import format_time, held_message, is_held, waits_until
from rotator.journal.records import Rotation, SecretSummary
from rotator.lifecycle import State
from rotator.policy.model import Policy
from rotator.policy.schedule import max_age, min_interval, next_due

#: After a scheduled rotation rolled back, the next scheduled attempt waits
#: this long (or a quarter of the interval, if shorter), doubling with each
#: failure in a row up to FAILURE_BACKOFF_CAP, so a broken secret does not
#: mint and delete a credential on every pass of the service.
FAILURE_BACKOFF = timedelta(hours=1)
FAILURE_BACKOFF_CAP = timedelta(hours=24)
#: An unfinished rotation whose last step failed after its retries is tried
#: again on schedule this long after that failure (``rotator rotate`` at once).
STEP_RETRY_AFTER = timedelta(minutes=5)
#: After this many rollbacks in a row the secret needs attention: scheduled
#: attempts stop until an operator runs ``rotator rotate NAME``.
MAX_FAILURES_IN_A_ROW = 5


def policy_digest(policy: Policy) -> str:
    """Return a digest of what a policy says about rotating (not where it is written).

    Recorded with each rotation: a failure streak counts only while the
    policy stays the same, so editing a policy that needed attention
    lets the service try it again.
    """
    # What happens after promotion (grace bounds, leak responses) is left
    # out: changing it does not make a failing rotation work.
    text = policy.model_dump_json(
        exclude={
            "source_file",
            "source_line",
            "description",
            "owner",
            "labels",
            "alerts",
            "leaks",
            "max_grace",
            "when_old_still_used_after_max",
        },
        serialize_as_any=True,  # the adapters' Config subclasses, not the base
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class JournalPlan:
    """What the journal alone says of a secret: its open rotations, and whether that is all."""

    items: list[PlanItem]
    #: Nothing more is planned (its rows are distrusted, or an open rotation blocks a new one):
    #: its store and issuer need not be asked.
    settled: bool


def plan_from_journal(
    name: str, summary: SecretSummary, distrust: str | None, now: datetime
) -> JournalPlan:
    """Plan a secret's open rotations; ``distrust`` says why its rows cannot be trusted."""
    if distrust is not None:
        item = PlanItem(
            name,
            Action.ATTENTION,
            None,
            False,
            f"its journal rows are not as rotator wrote them ({distrust}); nothing is "
            "done for it until they are checked: `rotator audit verify`",
        )
        return JournalPlan([item], settled=True)
    items = [plan_open(rotation, now) for rotation in summary.open]
    return JournalPlan(items, settled=any(rotation.blocking for rotation in summary.open))


def plan_next_rotation(
    policy: Policy,
    summary: SecretSummary,
    store_changed: datetime | None,
    *,
    reminder_only: bool,
    now: datetime,
) -> list[PlanItem]:
    """Plan a secret's next rotation: when it is due, backed off after rollbacks, or reminded.

    ``store_changed`` is when the store last changed the secret, asked only
    when the journal knows no successful rotation of it.
    """
    name = policy.name
    last, basis = summary.last_success, "last rotation"
    if last is None:
        last, basis = store_changed, "last change in the store"
    due = next_due(policy.schedule, name, last, now)
    due_at, is_due = due.due_at, due.is_due
    reason = due.reason if last is None else f"{due.reason} ({basis})"
    overdue_since = None
    if last is not None and now - last > max_age(policy.schedule):
        overdue_since = last + max_age(policy.schedule)
    if reminder_only:
        # Nothing to retry on a schedule: a person rotates it, when reminded.
        return [
            PlanItem(
                name,
                Action.REMIND,
                due_at,
                is_due,
                f"{reason}; rotated by hand: `rotator rotate {name} --value-from-stdin`",
                overdue_since=overdue_since,
            )
        ]
    failed = summary.last_rotation
    streak = summary.failures_in_a_row
    if (
        failed is not None
        and failed.state is State.ROLLED_BACK
        and failed.finished_at
        and failed.policy_digest in (None, policy_digest(policy))
    ):
        if streak >= MAX_FAILURES_IN_A_ROW:
            return [
                PlanItem(
                    name,
                    Action.ATTENTION,
                    None,
                    False,
                    f"{streak} rotations in a row rolled back (last: {failed.error}); "
                    f"not retried on schedule until `rotator rotate {name}`",
                    failed.id,
                )
            ]
        base = min(FAILURE_BACKOFF, min_interval(policy.schedule) / 4)
        wait = min(base * 2 ** max(streak - 1, 0), FAILURE_BACKOFF_CAP)
        retry_at = failed.finished_at + wait
        if retry_at > due_at:
            due_at, is_due = retry_at, retry_at <= now
            reason = (
                f"last attempt {failed.id[:8]} rolled back ({failed.error}; "
                f"{streak} in a row); tried again at {format_time(retry_at)}"
            )
            return [
                PlanItem(
                    name,
                    Action.ROTATE,
                    due_at,
                    is_due,
                    reason,
                    overdue_since=overdue_since,
                    failing=True,
                )
            ]
    return [PlanItem(name, Action.ROTATE, due_at, is_due, reason, overdue_since=overdue_since)]


def plan_unreadable_store(name: str, error: str) -> PlanItem:
    """Plan nothing for a secret whose store could not say when it last changed."""
    return PlanItem(name, Action.ERROR, None, False, error)


def plan_open(rotation: Rotation, now: datetime) -> PlanItem:
    """Plan an unfinished rotation: resume it, revoke or delete the old credential, or wait."""
    until = waits_until(rotation)
    held = is_held(rotation)
    if held:
        action, reason = Action.REVOKE, held_message(rotation)
    elif rotation.state is State.GRACE:
        action, reason = Action.REVOKE, f"old credential in grace until {format_time(until)}"
    elif rotation.state is State.REVOKED:
        action, reason = (
            Action.DELETE,
            f"old credential revoked; to be deleted at {format_time(until)}",
        )
    else:
        action, reason = Action.RESUME, f"unfinished rotation in state {rotation.state}"
        until = None
    failing = rotation.error is not None and rotation.state is not State.ROLLING_BACK
    if failing:
        # Its last step failed after its retries (a provider down): try
        # again a while after that failure, not on every pass. (A
        # rollback's error is its reason: it goes on at once.)
        later = rotation.updated_at + STEP_RETRY_AFTER
        if until is None or later > until:
            until = later
            reason += (
                f"; last attempt failed ({rotation.error}), tried again at {format_time(later)}"
            )
    due = until is None or until <= now
    at = until or rotation.updated_at
    return PlanItem(
        rotation.secret, action, at, due, reason, rotation.id, held=held, failing=failing
    )


def plan_orphans(
    summaries: Mapping[str, SecretSummary],
    policies: AbstractSet[str],
    names: Collection[str] | None,
) -> list[PlanItem]:
    """Report the open rotations of secrets no policy names any more (among ``names``)."""
    # Each secret summarised looked up, not the whole policy set copied (the
    # service plans 100,000 policies a chunk at a time).
    orphans = {name for name in summaries if name not in policies}
    if names is not None:
        orphans &= set(names)
    items = []
    for name in sorted(orphans):
        summary = summaries[name]
        if summary.unreadable is not None:  # an open rotation among its rows, perhaps
            items.append(
                PlanItem(
                    name,
                    Action.ATTENTION,
                    None,
                    False,
                    f"no policy names this secret any more, and its journal rows are not as "
                    f"rotator wrote them ({summary.unreadable})",
                )
            )
        items.extend(
            PlanItem(
                name,
                Action.ERROR,
                None,
                False,
                f"rotation {rotation.id} is {rotation.state} but no policy "
                f"names this secret any more; restore the policy to finish it",
                rotation.id,
            )
            for rotation in summary.open
        )
    return items
