"""Where a rotation failed, as its journal history tells an operator (for the permission tests)."""

from __future__ import annotations

from dataclasses import dataclass

from rotator.journal.journal import Journal
from rotator.lifecycle import State

#: Failures a test injects on purpose (``faults.armed("fail:<step>")``) are not the ones looked for.
INJECTED = "fault injected"


@dataclass(frozen=True)
class Failure:
    """The first failed step of a secret's rotations, and what the journal says of it."""

    step: str
    detail: str


def first_failure(journal: Journal, secret: str) -> Failure | None:
    """Return the first step of ``secret`` the journal records as failed, or ``None``.

    A step failed when its event is an ``error`` or the move to
    ``rolling_back`` (a failure before promote); injected faults are skipped.
    """
    for _rotation, events in journal.history(secret):
        for event in events:
            failed = event.outcome == "error" or event.state_to == State.ROLLING_BACK.value
            if failed and INJECTED not in (event.detail or ""):
                return Failure(event.step, event.detail or "")
    return None
