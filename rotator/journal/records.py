"""What the journal records, as rotator reads it, and the seals that vouch for each row.

A rotation, its events, a lease, an alert and the audit trail's head are
each sealed when written: an HMAC of the columns that decide what rotator
does next, under the row key derived from the installation's fingerprint
key (:func:`rotator.journal.audit.row_key`). A row that no longer matches
its seal was written by someone other than rotator, and is read back with
``intact`` false (or refused: :class:`JournalTampered`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from rotator.journal.audit import GENESIS, same_seal, seal_row, seal_written
from rotator.lifecycle import BLOCKING, State


@dataclass(frozen=True)
class Rotation:
    """One rotation of one secret, as the journal records it."""

    id: str
    secret: str
    state: State
    trigger: str
    created_at: datetime
    updated_at: datetime
    reason: str | None = None
    emergency: bool = False
    promoted_at: datetime | None = None
    grace_deadline: datetime | None = None
    delete_at: datetime | None = None
    finished_at: datetime | None = None
    old_version_id: str | None = None
    old_ref: str | None = None
    old_fingerprint: str | None = None
    new_version_id: str | None = None
    new_ref: str | None = None
    new_fingerprint: str | None = None
    #: The issuer's refs before minting; ``None`` until the inventory is taken.
    known_refs: tuple[str, ...] | None = None
    #: When the old credential's last use was last checked (grace end).
    checked_at: datetime | None = None
    extensions: int = 0
    error: str | None = None
    #: A digest of the policy the rotation started under (a changed policy
    #: clears the failure streak: see ``Engine``).
    policy_digest: str | None = None
    #: When the old credential was revoked (use seen after it is an anomaly).
    revoked_at: datetime | None = None
    #: The row's seal as read (None for a rotation not yet written).
    seal: str | None = field(default=None, compare=False)
    #: False when the row read does not match its seal: written by someone
    #: other than rotator. The engine never acts on such a row.
    intact: bool = field(default=True, compare=False)

    @property
    def blocking(self) -> bool:
        """True while this rotation keeps another of the same secret from starting."""
        return self.state in BLOCKING

    @property
    def succeeded(self) -> bool:
        """True once the new credential has been promoted."""
        return self.promoted_at is not None


@dataclass(frozen=True)
class Event:
    """One step of a rotation (or an attempt at one), as recorded."""

    at: datetime
    step: str
    outcome: str
    state_from: str | None
    state_to: str | None
    detail: str | None


@dataclass(frozen=True)
class AlertRow:
    """One alert raised: to which notifier, for what condition, and whether it was delivered."""

    secret: str
    event: str
    notifier: str
    condition: str
    raised_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    payload: str
    #: False when the row fails its seal: its payload and attempts are not to be trusted.
    intact: bool = True


@dataclass(frozen=True)
class Usage:
    """When an issuer last saw a credential used, and when that was asked."""

    last_used: datetime | None
    checked_at: datetime


@dataclass(frozen=True)
class Lease:
    """A lease held on one secret: who holds it, its fencing token, and for how long."""

    secret: str
    owner: str
    token: int
    ttl: timedelta


@dataclass(frozen=True)
class SecretSummary:
    """What the journal knows about one secret, for plan and status."""

    last_success: datetime | None = None
    last_rotation: Rotation | None = None
    open: list[Rotation] = field(default_factory=list)
    #: Rotations rolled back since the last success (the failure streak).
    failures_in_a_row: int = 0
    #: Why a row of the secret's could not be read as a Rotation (a column
    #: holding what rotator never writes), naming it; such rows are left out
    #: above, and nothing is done for the secret (the other secrets' plans
    #: are not held up by it).
    unreadable: str | None = None


#: Rotation fields that are columns of ``rotations`` (``seal`` and ``intact`` are not sealed).
ROTATION_FIELDS = frozenset(f.name for f in fields(Rotation)) - {"seal", "intact"}

#: The columns an event's seal covers (not its id, which the database assigns).
EVENT_FIELDS = (
    "rotation_id",
    "secret",
    "at",
    "step",
    "outcome",
    "state_from",
    "state_to",
    "detail",
)


def rotation_sealed(key: bytes, sealed: Mapping[str, Any], seal: str | None) -> bool:
    """Tell whether a ``rotations`` row matches ``seal`` under ``key``.

    ``sealed``: its columns as its seal covers them (``as_sealed`` in
    rotator/journal/audit.py; rotator/journal/rows.py reads them so).
    """
    return same_seal(seal_written(key, "rotations", sealed), seal)


class NotAsWritten(Exception):
    """A ``rotations`` column holds what rotator never writes there: the row was edited.

    Read as a Rotation it cannot be (a state rotator has not, refs that are
    no JSON list, a time that is no time); readers name the rotation in a
    :class:`~rotator.errors.JournalTampered`.
    """

    def __init__(self, column: str, what: str) -> None:
        super().__init__(f"{column} {what}")
        self.column = column


def rotation_from(data: dict[str, Any], seal: str | None, intact: bool) -> Rotation:
    """Return the Rotation of a row's decoded columns (consumed), with what its seal check found.

    Raises :class:`NotAsWritten` for a state or refs rotator never writes.
    """
    try:
        data["state"] = State(data["state"])
    except ValueError:
        raise NotAsWritten("state", "holds no state rotator has") from None
    known = data.get("known_refs")
    if known is not None:
        data["known_refs"] = _refs(known)
    return Rotation(**data, seal=seal, intact=intact)


def _refs(known: Any) -> tuple[str, ...]:
    """Return the refs of a ``known_refs`` column as rotator writes it: a JSON list of texts."""
    try:
        refs = json.loads(known)
    except (ValueError, TypeError, RecursionError):  # no JSON, bytes, nesting past the stack
        refs = None
    if not isinstance(refs, list) or not all(isinstance(ref, str) for ref in refs):
        raise NotAsWritten("known_refs", "holds no JSON list of refs")
    return tuple(refs)


def rotation_values(rotation: Rotation, key: bytes) -> dict[str, Any]:
    """Return the ``rotations`` columns of a rotation, sealed with the row key."""
    values = {name: getattr(rotation, name) for name in ROTATION_FIELDS}
    values["state"] = rotation.state.value
    values["known_refs"] = (
        None if rotation.known_refs is None else json.dumps(list(rotation.known_refs))
    )
    values["seal"] = seal_row(key, "rotations", values)
    return values


def event_seal(key: bytes, row: Any) -> str:
    """Return the seal an ``events`` row read back should carry (over :data:`EVENT_FIELDS`)."""
    return seal_row(key, "events", {name: getattr(row, name) for name in EVENT_FIELDS})


def alert_seal(key: bytes, row: Any) -> str:
    """Seal what decides whether an alert is sent (again), and what it says.

    Its condition, whether and how often it was tried, and its payload: an
    alert marked sent, given up on, pre-raised or reworded in the database
    fails its seal and is sent again as rotator raised it.
    """
    names = ("secret", "event", "notifier", "condition", "sent_at", "attempts", "payload")
    return seal_row(key, "alerts", {name: getattr(row, name) for name in names})


def alert_intact(key: bytes, row: Any) -> bool:
    """Tell whether an ``alerts`` row is as rotator wrote it."""
    return same_seal(alert_seal(key, row), row.seal)


def lease_seal(key: bytes, secret: str, owner: str, token: int, expires_at: datetime) -> str:
    """Seal what fences a lease's writes: who holds it, with which token, until when.

    The expiry too: a lease put back (or pushed out) to 2099 would keep every
    other run off the secret for good.
    """
    values = {"secret": secret, "owner": owner, "token": token, "expires_at": expires_at}
    return seal_row(key, "leases", values)


def head_values(row: Any, **changes: Any) -> dict[str, Any]:
    """Return the sealed columns of the trail's head: ``row``'s (or zeros), with ``changes``."""
    names = ("seq", "hash", "accepted", "events_from")
    values: dict[str, Any] = {"seq": 0, "hash": GENESIS, "accepted": 0, "events_from": 0}
    if row is not None:
        values |= {
            name: (row[name] if isinstance(row, dict) else getattr(row, name)) for name in names
        }
    return values | changes
