"""Status rows, built from the journal's summaries, the plan and the recorded last uses alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rotator.engine.report import Action, PlanItem
from rotator.journal.records import Rotation, SecretSummary, Usage
from rotator.lifecycle import State
from rotator.reports.status import NEVER, StatusReport, status_rows
from tests.conftest import START

NOW = START + timedelta(days=2, hours=3, minutes=4, seconds=5, microseconds=600)
#: The JSON keys of `rotator status --json`, in their order (scripts read them).
KEYS = [
    "secret",
    "state",
    "current_since",
    "age",
    "last_rotation",
    "last_rotation_at",
    "last_error",
    "next_due",
    "old_grace_deadline",
    "overdue",
    "current_ref",
    "current_last_used",
    "old_ref",
    "old_last_used",
    "policy_loaded",
    "owner",
    "labels",
]


def _rotation(secret: str, state: State, **fields: Any) -> Rotation:
    return Rotation(
        id=f"{secret}-rotation-0123456789",
        secret=secret,
        state=state,
        trigger="schedule",
        created_at=START,
        updated_at=START,
        **fields,
    )


def _rotate(secret: str, due_in: timedelta, **fields: Any) -> PlanItem:
    return PlanItem(secret, Action.ROTATE, NOW + due_in, False, "every 30d", **fields)


def test_a_secret_never_rotated_has_only_its_next_due_date() -> None:
    """No journal rows: state 'never rotated', the plan's due date, everything else empty."""
    [row] = status_rows(["app/db"], {}, [_rotate("app/db", timedelta(days=1))], {}, NOW)

    assert row.state == "never rotated" and row.next_due == NOW + timedelta(days=1)
    data = row.as_dict()
    assert list(data) == KEYS
    assert data == {
        **dict.fromkeys(KEYS),
        "secret": "app/db",
        "state": "never rotated",
        "next_due": (NOW + timedelta(days=1)).isoformat(),
        "overdue": False,
        "policy_loaded": True,
        "labels": {},
    }


def test_a_secret_in_grace_shows_its_age_deadline_and_last_uses() -> None:
    """In grace: the age in whole seconds, the old credential's deadline, each ref's last use."""
    deadline = START + timedelta(days=3)
    grace = _rotation(
        "deployer",
        State.GRACE,
        new_ref="AKIANEW",
        old_ref="AKIAOLD",
        grace_deadline=deadline,
        promoted_at=START,
    )
    summary = SecretSummary(last_success=START, last_rotation=grace, open=[grace])
    used = {
        ("deployer", "AKIANEW"): Usage(last_used=START + timedelta(hours=1), checked_at=NOW),
        ("deployer", "AKIAOLD"): Usage(last_used=None, checked_at=NOW),
    }

    [row] = status_rows(["deployer"], {"deployer": summary}, [], used, NOW)

    assert row.state == "grace" and row.next_due is None
    assert row.age == timedelta(days=2, hours=3, minutes=4, seconds=5)
    assert (row.current_ref, row.old_ref) == ("AKIANEW", "AKIAOLD")
    assert (row.current_last_used, row.old_last_used) == (START + timedelta(hours=1), NEVER)
    data = row.as_dict()
    assert data["age"] == "2d3h4m5s"
    assert data["old_grace_deadline"] == deadline.isoformat()
    assert data["current_since"] == data["last_rotation_at"] == START.isoformat()
    assert data["last_rotation"] == grace.id
    assert data["current_last_used"] == (START + timedelta(hours=1)).isoformat()
    assert data["old_last_used"] == "never"


def test_a_failed_rotation_keeps_the_old_credential_as_current() -> None:
    """Rolled back: the current ref is the old one, the error is shown, use not asked is null."""
    failed = _rotation(
        "app/api", State.ROLLED_BACK, new_ref="new", old_ref="old", error="check refused it"
    )
    summary = SecretSummary(last_rotation=failed, failures_in_a_row=1)

    [row] = status_rows(["app/api"], {"app/api": summary}, [], {}, NOW)

    assert (row.state, row.current_ref, row.last_error) == (
        "rolled_back",
        "old",
        "check refused it",
    )
    assert row.current_last_used is None and row.as_dict()["current_last_used"] is None
    assert row.age is None and row.as_dict()["age"] is None


def test_attention_overrides_the_state_and_overdue_comes_from_the_plan() -> None:
    """needs-attention replaces the state; only rotate and remind items give the next due date."""
    done = _rotation("a", State.DONE)
    plan = [
        PlanItem("a", Action.ATTENTION, None, False, "journal rows do not match"),
        PlanItem("b", Action.DELETE, NOW, True, "deleted at ...", "b-1"),
        _rotate("b", timedelta(days=9), overdue_since=NOW - timedelta(days=1)),
        PlanItem("c", Action.REMIND, NOW + timedelta(days=4), False, "rotated by hand"),
    ]
    summaries = {"a": SecretSummary(last_success=START, last_rotation=done)}

    rows = status_rows(["c", "a", "b"], summaries, plan, {}, NOW)

    assert [r.secret for r in rows] == ["a", "b", "c"]
    a, b, c = rows
    assert (a.state, a.next_due, a.overdue) == ("needs-attention", None, False)
    assert (b.next_due, b.overdue) == (NOW + timedelta(days=9), True)
    assert c.next_due == NOW + timedelta(days=4)


def test_only_the_policies_named_get_rows() -> None:
    """A secret the journal knows but no policy names is not a row (plan reports it)."""
    orphan = SecretSummary(last_rotation=_rotation("gone", State.DONE))

    rows = status_rows(["kept"], {"gone": orphan}, [], {}, NOW)

    assert [r.secret for r in rows] == ["kept"]
    assert StatusReport(NOW, rows).as_json() == [rows[0].as_dict()]


def test_a_secret_whose_policy_did_not_load_is_shown_from_the_journal() -> None:
    """``unloaded``: a row from the journal's summary alone, sorted in, policy_loaded False."""
    known = SecretSummary(last_rotation=_rotation("app/api", State.DONE))

    rows = status_rows(["app/db"], {"app/api": known}, [], {}, NOW, unloaded=["app/api"])

    assert [(r.secret, r.policy_loaded) for r in rows] == [("app/api", False), ("app/db", True)]
    assert rows[0].state == "done" and rows[0].next_due is None
    assert rows[0].as_dict()["policy_loaded"] is False
