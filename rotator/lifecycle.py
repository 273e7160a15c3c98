"""The lifecycle of one rotation: its states, and the one table of moves between them.

:data:`LIFECYCLE` is the whole table, keyed by (state, transition) and giving
the state a rotation lands in. A transition's value is the word the audit
trail records for it, so the trail and the table cannot drift: the engine
names only the transition it made (``journal.advance(rotation,
Transition.VERIFIED)``), the journal looks the destination up here, and
refuses a move the table does not hold. docs/design.md draws the table; the
drawing there and in docs/how-it-works.md is :func:`diagram`'s output, checked by a test.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a rotation stands; the journal stores the value."""

    #: The intent to mint is recorded (with the issuer's inventory), nothing minted yet.
    PLANNED = "planned"
    #: The issuer holds a new credential; the store may not have it yet.
    MINTED = "minted"
    #: The store holds the new credential as a pending version, invisible to consumers.
    PENDING = "pending"
    #: Every target holds the new credential.
    PROPAGATED = "propagated"
    #: The new credential was shown to work.
    VERIFIED = "verified"
    #: The new credential is current; the old one lives until the grace deadline.
    GRACE = "grace"
    #: The old credential is revoked and retired; it is deleted at ``delete_at``.
    REVOKED = "revoked"
    #: Finished: the old credential is gone.
    DONE = "done"
    #: A failure before promote; the new credential is being removed.
    ROLLING_BACK = "rolling_back"
    #: Finished unsuccessfully: the new credential is gone, the old one stayed current.
    ROLLED_BACK = "rolled_back"


class Step(StrEnum):
    """What the engine does to move a rotation on (events name it; crash points use it)."""

    MINT = "mint"
    STORE = "store"
    PROPAGATE = "propagate"
    VERIFY = "verify"
    PROMOTE = "promote"
    REVOKE = "revoke"
    DELETE = "delete"
    ROLLBACK = "rollback"


class Transition(StrEnum):
    """A move of a rotation; its value is what the audit trail records for it."""

    MINTED = "minted"
    STORED_PENDING = "stored-pending"
    #: One target of several holds the new credential (the rotation stays pending).
    PROPAGATED_TO_TARGET = "propagated-to-target"
    PROPAGATED = "propagated"
    VERIFIED = "verified"
    PROMOTED = "promoted"
    #: The old credential was still in use at its deadline: it lives on, to a later deadline.
    GRACE_EXTENDED = "grace-extended"
    #: The old credential was still in use past the longest grace: it is held, and people told.
    GRACE_HELD = "grace-held"
    #: An emergency (a leak) ends the grace now: the old credential is revoked at once.
    GRACE_CUT_SHORT = "grace-cut-short"
    REVOKED = "revoked"
    DELETED = "deleted"
    ROLLBACK_STARTED = "rollback-started"
    ROLLED_BACK = "rolled-back"


#: States a failure can roll back from: everything before promote.
BEFORE_PROMOTE: frozenset[State] = frozenset(
    {State.PLANNED, State.MINTED, State.PENDING, State.PROPAGATED, State.VERIFIED}
)

