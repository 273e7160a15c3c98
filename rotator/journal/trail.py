"""The audit trail as the journal keeps it: appended under its head, read, verified, accepted.

The records, their chain and exports are :mod:`rotator.journal.audit`; this
is where they are stored. Each append happens inside the write that made
the change it records, and moves the ``audit_head`` row (sealed) to the new
record in the same transaction: a chain emptied or cut at its end no longer
reaches its head, and nothing more is appended to it until a person has
looked (``rotator audit verify``, then ``rotator audit accept``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.clock import Clock
from rotator.errors import JournalTampered
from rotator.journal.audit import (
    FIELDS,
    AuditAction,
    AuditRecord,
    ChainReport,
    Tampering,
    same_seal,
    seal_row,
    verify_chain,
)
from rotator.journal.database import Database, Snapshot
from rotator.journal.records import head_values
from rotator.journal.rows import raw_rows, rotation_decoder
from rotator.journal.schema import (
    AUDIT_LOCK_KEY,
    audit,
    audit_head,
    head_at_end,
    rotations,
    seal_rows,
)
from rotator.journal.tampering import TamperChecks, bound_records, head_problem, seal_head

#: Audit records read per query when streaming the chain.
_AUDIT_PAGE = 5000
#: The ``audit`` columns in :class:`AuditRecord`'s field order.
_RECORD_COLUMNS = tuple(audit.c[name] for name in FIELDS)
#: The sealed head and the number of the chain's last record, in one read.
_HEAD_AND_END = sa.select(
    audit_head.c.seq,
    audit_head.c.hash,
    audit_head.c.accepted,
    audit_head.c.events_from,
    audit_head.c.seal,
    sa.select(sa.func.max(audit.c.seq)).scalar_subquery().label("end"),
).where(audit_head.c.id == 1)
#: Moves the head to the record just appended (parameters: seq, hash, seal).
_MOVE_HEAD = audit_head.update().where(audit_head.c.id == 1)
_INSERT_RECORD = audit.insert()


class Trail:
    """One journal's audit trail: records appended, noted, read back, verified and accepted."""

    def __init__(
        self, database: Database, clock: Clock, actor: str, tampering: TamperChecks
    ) -> None:
        """Keep the trail in ``database``, naming ``actor`` as who acted in each record."""
        self.database = database
        self.clock = clock
        #: Who the audit records name as having acted (``service``, ``operator:NAME``...).
        self.actor = actor
        self.tampering = tampering

    def exists(self) -> bool:
        """Tell whether the journal exists and has the audit chain (schema 4 or later)."""
        return self.database.has_tables("audit")

    def append(self, conn: Connection, record: AuditRecord) -> AuditRecord:
        """Link ``record`` after the chain's head and insert it, inside the caller's write."""
        if conn.dialect.name == "postgresql":
            # Writers on every replica take turns at the head; SQLite's
            # BEGIN IMMEDIATE already serialises all writers.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
        # One read for both: the sealed head, and the last record's number.
        row = conn.execute(_HEAD_AND_END).first()
        key = self.database.keys.row()
        problem = head_problem(key, row, row.end or 0 if row is not None else 0)
        if problem is not None or row is None:
            # Appending would hide the cut (or bless a forged head): refuse.
            raise JournalTampered(f"audit trail: {problem}; run `rotator audit verify`")
        seq = row.seq + 1
        sealed = record.linked(seq, row.hash, self.database.keys.chain())
        conn.execute(_INSERT_RECORD, sealed.columns())
        head = head_values(row, seq=seq, hash=sealed.hash)
        conn.execute(_MOVE_HEAD, {**head, "seal": seal_head(key, head)})
        self.database.ship_on_commit(sealed)
        return sealed

    def note(
        self,
        action: AuditAction,
        outcome: str,
        detail: str,
        *,
        secret: str | None = None,
        rotation_id: str | None = None,
        reason: str | None = None,
        refs: tuple[str | None, str | None] = (None, None),
    ) -> AuditRecord:
        """Append an audit record of something learnt outside a rotation's steps."""
        record = AuditRecord(
            seq=0,
            at=self.clock(),
            actor=self.actor,
            action=action.value,
            outcome=outcome,
            secret=secret,
            rotation_id=rotation_id,
            reason=reason,
            detail=detail,
            old_ref=refs[0],
            new_ref=refs[1],
        )
        with self.database.write() as conn:
            return self.append(conn, record)

    def holds(self, seq: int, digest: str, *, on: Snapshot) -> bool:
        """Tell whether the chain (in ``on``) holds record ``seq`` with the hash ``digest``."""
        found = on.conn.execute(sa.select(audit.c.hash).where(audit.c.seq == seq)).scalar()
        return same_seal(digest, found)

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        secret: str | None = None,
        after: int = 0,
        on: Snapshot | None = None,
    ) -> Iterator[AuditRecord]:
        """Yield audit records in chain order, read a page at a time (filters optional).

        Each page is read in ``on`` when given, else in a read of its own.
        """
        while True:
            # The columns in the record's field order: each row is built positionally.
            query = sa.select(*_RECORD_COLUMNS).where(audit.c.seq > after)
            if since is not None:
                query = query.where(audit.c.at >= since)
            if until is not None:
                query = query.where(audit.c.at < until)
            if secret is not None:
                query = query.where(audit.c.secret == secret)
            page = query.order_by(audit.c.seq).limit(_AUDIT_PAGE)
            if on is not None:
                rows = on.conn.execute(page).all()
            else:
                with self.database.read() as conn:
                    rows = conn.execute(page).all()
            for row in rows:
                yield AuditRecord(*row)
            if len(rows) < _AUDIT_PAGE:
                return
            after = rows[-1].seq

    def verify(
        self,
        *,
        anchor: tuple[int, str] | None = None,
        start: tuple[int, str] | None = None,
        on: Snapshot | None = None,
    ) -> ChainReport:
        """Check the chain (whole, or from ``start``, a record verified before) and every row.

        The rows are always checked whole: each rotation, event and lease
        against its seal, each rotation and event against the audit record
        that last wrote it, every rotation the trail names still there, and
        the chain's last record against its sealed head. All of it in one
        state of the journal: ``on``, or one of its own.
        """
        if on is None:
            with self.database.snapshot() as state:
                return self.verify(anchor=anchor, start=start, on=state)
        try:
            records = self.records(after=start[0] if start else 0, on=on)
            chain = verify_chain(records, self.database.keys.chain(), anchor=anchor, start=start)
            found = self.tampering.find_if_sealed(on.conn, None)
        except JournalTampered as exc:
            return _unreadable(exc)
        return replace(chain, tampering=found, whole=start is None)

    def accept(
        self, reason: str, expected: tuple[Tampering, ...] | None = None
    ) -> tuple[Tampering, ...]:
        """Take the journal as it is now, after a person checked it; return what was accepted.

        Rows failing their seal are sealed again, each affected rotation is
        bound anew by a ``tampering-accepted`` record, the head moves to the
        chain's end, and rows deleted before now are no longer reported. The
        records themselves are not rewritten: an edited or missing record
        stays visible to ``audit verify``. ``expected`` is what the person
        was shown: when the journal no longer fails in exactly those ways,
        nothing is accepted (JournalTampered), so nothing unseen is blessed.
        """
        if not self.tampering.find():
            return ()
        key = self.database.keys.row()
        with self.database.write() as conn:
            if conn.dialect.name == "postgresql":  # no replica appends meanwhile
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
            # Under the write lock now: what is found here is what is accepted.
            found = self.tampering.find_in(conn, None)
            if expected is not None and set(found) != set(expected):
                raise JournalTampered(
                    "the journal changed since its findings were shown; nothing was accepted: "
                    "run `rotator audit accept` again"
                )
            _readable_as_found(conn)
            head = head_at_end(conn)
            conn.execute(audit_head.delete())
            seal = seal_row(key, "audit_head", head)
            conn.execute(audit_head.insert().values(id=1, **head, seal=seal))
            seal_rows(conn, key)
            self._bind_rotations_anew(conn, reason)
            summary = "; ".join(t.what for t in found)
            accepted = self._accepted(
                conn, reason, f"{len(found)} finding(s) accepted: {summary}"[:4000]
            )
            moved = head_values(head, seq=accepted.seq, hash=accepted.hash, accepted=accepted.seq)
            conn.execute(_MOVE_HEAD, {**moved, "seal": seal_row(key, "audit_head", moved)})
        return found

    def _bind_rotations_anew(self, conn: Connection, reason: str) -> None:
        """Append a ``tampering-accepted`` record for each rotation no sound record vouches for."""
        bound = bound_records(conn, None)
        chain = self.database.keys.chain()
        for row in conn.execute(sa.select(rotations)).all():
            record = bound.get(row.id)
            vouches = record is not None and same_seal(record.seal(chain), record.hash)
            if record is None or not vouches or record.row_seal != row.seal:
                self._accepted(
                    conn,
                    reason,
                    f"row taken as found: state {row.state}",
                    secret=row.secret,
                    rotation_id=row.id,
                    row_seal=row.seal,
                )

    def _accepted(self, conn: Connection, reason: str, detail: str, **about: Any) -> AuditRecord:
        """Append a ``tampering-accepted`` record, inside the acceptance's write."""
        record = AuditRecord(
            seq=0,
            at=self.clock(),
            actor=self.actor,
            action=AuditAction.TAMPERING_ACCEPTED.value,
            outcome="ok",
            reason=reason,
            detail=detail,
            **about,
        )
        return self.append(conn, record)

    def accepted_through(self, *, on: Snapshot) -> int:
        """Return the record by which a person last accepted the journal (0: never), in ``on``."""
        if not sa.inspect(on.conn).has_table("audit_head"):
            return 0
        query = sa.select(audit_head.c.accepted).where(audit_head.c.id == 1)
        try:
            return int(on.conn.scalar(query) or 0)
        except JournalTampered:  # not a number: no acceptance is taken from it (the head fails)
            return 0


def _unreadable(exc: JournalTampered) -> ChainReport:
    """Report a journal holding what rotator never writes (text for a time or a number).

    As the journal's, not a row's: the row could not even be read, and what
    follows it was not checked.
    """
    return ChainReport(0, None, None, tampering=(Tampering(None, str(exc)),))


def _readable_as_found(conn: Connection) -> None:
    """Refuse to accept a journal with a rotation rotator cannot read: nothing is accepted.

    Sealed as found, a state rotator has not (or a time that is no time)
    would stop every read of the secret for good; the person puts back a
    value rotator writes first (`rotator audit verify` names the rotation).
    """
    decode = rotation_decoder(conn.dialect, None)
    with closing(raw_rows(conn, sa.select(rotations))) as rows:
        for row in rows:
            try:
                decode(row)
            except JournalTampered as exc:
                raise JournalTampered(
                    f"{exc}; nothing was accepted: a row is taken as found only when rotator "
                    "can read it, so put back a value rotator writes first",
                    secret=exc.secret,
                ) from None
