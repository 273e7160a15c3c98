"""The tampering checks: which journal rows are not as rotator wrote them.

Each rotation, event, lease and alert is checked against its seal; each
rotation and event against the audit record that last wrote it (a row
replaced by an earlier copy of itself, or an event no record names); every
rotation and event the trail names must still be there; and the chain's
last record must be its sealed head. Rows deleted, or found, before the
last acceptance (``rotator audit accept``) are no longer reported.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.journal.audit import AuditRecord, Tampering, same_seal, seal_row
from rotator.journal.database import IN_CHUNK, Database
from rotator.journal.records import (
    alert_intact,
    event_seal,
    head_values,
    lease_seal,
)
from rotator.journal.rows import identity, raw_rows, rotation_seal_check
from rotator.journal.schema import LAST_RECORD, alerts, audit, audit_head, events, leases, rotations


class TamperChecks:
    """The checks of one journal's rows against their seals and the audit trail."""

    def __init__(self, database: Database) -> None:
        """Check the rows of ``database``."""
        self.database = database
        # Set once the journal is known to have sealed rows (schema only grows).
        self._sealed_schema = False

    def find(self, secret: str | None = None) -> tuple[Tampering, ...]:
        """Find the rows (all, or one secret's) that are not as rotator wrote them; () if none.

        The chain's head is checked either way; the audit records' own
        hashes are not (see :meth:`rotator.journal.trail.Trail.verify`).
        """
        if not self._has_sealed_rows():
            return ()  # not upgraded yet: nothing is sealed
        with self.database.snapshot() as state:
            return self.find_in(state.conn, secret)

    def find_if_sealed(self, conn: Connection, secret: str | None) -> tuple[Tampering, ...]:
        """Find what :meth:`find` finds, on ``conn`` (a :meth:`Database.snapshot`'s)."""
        return self.find_in(conn, secret) if self._has_sealed_rows() else ()

    def _has_sealed_rows(self) -> bool:
        """Tell whether the journal is at the schema that seals rows (remembered once true)."""
        if not self._sealed_schema:
            self._sealed_schema = self.database.has_tables("audit", "audit_head")
        return self._sealed_schema

    def find_in(self, conn: Connection, secret: str | None) -> tuple[Tampering, ...]:
        """Find, on this connection (one snapshot), the rows not as rotator wrote them."""
        keys = self.database.keys
        key, chain = keys.row(), keys.chain()
        found: list[Tampering] = []
        last = conn.execute(LAST_RECORD).first()
        head = conn.execute(_HEAD).first()
        problem = head_problem(key, head, last.seq if last else 0, last.hash if last else None)
        if problem is not None:
            found.append(Tampering(None, f"the audit trail: {problem}"))
        # The head's watermarks count when its seal holds, even if the chain
        # no longer reaches it (that is reported above).
        sealed = head is not None and head_sealed(key, head)
        accepted = head.accepted if head is not None and sealed else 0
        since = head.events_from if head is not None and sealed else 0
        found += _rotation_tampering(conn, key, chain, secret, accepted)
        found += _event_tampering(conn, key, secret, accepted, since)
        found += _alert_tampering(conn, key, secret)
        found += _lease_tampering(conn, key, secret)
        return tuple(found)


def head_problem(key: bytes, row: Any, end: int, end_hash: str | None = None) -> str | None:
    """Say how the sealed head ``row`` disagrees with the chain's last record (None: agrees).

    ``key`` is the row key, ``end`` the last record's number (0 for an empty
    chain), and ``end_hash`` its hash when it was read. Every write happens
    after ``migrate``, which made the row.
    """
    if row is None:
        return "its sealed head is gone (deleted outside rotator)"
    if not head_sealed(key, row):
        return "its head does not match its seal (edited outside rotator)"
    if row.seq > end:
        what = "emptied" if end == 0 else f"cut after record {end}"
        return f"it ends before its sealed head (record {row.seq}): {what}"
    if row.seq < end or end_hash not in (None, row.hash):
        return (
            f"its last record ({end}) is not its sealed head (record {row.seq}): "
            "records were added or replaced outside rotator"
        )
    return None


def head_sealed(key: bytes, row: Any) -> bool:
    """Tell whether the trail's head row is as rotator wrote it (``key``: the row key)."""
    values = head_values(row)
    if _LastSealed.head == _sealed_as(key, values, row.seal):
        # The very head this process sealed last: its seal is the one computed then.
        return True
    expected = seal_row(key, "audit_head", values)
    return same_seal(expected, row.seal)


