"""One secret's rotations, step by step, in the JSON form of ``rotator history --json``.

The journal returns each rotation with its recorded steps; this turns them
into JSON-ready mappings (times in ISO 8601). They hold identifiers, keyed
fingerprints and rotator's own messages, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rotator.journal.records import Event, Rotation


def history_as_json(entries: Sequence[tuple[Rotation, Sequence[Event]]]) -> list[dict[str, Any]]:
    """Return one object per rotation, oldest first as given, each with its ``steps``."""
    return [rotation_as_dict(rotation, events) for rotation, events in entries]


def rotation_as_dict(r: Rotation, events: Sequence[Event]) -> dict[str, Any]:
    """Return one rotation and its steps as a JSON-ready mapping."""
    return {
        "rotation_id": r.id,
        "state": r.state.value,
        "trigger": r.trigger,
        "reason": r.reason,
        "emergency": r.emergency,
        "created_at": r.created_at.isoformat(),
        "promoted_at": r.promoted_at.isoformat() if r.promoted_at else None,
        "grace_deadline": r.grace_deadline.isoformat() if r.grace_deadline else None,
        "old_ref": r.old_ref,
        "new_ref": r.new_ref,
        "old_version_id": r.old_version_id,
        "new_version_id": r.new_version_id,
        "new_fingerprint": r.new_fingerprint,
        "extensions": r.extensions,
        "error": r.error,
        "steps": [step_as_dict(e) for e in events],
    }


def step_as_dict(e: Event) -> dict[str, Any]:
    """Return one recorded step as a JSON-ready mapping."""
    return {
        "at": e.at.isoformat(),
        "step": e.step,
        "outcome": e.outcome,
        "from": e.state_from,
        "to": e.state_to,
        "detail": e.detail,
    }
