"""The lifecycle of one rotation: its states and the transitions between them.

::

    planned ─mint─> minted ─store─> pending ─propagate─> propagated ─verify─> verified
       │               │               │                    │                  │
       └───────────────┴───────────────┴──── rollback ──────┴──────────────────┤
                                        v                                promote│
                                 rolling_back ─rollback─> rolled_back          v
                                        └──────(found promoted)─────────────> grace
                                                                               │ revoke at the
                                                                               v deadline
                                                                            revoked ─delete─> done

``TRANSITIONS`` is the whole table: every state change the engine makes is
checked against it, and the journal refuses any other.
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
    """What the engine does to move a rotation from one state to the next."""

    MINT = "mint"
    STORE = "store"
    PROPAGATE = "propagate"
    VERIFY = "verify"
    PROMOTE = "promote"
    REVOKE = "revoke"
    DELETE = "delete"
    ROLLBACK = "rollback"


#: The forward path: from a state, the step that leaves it and where it leads.
FORWARD: dict[State, tuple[Step, State]] = {
    State.PLANNED: (Step.MINT, State.MINTED),
    State.MINTED: (Step.STORE, State.PENDING),
    State.PENDING: (Step.PROPAGATE, State.PROPAGATED),
    State.PROPAGATED: (Step.VERIFY, State.VERIFIED),
    State.VERIFIED: (Step.PROMOTE, State.GRACE),
    State.GRACE: (Step.REVOKE, State.REVOKED),
    State.REVOKED: (Step.DELETE, State.DONE),
    State.ROLLING_BACK: (Step.ROLLBACK, State.ROLLED_BACK),
}

#: States a failure can roll back from: everything before promote.
BEFORE_PROMOTE: frozenset[State] = frozenset(
    {State.PLANNED, State.MINTED, State.PENDING, State.PROPAGATED, State.VERIFIED}
)

#: Every allowed (from, to) pair.
TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {(src, dst) for src, (_, dst) in FORWARD.items()}
    | {(src, State.ROLLING_BACK) for src in BEFORE_PROMOTE}
    # A rollback that finds the new version already current (the process died
    # between the store's promote and the journal's record) goes forward: the
    # current credential must never be revoked (invariant 1 of docs/design.md).
    | {(State.ROLLING_BACK, State.GRACE)}
    # An extension of the grace window, or a re-mint after a crash lost a value
    # the store never received, stays in the same state.
    | {(State.GRACE, State.GRACE), (State.MINTED, State.MINTED)}
)

TERMINAL: frozenset[State] = frozenset({State.DONE, State.ROLLED_BACK})

#: States in which a rotation blocks the start of another for the same secret.
BLOCKING: frozenset[State] = frozenset(set(State) - TERMINAL - {State.REVOKED})

#: The steps in lifecycle order (used for crash points and documentation).
STEPS: tuple[Step, ...] = tuple(Step)


class TransitionError(Exception):
    """A state change outside ``TRANSITIONS`` was attempted (a bug, never input)."""


def check(src: State, dst: State) -> None:
    """Raise ``TransitionError`` unless ``src -> dst`` is in the table."""
    if (src, dst) not in TRANSITIONS:
        raise TransitionError(f"illegal transition {src} -> {dst}")