def seal_head(key: bytes, values: dict[str, Any]) -> str:
    """Return the seal of the head ``values`` (what ``head_sealed`` checks), and remember it.

    Every append reads the head the previous one wrote and checks its seal;
    remembering the last seal made spares computing it again, and only a row
    equal to it in every sealed value, their types and its seal is spared.
    """
    seal = seal_row(key, "audit_head", values)
    _LastSealed.head = _sealed_as(key, values, seal)
    return seal


def _sealed_as(key: bytes, values: dict[str, Any], seal: str) -> tuple[Any, ...]:
    """What identifies a head and its seal: key, each value with its name and type, the seal."""
    return (key, *((name, type(v), v) for name, v in values.items()), seal)


class _LastSealed:
    """The head this process sealed last (see seal_head), as ``_sealed_as`` gives it."""

    head: tuple[Any, ...] | None = None


def bound_records(conn: Connection, secret: str | None) -> dict[str, AuditRecord]:
    """Return, by rotation id, the last audit record that wrote each rotation's row.

    The records' own hashes are checked by the caller: a record that fails
    cannot vouch for a row.
    """
    rows = conn.execute(*_only(_BOUND_RECORDS, secret)).all()
    records = (AuditRecord(**row._asdict()) for row in rows)
    return {r.rotation_id: r for r in records if r.rotation_id is not None}


#: A read of every secret's rows, and the same limited to one (parameter ``secret``).
_Both = tuple[sa.Select[Any], sa.Select[Any]]


def _both(query: sa.Select[Any], column: sa.ColumnElement[Any]) -> _Both:
    """Return ``query`` as is and limited to the secret named by the parameter ``secret``."""
    return query, query.where(column == sa.bindparam("secret"))


def _only(queries: _Both, secret: str | None, **params: Any) -> tuple[Any, dict[str, Any]]:
    """Return the statement of ``queries`` for all secrets or ``secret``, with its parameters."""
    if secret is None:
        return queries[0], params
    return queries[1], {**params, "secret": secret}


# The reads of every check, built once (they run before each step of each rotation).
_HEAD = sa.select(audit_head).where(audit_head.c.id == 1)
#: The last record that wrote each rotation's row (its number).
_LAST_WRITERS = _both(
    sa.select(sa.func.max(audit.c.seq).label("seq"))
    .where(audit.c.row_seal.is_not(None))
    .group_by(audit.c.rotation_id),
    audit.c.secret,
)


def _records_of(latest: sa.Select[Any]) -> sa.Select[Any]:
    """Return the read of the audit records whose numbers ``latest`` selects."""
    return sa.select(audit).where(audit.c.seq.in_(sa.select(latest.subquery().c.seq)))


_BOUND_RECORDS: _Both = (_records_of(_LAST_WRITERS[0]), _records_of(_LAST_WRITERS[1]))
_ROTATIONS = _both(sa.select(rotations), rotations.c.secret)
#: Rotations named after the last acceptance (parameter ``accepted``).
_NAMED_ROTATIONS = _both(
    sa.select(audit.c.rotation_id, audit.c.secret)
    .where(audit.c.rotation_id.is_not(None), audit.c.seq > sa.bindparam("accepted"))
    .distinct(),
    audit.c.secret,
)
_EVENTS = _both(sa.select(events), events.c.secret)
_EVENT_RECORDS = _both(
    sa.select(audit.c.seq, audit.c.secret, audit.c.event_id, audit.c.event_seal).where(
        audit.c.event_id.is_not(None)
    ),
    audit.c.secret,
)
_ALERTS = _both(sa.select(alerts), alerts.c.secret)
_LEASES = _both(sa.select(leases), leases.c.secret)


def _rotation_tampering(
    conn: Connection, key: bytes, chain: bytes, secret: str | None, accepted: int
) -> list[Tampering]:
    """Rotations edited (seal or binding), deleted (named by the trail, gone) or inserted."""
    found: list[Tampering] = []
    bound = bound_records(conn, secret)
    present: set[str] = set()
    # The driver's own rows, each checked against its seal without building a
    # Rotation (the check reads every row: at 100,000, most of its cost).
    sealed = rotation_seal_check(conn.dialect, key)
    with closing(raw_rows(conn, *_only(_ROTATIONS, secret))) as rows:
        for row in rows:
            rotation_id, row_secret, seal = identity(row)
            present.add(rotation_id)
            where = f"rotation {rotation_id} of {row_secret}"  # bytes (SQLite) as their repr
            record = bound.get(rotation_id)
            if not sealed(row):
                found.append(Tampering(row_secret, f"{where} does not match its seal: edited"))
            elif record is not None and not same_seal(record.seal(chain), record.hash):
                found.append(
                    Tampering(
                        row_secret,
                        f"audit record {record.seq}, which last wrote {where}, does not match "
                        "its hash: edited, so it vouches for nothing",
                    )
                )
            elif record is not None and record.row_seal != seal:
                found.append(
                    Tampering(
                        row_secret,
                        f"{where} is not as audit record {record.seq} left it: "
                        "replaced by an earlier copy of itself",
                    )
                )
    return found + _rotations_deleted(conn, present, secret, accepted)


