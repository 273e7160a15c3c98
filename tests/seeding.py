"""A journal of finished rotations, so that no secret is due: for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import State, Transition

#: A rotation's transitions from planned to verified, in order.
_TO_VERIFIED = (
    Transition.MINTED,
    Transition.STORED_PENDING,
    Transition.PROPAGATED,
    Transition.VERIFIED,
)


def seed_finished(url: str, names: Iterable[str], now: datetime) -> None:
    """Record, through the journal's API, each secret's rotation finished an hour before ``now``."""
    journal = Journal(url, lambda: now)
    journal.migrate()
    done = now - timedelta(hours=1)
    for number, name in enumerate(names):
        rotation = journal.create(
            Rotation(
                id=f"{number:032x}",
                secret=name,
                state=State.PLANNED,
                trigger="schedule",
                created_at=done,
                updated_at=done,
            )
        )
        for transition in _TO_VERIFIED:
            rotation = journal.advance(rotation, transition)
        rotation = journal.advance(
            rotation, Transition.PROMOTED, promoted_at=done, grace_deadline=done
        )
        rotation = journal.advance(rotation, Transition.REVOKED, delete_at=done)
        journal.advance(rotation, Transition.DELETED)
    journal.close()
