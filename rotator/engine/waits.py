"""When a rotation waits before its next step, and how that wait is worded."""

from __future__ import annotations

from datetime import datetime

from rotator.journal.records import Rotation
from rotator.lifecycle import State


def waits_until(rotation: Rotation) -> datetime | None:
    """Return the deadline a rotation waits for before its next step (None: no wait)."""
    if rotation.state is State.GRACE:
        return rotation.grace_deadline
    if rotation.state is State.REVOKED:
        return rotation.delete_at
    return None


def is_held(rotation: Rotation) -> bool:
    """Tell whether an old credential is kept past its original grace deadline (in use)."""
    return rotation.state is State.GRACE and rotation.extensions > 0


def held_message(rotation: Rotation) -> str:
    """Say that an old credential still in use is held, and when it is checked next."""
    which = f"old credential {rotation.old_ref}" if rotation.old_ref else "old credential"
    return (
        f"{which} still in use, held past its original grace deadline "
        f"({rotation.extensions} extension(s) or hold(s)); next check "
        f"{format_time(rotation.grace_deadline)}"
    )


def waiting_message(rotation: Rotation, *, by_hand: bool = False) -> str:
    """Say what a rotation in grace, or revoked, waits for (``by_hand``: a person revokes)."""
    if rotation.state is State.GRACE:
        when = format_time(rotation.grace_deadline)
        if by_hand:
            return f"promoted; the old credential's grace ends at {when}: revoke it by hand then"
        if rotation.old_ref:
            return f"promoted; old credential {rotation.old_ref} to be revoked at {when}"
        if rotation.old_version_id:
            return f"promoted; the old value stays readable until {when}, then is retired"
        return f"promoted (there was no old value); grace ends at {when}"
    return f"old credential revoked; to be deleted at {format_time(rotation.delete_at)}"


def format_time(when: datetime | None) -> str:
    """Return a moment as operators read it in messages ("-" for none)."""
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-"
