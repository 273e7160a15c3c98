"""What the engine says it will do (plan items) and what it did (outcomes, run reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rotator.lifecycle import State, Transition


class Action(StrEnum):
    """What ``plan`` says the engine will do for a secret."""

    ROTATE = "rotate"
    RESUME = "resume"
    REVOKE = "revoke"
    DELETE = "delete"
    WAIT = "wait"
    ERROR = "error"
    #: Scheduled retries gave up; only ``rotator rotate NAME`` tries again.
    ATTENTION = "needs-attention"
    #: Due, but only a person can rotate it (issuer ``manual``): the owner is reminded.
    REMIND = "remind"


@dataclass(frozen=True)
class PlanItem:
    """One thing the engine would do (or is waiting to do) for one secret."""

    secret: str
    action: Action
    due_at: datetime | None
    due: bool
    reason: str
    rotation_id: str | None = None
    #: When the current credential became older than its policy allows (None: it is not).
    overdue_since: datetime | None = None
    #: An old credential still in use is held past its original grace deadline.
    held: bool = False
    #: Its last attempt failed (a step, or a whole rotation rolled back) and nothing
    #: has succeeded since: a run that does not try again yet still fails on it.
    failing: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "secret": self.secret,
            "action": self.action.value,
            "due": self.due,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "reason": self.reason,
            "rotation_id": self.rotation_id,
            "overdue_since": self.overdue_since.isoformat() if self.overdue_since else None,
            "held": self.held,
            "failing": self.failing,
        }


class Result(StrEnum):
    """How handling one secret in a run ended."""

    OK = "ok"
    FAILED = "failed"
    #: Not a failure of this run, but a state a person must look at: an old
    #: credential kept past its grace (extended or held, now or before), a failed
    #: step or rollback waiting for its retry, retries given up, journal rows not
    #: as rotator wrote them. The run exits 1 while it lasts. (``status`` shows
    #: ``needs-attention`` only for the last two: the others have a state of their own.)
    ATTENTION = "attention"
    WAITING = "waiting"
    SKIPPED = "skipped"


@dataclass
class Outcome:
    """What happened to one secret in a run."""

    secret: str
    result: Result
    message: str
    rotation_id: str | None = None
    state: State | None = None
    #: True when the failure was alerted where it was found (not as rotation-failed).
    alerted: bool = False
    #: The move this run made to keep the old credential past its grace deadline
    #: (grace-extended or grace-held); None when it made none. A run also fails
    #: while a credential is merely still held: only this says a hold happened now.
    hold: Transition | None = None


@dataclass
class RunReport:
    """Everything a run did, secret by secret."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        """Return the outcomes that failed."""
        return [o for o in self.outcomes if o.result is Result.FAILED]

    @property
    def attention(self) -> list[Outcome]:
        """Return the outcomes of secrets that need a person, though nothing failed this run."""
        return [o for o in self.outcomes if o.result is Result.ATTENTION]

    @property
    def exit_code(self) -> int:
        """Return 1 if anything failed or needs attention, else 0 (docs/commands.md)."""
        return 1 if self.failed or self.attention else 0
