"""What rotator knows of each managed secret's credentials, to match leaked ones against.

- its current value, read live from its store, and each string field of a
  mapping value (an IAM key pair's ``SecretAccessKey``, an AppRole
  ``secret_id``): *current*;
- the values the journal fingerprinted (``old_fingerprint``,
  ``new_fingerprint`` of every rotation) and the refs it recorded
  (``old_ref``, ``new_ref``: a credential's public identifier, which is
  what scanners report for some): *pending*, *in grace*, *revoked* (with
  when), or *superseded* (current once, then replaced outside rotator).

Values are known by keyed fingerprint only; a store's value lives only
while its fingerprints are taken. Refs are identifiers, not secrets, and
are kept as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from rotator.adapters.roles import Store
from rotator.adapters.secret import PUBLIC_FIELDS, SecretValue
from rotator.journal.records import Rotation
from rotator.lifecycle import BEFORE_PROMOTE, State

#: Field values of a stored mapping shorter than this are not compared (a
#: user name, a port): too likely to turn up in a report by chance.
MIN_FIELD_LENGTH = 8

#: A value's keyed fingerprint (the journal's, or this process's: see ephemeral_fingerprint).
Fingerprint = Callable[[SecretValue], str]


class Standing(StrEnum):
    """Where a leaked credential stands in its secret's life."""

    #: What consumers use now.
    CURRENT = "current"
    #: Minted by an unfinished rotation, not current yet.
    PENDING = "pending"
    #: Replaced, still valid until its grace deadline.
    GRACE = "in grace"
    #: Revoked by a rotation (or deleted by a rollback).
    REVOKED = "revoked"
    #: Current once, then replaced outside rotator: nobody revoked it.
    SUPERSEDED = "superseded"


#: Most urgent first. A credential known twice is judged by the more urgent
#: standing, except that the journal's word on an old credential (revoked)
#: beats the guess that a replaced one is superseded.
_URGENCY = (
    Standing.CURRENT,
    Standing.PENDING,
    Standing.GRACE,
    Standing.REVOKED,
    Standing.SUPERSEDED,
)
#: Standings an emergency rotation deals with: it replaces the current and
#: pending credentials and revokes those in grace at once.
ROTATE = frozenset({Standing.CURRENT, Standing.PENDING, Standing.GRACE})


@dataclass(frozen=True)
class Known:
    """One credential rotator recognises: where it stands, since when, by which rotation."""

    standing: Standing
    at: datetime | None = None
    rotation_id: str | None = None

    def urgency(self) -> int:
        """Return the rank of this standing (0 is the most urgent)."""
        return _URGENCY.index(self.standing)


@dataclass
class Credentials:
    """Every credential of one managed secret rotator can recognise, by fingerprint and by ref."""

    secret: str
    fingerprints: dict[str, Known] = field(default_factory=dict)
    refs: dict[str, Known] = field(default_factory=dict)

    def add(self, known: Known, *, fingerprint: str | None = None, ref: str | None = None) -> None:
        """Record a credential under its fingerprint and/or ref, keeping the more urgent."""
        for table, key in ((self.fingerprints, fingerprint), (self.refs, ref)):
            if not key:
                continue
            before = table.get(key)
            if before is None or known.urgency() < before.urgency():
                table[key] = known

    def match(self, fingerprints: Collection[str], key_ids: Collection[str]) -> Known | None:
        """Return the most urgent credential among those leaked (None if none is this secret's)."""
        found = [self.fingerprints[f] for f in fingerprints if f in self.fingerprints]
        found += [self.refs[k] for k in key_ids if k in self.refs]
        return min(found, key=Known.urgency) if found else None


def _string_fields(value: SecretValue) -> dict[str, str]:
    """Return the string fields of a mapping value (or of a string holding a JSON object)."""
    plain: object = value.reveal()
    if isinstance(plain, str):
        if not plain.lstrip().startswith("{"):
            return {}
        try:
            plain = json.loads(plain)
        except ValueError:
            return {}
    if not isinstance(plain, Mapping):
        return {}
    return {str(k): v for k, v in plain.items() if isinstance(v, str)}


def _revoked_at(rotation: Rotation) -> datetime | None:
    """Return when a rotation's old credential was revoked (or its new one rolled back)."""
    return rotation.revoked_at or rotation.finished_at or rotation.updated_at


def recognise(
    name: str,
    store: Store[Any],
    history: list[Rotation],
    fingerprint: Fingerprint,
) -> Credentials:
    """Return what rotator knows of a secret's credentials: its store now, and its journal.

    Raises whatever the store raises when its current value cannot be read.
    """
    credentials = Credentials(name)
    current = store.current()
    live: str | None = None
    if current is not None:
        live = fingerprint(current.value)
        now = Known(Standing.CURRENT)
        credentials.add(now, fingerprint=live)
        for key, text in _string_fields(current.value).items():
            if key in PUBLIC_FIELDS:
                credentials.add(now, ref=text)
            elif len(text) >= MIN_FIELD_LENGTH:
                credentials.add(now, fingerprint=fingerprint(SecretValue(text)))
    for rotation in history:
        state, rid = rotation.state, rotation.id
        # The credential this rotation replaces (or was to replace).
        old: Known | None
        if state is State.GRACE:
            old = Known(Standing.GRACE, rotation.grace_deadline, rid)
        elif state in (State.REVOKED, State.DONE):
            old = Known(Standing.REVOKED, _revoked_at(rotation), rid)
        elif rotation.old_fingerprint is not None and rotation.old_fingerprint == live:
            old = Known(Standing.CURRENT, None, rid)  # not replaced (yet): still current
        else:
            old = None  # another rotation of this secret says where it stands
        if old is not None:
            credentials.add(old, fingerprint=rotation.old_fingerprint, ref=rotation.old_ref)
        # The credential this rotation minted.
        new: Known
        if state is State.ROLLED_BACK:
            new = Known(Standing.REVOKED, _revoked_at(rotation), rid)
        elif state in BEFORE_PROMOTE or state is State.ROLLING_BACK:
            new = Known(Standing.PENDING, None, rid)
        elif rotation.new_fingerprint is not None and rotation.new_fingerprint == live:
            new = Known(Standing.CURRENT, None, rid)
        else:
            new = Known(Standing.SUPERSEDED, rotation.promoted_at, rid)
        credentials.add(new, fingerprint=rotation.new_fingerprint, ref=rotation.new_ref)
    return credentials


def ephemeral_fingerprint() -> Fingerprint:
    """Return a fingerprint under a key of this process only.

    Used when there is no journal yet: nothing recorded needs comparing,
    and the installation key is not created by a command that only reads.
    """
    key = secrets.token_bytes(32)

    def fingerprint(value: SecretValue) -> str:
        return hmac.new(key, value.text().encode(), hashlib.sha256).hexdigest()[:32]

    return fingerprint