#: The lifecycle: from a state, by a transition, to a state. Nothing else moves a rotation.
LIFECYCLE: dict[tuple[State, Transition], State] = {
    (State.PLANNED, Transition.MINTED): State.MINTED,
    # A re-mint after a crash lost a value the store never received.
    (State.MINTED, Transition.MINTED): State.MINTED,
    (State.MINTED, Transition.STORED_PENDING): State.PENDING,
    (State.PENDING, Transition.PROPAGATED_TO_TARGET): State.PENDING,
    (State.PENDING, Transition.PROPAGATED): State.PROPAGATED,
    (State.PROPAGATED, Transition.VERIFIED): State.VERIFIED,
    (State.VERIFIED, Transition.PROMOTED): State.GRACE,
    # A rollback that finds the new version already current (the process died
    # between the store's promote and the journal's record) goes forward: the
    # current credential is never revoked (docs/design.md, invariant 1).
    (State.ROLLING_BACK, Transition.PROMOTED): State.GRACE,
    (State.GRACE, Transition.GRACE_EXTENDED): State.GRACE,
    (State.GRACE, Transition.GRACE_HELD): State.GRACE,
    (State.GRACE, Transition.GRACE_CUT_SHORT): State.GRACE,
    (State.GRACE, Transition.REVOKED): State.REVOKED,
    (State.REVOKED, Transition.DELETED): State.DONE,
    **{
        (state, Transition.ROLLBACK_STARTED): State.ROLLING_BACK
        for state in State
        if state in BEFORE_PROMOTE
    },
    (State.ROLLING_BACK, Transition.ROLLED_BACK): State.ROLLED_BACK,
}

#: The step each transition belongs to: what an event records unless the
#: engine names another (a rollback starts in the step that failed).
STEP_OF: dict[Transition, Step] = {
    Transition.MINTED: Step.MINT,
    Transition.STORED_PENDING: Step.STORE,
    Transition.PROPAGATED_TO_TARGET: Step.PROPAGATE,
    Transition.PROPAGATED: Step.PROPAGATE,
    Transition.VERIFIED: Step.VERIFY,
    Transition.PROMOTED: Step.PROMOTE,
    Transition.GRACE_EXTENDED: Step.REVOKE,
    Transition.GRACE_HELD: Step.REVOKE,
    Transition.GRACE_CUT_SHORT: Step.REVOKE,
    Transition.REVOKED: Step.REVOKE,
    Transition.DELETED: Step.DELETE,
    Transition.ROLLBACK_STARTED: Step.ROLLBACK,
    Transition.ROLLED_BACK: Step.ROLLBACK,
}

#: The way on from a state: the step the engine runs there, and the
#: transition that step makes when it succeeds.
FORWARD: dict[State, tuple[Step, Transition]] = {
    State.PLANNED: (Step.MINT, Transition.MINTED),
    State.MINTED: (Step.STORE, Transition.STORED_PENDING),
    State.PENDING: (Step.PROPAGATE, Transition.PROPAGATED),
    State.PROPAGATED: (Step.VERIFY, Transition.VERIFIED),
    State.VERIFIED: (Step.PROMOTE, Transition.PROMOTED),
    State.GRACE: (Step.REVOKE, Transition.REVOKED),
    State.REVOKED: (Step.DELETE, Transition.DELETED),
    State.ROLLING_BACK: (Step.ROLLBACK, Transition.ROLLED_BACK),
}

TERMINAL: frozenset[State] = frozenset({State.DONE, State.ROLLED_BACK})

#: States in which a rotation blocks the start of another for the same secret.
BLOCKING: frozenset[State] = frozenset(set(State) - TERMINAL - {State.REVOKED})

#: The steps in lifecycle order (used for crash points and documentation).
STEPS: tuple[Step, ...] = tuple(Step)


class TransitionError(Exception):
    """A move outside :data:`LIFECYCLE` was attempted (a bug, never input)."""


def destination(state: State, transition: Transition) -> State:
    """Return where ``transition`` takes a rotation in ``state``.

    Raises:
        TransitionError: the table holds no such move.
    """
    try:
        return LIFECYCLE[(state, transition)]
    except KeyError:
        raise TransitionError(f"illegal transition {transition} from {state}") from None


def diagram() -> str:
    """Draw the table as a Mermaid state diagram (docs/design.md and docs/how-it-works.md)."""
    order = list(State)
    lines = ["stateDiagram-v2", f"    [*] --> {State.PLANNED}"]
    lines += [
        f"    {state} --> {to}: {transition}" for (state, transition), to in LIFECYCLE.items()
    ]
    lines += [f"    {state} --> [*]" for state in sorted(TERMINAL, key=order.index)]
    return "\n".join(lines) + "\n"
