"""One secret described whole, as ``rotator describe NAME`` shows it; changes nothing.

Its policy as loaded (every default filled in), its standing (the status row),
what comes next and why (the plan), its credentials by version and reference
as the journal knows them, its last rotations, and the alerts raised about it.
Read from the policies and the journal; like ``status`` and ``plan``, its
plan asks its store when a secret the journal never saw rotated last changed
(no other provider, and no other secret's store, is called). Like every output of rotator it holds
identifiers and rotator's own messages, never a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rotator.engine.report import PlanItem
from rotator.engine.runner import Engine
from rotator.journal.records import AlertRow, Event, Rotation
from rotator.lifecycle import State
from rotator.policy.model import Policy
from rotator.reports.history import rotation_as_dict
from rotator.reports.status import StatusRow, read_status

#: Rotations shown, newest first (``rotator history NAME`` has them all).
LAST_ROTATIONS = 5


@dataclass(frozen=True)
class Description:
    """Everything rotator knows of one secret without asking a provider."""

    name: str
    #: When it was read (what relative times count from).
    now: datetime
    policy: Policy | None
    status: StatusRow | None
    plan: list[PlanItem]
    #: The newest rotations first, with their events.
    rotations: list[tuple[Rotation, list[Event]]]
    alerts: list[AlertRow]

    @property
    def credentials(self) -> dict[str, dict[str, str | None]]:
        """Return the current credential and the old one in grace, by version and reference."""
        found: dict[str, dict[str, str | None]] = {}
        for rotation, _ in self.rotations:
            if rotation.succeeded and "current" not in found:
                found["current"] = {"version": rotation.new_version_id, "ref": rotation.new_ref}
                if rotation.state is State.GRACE:
                    found["old, in grace"] = {
                        "version": rotation.old_version_id,
                        "ref": rotation.old_ref,
                    }
        return found

    def policy_as_dict(self) -> dict[str, Any] | None:
        """Return the policy as loaded, every default filled in (JSON-ready)."""
        if self.policy is None:
            return None
        # serialize_as_any: each adapter's fields are a ProviderConfig subclass,
        # which the declared type alone would dump as {}.
        loaded: dict[str, Any] = json.loads(self.policy.model_dump_json(serialize_as_any=True))
        return loaded

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form of ``rotator describe NAME --json``."""
        return {
            "secret": self.name,
            "read_at": self.now.isoformat(),
            "policy": self.policy_as_dict(),
            "status": self.status.as_dict() if self.status else None,
            "plan": [i.as_dict() for i in self.plan],
            "credentials": self.credentials,
            "rotations": [rotation_as_dict(r, events) for r, events in self.rotations],
            "alerts": [_alert_as_dict(a) for a in self.alerts],
        }


def describe(engine: Engine, name: str, *, complete: bool = True) -> Description:
    """Gather what rotator knows of secret ``name`` (its policy may not have loaded)."""
    journal = engine.journal
    known = journal.exists()
    summaries = journal.summaries(names=[name]) if known else {}
    rows = read_status(engine, complete=complete, names=[name]).rows
    status = next((r for r in rows if r.secret == name), None)
    history = journal.history(name) if known else []
    return Description(
        name=name,
        now=engine.clock(),
        policy=engine.policies.get(name),
        status=status,
        plan=[i for i in engine.plan(summaries, names=[name]) if i.secret == name],
        rotations=list(reversed(history))[:LAST_ROTATIONS],
        alerts=journal.alerts.rows(secret=name) if known else [],
    )


def _alert_as_dict(row: AlertRow) -> dict[str, Any]:
    """Return one alert raised about the secret: event, notifier, when, delivered or not."""
    return {
        "event": row.event,
        "notifier": row.notifier,
        "raised_at": row.raised_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "intact": row.intact,
    }
