"""The lifecycle table: every path the engine takes is in it, nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rotator.engine.steps import STEP_HANDLERS
from rotator.journal.audit import AuditAction
from rotator.lifecycle import (
    BEFORE_PROMOTE,
    FORWARD,
    LIFECYCLE,
    STEP_OF,
    TERMINAL,
    State,
    Step,
    Transition,
    TransitionError,
    destination,
    diagram,
)

ROOT = Path(__file__).resolve().parent.parent


def test_forward_path_runs_from_planned_to_done() -> None:
    """Following FORWARD from PLANNED visits every happy-path state once and ends at DONE."""
    state, seen = State.PLANNED, []
    while state in FORWARD and state is not State.ROLLING_BACK:
        seen.append(state)
        state = destination(state, FORWARD[state][1])
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


def test_every_forward_step_makes_a_move_the_table_holds() -> None:
    """The transition FORWARD names for each state leaves that state in LIFECYCLE."""
    for state, (step, transition) in FORWARD.items():
        assert (state, transition) in LIFECYCLE, state
        assert STEP_OF[transition] is step, state


def test_every_transition_is_in_the_table_and_belongs_to_a_step() -> None:
    """No transition word is defined that the table never uses, or that no step makes."""
    assert {transition for _, transition in LIFECYCLE} == set(Transition)
    assert set(STEP_OF) == set(Transition)


def test_every_step_has_a_handler_in_the_engine() -> None:
    """The engine runs each step of FORWARD through its table of handlers."""
    handled = STEP_HANDLERS
    assert set(handled) == {step for step, _ in FORWARD.values()}
    assert all(callable(handler) for handler in handled.values())


def test_transition_words_and_other_audit_words_never_share_a_word() -> None:
    """An audit record's action names either a transition or another event, never both."""
    assert not {t.value for t in Transition} & {a.value for a in AuditAction}


def test_the_watching_page_names_every_audit_word() -> None:
    """Each word an audit record can carry is explained where operators read about the trail."""
    text = (ROOT / "docs" / "watching.md").read_text()
    trail = text[text.index("\n## Audit trail\n") : text.index("\n## Tamper evidence")]
    words = {t.value for t in Transition} | {a.value for a in AuditAction}
    assert {w for w in words if f"`{w}`" not in trail} == set()


def test_rollback_is_allowed_only_before_promote() -> None:
    """A rotation can roll back from every pre-promote state and from none after."""
    for state in State:
        allowed = (state, Transition.ROLLBACK_STARTED) in LIFECYCLE
        assert allowed == (state in BEFORE_PROMOTE), state


def test_terminal_states_have_no_way_out() -> None:
    """DONE and ROLLED_BACK are final."""
    for src, _transition in LIFECYCLE:
        assert src not in TERMINAL


def test_destination_refuses_skipping_verification() -> None:
    """Promoting straight from PENDING (skipping verify) is refused."""
    with pytest.raises(TransitionError):
        destination(State.PENDING, Transition.PROMOTED)


def test_grace_never_goes_back_to_before_promote() -> None:
    """Nothing after promote can lead back to a pre-promote state or a rollback."""
    for (src, _transition), dst in LIFECYCLE.items():
        if src in {State.GRACE, State.REVOKED, State.DONE}:
            assert dst not in BEFORE_PROMOTE | {State.ROLLING_BACK}


def test_the_diagram_draws_every_move_once_and_in_a_stable_order() -> None:
    """diagram() has one edge per table entry, and the same text every time."""
    edges = [line for line in diagram().splitlines() if ": " in line]
    assert len(edges) == len(LIFECYCLE)
    assert diagram() == diagram()
    assert "    grace --> grace: grace-cut-short" in edges


@pytest.mark.parametrize("document", ["docs/how-it-works.md", "docs/design.md"])
def test_the_documents_draw_the_table_as_it_is(document: str) -> None:
    """The Mermaid block in each document is diagram()'s output, word for word."""
    text = (ROOT / document).read_text()
    blocks = re.findall(r"```mermaid\n(stateDiagram-v2\n.*?)```", text, re.S)
    assert blocks == [diagram()], f"{document}: regenerate with rotator.lifecycle.diagram()"


def test_steps_are_named_in_lifecycle_order() -> None:
    """Crash points and documents list the steps from mint to rollback."""
    assert [s.value for s in Step][:3] == ["mint", "store", "propagate"]