def _rotations_deleted(
    conn: Connection, present: set[str], secret: str | None, accepted: int
) -> list[Tampering]:
    """Rotations the trail names after the last acceptance that are no longer in the journal."""
    # Named after the last acceptance: rotations deleted before it were accepted gone.
    named = conn.execute(*_only(_NAMED_ROTATIONS, secret, accepted=accepted)).all()
    return [
        Tampering(
            row.secret,
            f"rotation {row.rotation_id} of {row.secret} is in the audit trail but not "
            "in the journal: deleted",
        )
        for row in named
        if row.rotation_id not in present
    ]


def _event_tampering(
    conn: Connection, key: bytes, secret: str | None, accepted: int, since: int
) -> list[Tampering]:
    """Events edited or inserted (seal, or named by no record), or deleted (named, gone).

    Events up to ``since`` were sealed as found (the upgrade, an acceptance):
    no audit record names them, and none need.
    """
    found: list[Tampering] = []
    seals: dict[int, tuple[str | None, str]] = {}
    for row in conn.execute(*_only(_EVENTS, secret)):
        if not same_seal(event_seal(key, row), row.seal):
            found.append(
                Tampering(row.secret, f"event {row.id} of {row.secret} does not match its seal")
            )
        seals[row.id] = (row.seal, row.secret)
    # One read of the records naming this secret's events serves both checks:
    # those after the last acceptance must name an event as it is, and every
    # event must be named by some record.
    named: set[int] = set()
    for row in conn.execute(*_only(_EVENT_RECORDS, secret)):
        named.add(row.event_id)
        if row.seq <= accepted:
            continue
        seal, _ = seals.get(row.event_id, (None, None))
        if row.event_id not in seals:
            found.append(
                Tampering(
                    row.secret,
                    f"event {row.event_id} of {row.secret} (audit record {row.seq}) is gone: "
                    "deleted",
                )
            )
        elif seal != row.event_seal:
            found.append(
                Tampering(
                    row.secret,
                    f"event {row.event_id} of {row.secret} is not the one audit record "
                    f"{row.seq} wrote",
                )
            )
    # An event named only by a record of another secret is still named: look
    # for those few among all the records (rotator names an event only in a
    # record of its own secret, so this is rarely asked).
    unnamed = sorted(i for i in seals if i > since and i not in named)
    for start in range(0, len(unnamed), IN_CHUNK):
        chunk = unnamed[start : start + IN_CHUNK]
        named.update(
            conn.scalars(sa.select(audit.c.event_id).where(audit.c.event_id.in_(chunk)).distinct())
        )
    found += [
        Tampering(
            event_secret, f"event {event_id} of {event_secret} is in no audit record: inserted"
        )
        for event_id, (_, event_secret) in seals.items()
        if event_id > since and event_id not in named
    ]
    return found


def _alert_tampering(conn: Connection, key: bytes, secret: str | None) -> list[Tampering]:
    """Alerts marked sent, or raised, by someone other than rotator (sent again regardless)."""
    return [
        Tampering(
            row.secret or None,
            f"the {row.event} alert of {row.secret or 'the journal'} to {row.notifier} does not "
            "match its seal (marked sent or raised outside rotator; it is sent again)",
        )
        for row in conn.execute(*_only(_ALERTS, secret))
        if not alert_intact(key, row)
    ]


def _lease_tampering(conn: Connection, key: bytes, secret: str | None) -> list[Tampering]:
    """Leases whose holder or fencing token was edited."""
    return [
        Tampering(row.secret, f"the lease on {row.secret} does not match its seal")
        for row in conn.execute(*_only(_LEASES, secret))
        if not same_seal(
            lease_seal(key, row.secret, row.owner, row.token, row.expires_at), row.seal
        )
    ]
