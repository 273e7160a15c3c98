"""The lifecycle table: every path the engine takes is in it, nothing else is."""

from __future__ import annotations

import pytest

from rotator.lifecycle import (
    BEFORE_PROMOTE,
    FORWARD,
    TERMINAL,
    TRANSITIONS,
    State,
    TransitionError,
    check,
)


def test_forward_path_runs_from_planned_to_done() -> None:
    """Following FORWARD from PLANNED visits every happy-path state once and ends at DONE."""
    state, seen = State.PLANNED, []
    while state in FORWARD and state is not State.ROLLING_BACK:
        seen.append(state)
        state = FORWARD[state][1]
    assert seen == [
        State.PLANNED,
        State.MINTED,
        State.PENDING,
        State.PROPAGATED,
        State.VERIFIED,
        State.GRACE,
        State.REVOKED,
    ]
    assert state is State.DONE


def test_rollback_is_allowed_only_before_promote() -> None:
    """A rotation can roll back from every pre-promote state and from none after."""
    for state in State:
        allowed = (state, State.ROLLING_BACK) in TRANSITIONS
        assert allowed == (state in BEFORE_PROMOTE), state


def test_terminal_states_have_no_way_out() -> None:
    """DONE and ROLLED_BACK are final."""
    for src, _dst in TRANSITIONS:
        assert src not in TERMINAL


def test_check_refuses_skipping_verification() -> None:
    """Promoting straight from PENDING (skipping verify) is refused."""
    with pytest.raises(TransitionError):
        check(State.PENDING, State.GRACE)


def test_grace_never_goes_back_to_before_promote() -> None:
    """Nothing after promote can lead back to a pre-promote state or a rollback."""
    for src, dst in TRANSITIONS:
        if src in {State.GRACE, State.REVOKED, State.DONE}:
            assert dst not in BEFORE_PROMOTE | {State.ROLLING_BACK}
