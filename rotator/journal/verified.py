"""The journal as last found intact: a sealed digest, so an unchanged journal is not checked again.

Checking the journal before acting (every row against its seal, the chain
since its last verified record: :mod:`rotator.journal.tampering`,
:meth:`rotator.journal.trail.Trail.verify`) costs an HMAC over each row and
record, and grows with the journal's history. Most runs act on nothing
(a one-shot run from cron with nothing due), and find the journal exactly as
the run before left it.

The same holds for the service's watch passes between their full checks
(every 24th, and the first unless the first pass just checked every row);
those full checks, and ``audit verify``, check every row whatever the digest.

So after a check finds everything intact, a digest of the content it
checked is kept in the ``verified`` row, sealed with the row key. The next
check reads the same content again, raw (no HMAC per row, no parsing), and
when its digest is the one sealed, the check's result cannot differ: it is
taken as intact without sealing each row again. Any change (an edit, a
deletion, an insertion, a row rolled back, a step rotator itself recorded)
changes the digest, and the full check runs.

Why it cannot be forged: the seal needs the key, which the database does
not hold; a digest kept with a forged seal, or a journal changed to match
an old digest, is a full check, as before. What the digest covers is every
table the check reads (rotations, events, leases, alerts, the audit records
and their head), in primary-key order. A mark is used only by a check that
would have verified no more of the chain than the one that made it
(``chain_from``: the record the chain was verified from, 0 for the whole
chain), so it never stands in for a stricter check than was made.

A check reads everything it checks, the digest included, in one state of
the journal (:meth:`rotator.journal.journal.Journal.snapshot`): the digest
kept is the digest of what was checked. Read apart, a row edited, put back
while the check read it, and edited again would have matched a digest kept
as found intact. The rows the engine decides on are checked against their
seals as they are read, whatever the digest says.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.clock import Clock
from rotator.errors import JournalTampered
from rotator.journal.audit import same_seal, seal_row
from rotator.journal.database import Database, Snapshot
from rotator.journal.schema import (
    AUDIT_LOCK_KEY,
    alerts,
    audit,
    audit_head,
    events,
    leases,
    rotations,
    verified,
)

#: The tables a check reads, in the order their content is digested.
CHECKED = (rotations, events, leases, alerts, audit, audit_head)
#: Rows fetched per round trip while digesting.
_PAGE = 5000


def _content_query(table: sa.Table) -> str:
    """Return the raw SQL reading every column of ``table`` in a fixed order, by primary key."""
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    # Names from the schema only, never from input.
    return f'SELECT {columns} FROM "{table.name}" ORDER BY {order}'  # noqa: S608


#: The reads of the content digested, built once.
_CONTENT = tuple((table.name, _content_query(table)) for table in CHECKED)
_MARK = sa.select(verified).where(verified.c.id == 1)


@dataclass(frozen=True)
class Mark:
    """A check that found the journal intact: the content's digest, and what was verified."""

    digest: str
    #: The record the chain was verified from (0: the whole chain).
    chain_from: int
    head_seq: int
    head_hash: str
    at: datetime


class VerifiedContent:
    """The sealed digest of one journal's content as last found intact, and its comparison."""

    def __init__(self, database: Database, clock: Clock) -> None:
        """Keep the mark in ``database``'s ``verified`` row."""
        self.database = database
        self.clock = clock
        # Set once the journal is known to have the ``verified`` table (schema only grows).
        self._has_table = False

    def available(self) -> bool:
        """Tell whether the journal has the ``verified`` row's table (migration 8 applied)."""
        if not self._has_table:
            self._has_table = self.database.has_tables("verified")
        return self._has_table

    def digest(self, conn: Connection) -> str:
        """Return the digest of every row a check reads, in the transaction open on ``conn``.

        Raw driver rows, hashed as read: the values are what the database
        holds, unparsed. Each page is written with ``marshal`` (format 2,
        which has no back-references), whose bytes decode to one content
        only; a page holding a value ``marshal`` cannot write (PostgreSQL's
        times) is written with ``repr``, unambiguous for strings, numbers
        and times, and tagged apart (on PostgreSQL every page is). Another
        Python (or rotator) may write the same content otherwise: its digest
        then differs, and the check is a full one, never a wrong one.
        """
        found = hashlib.sha256()
        # PostgreSQL's rows hold times, which marshal cannot write: repr at once.
        sqlite = conn.dialect.name == "sqlite"
        for name, query in _CONTENT:
            found.update(f"\0{name}\0".encode())
            # Through the connection (so inside its transaction), read from
            # the driver's own cursor (no row objects built).
            cursor = conn.exec_driver_sql(query).cursor
            try:
                while rows := cursor.fetchmany(_PAGE):
                    found.update(_page(rows, marshalled=sqlite))
            finally:
                cursor.close()
        return found.hexdigest()

    def read(self, conn: Connection) -> Mark | None:
        """Return the mark on this connection when its seal holds (None: none, or not rotator's)."""
        try:  # first() closes the result whatever happens
            row = conn.execute(_MARK).first()
        except JournalTampered:  # a column holding what rotator never writes: not rotator's
            return None
        if row is None:
            return None
        values = _values(row)
        if not same_seal(seal_row(self.database.keys.row(), "verified", values), row.seal):
            return None
        return Mark(**{k: v for k, v in values.items() if k != "id"})

    def unchanged(self, chain_from: int, on: Snapshot | None = None) -> tuple[Mark | None, str]:
        """Return the mark if the journal is as it was found intact, and the content's digest.

        The mark counts only if it verified the chain from ``chain_from``
        or earlier: a check asked to verify the whole chain is not answered
        by one that verified its end. A journal without the table
        answers (None, ""). Read in ``on`` when given: the state the check
        that follows reads, so that the digest is of what it checks.
        """
        if not self.available():
            return None, ""
        if on is not None:
            return self._unchanged(on.conn, chain_from)
        with self.database.snapshot() as state:  # the digest and the mark from one state
            return self._unchanged(state.conn, chain_from)

    def _unchanged(self, conn: Connection, chain_from: int) -> tuple[Mark | None, str]:
        """Do what :meth:`unchanged` says, on ``conn``."""
        mark = self.read(conn)
        digest = self.digest(conn)
        if mark is None or mark.chain_from > chain_from:
            return None, digest
        return (mark if same_seal(digest, mark.digest) else None), digest

    def keep(self, digest: str, chain_from: int, head: tuple[int, str]) -> None:
        """Seal ``digest`` as content found intact, the chain verified from ``chain_from``.

        ``digest`` must have been read in the state of the journal that
        check read (:meth:`unchanged` with its snapshot): what is kept then
        vouches for exactly what was checked.
        """
        if not digest:
            return
        values: dict[str, Any] = {
            "id": 1,
            "digest": digest,
            "chain_from": chain_from,
            "head_seq": head[0],
            "head_hash": head[1],
            "at": self.clock(),
        }
        seal = seal_row(self.database.keys.row(), "verified", values)
        with self.database.write() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas keeping theirs at once take turns (SQLite's writers already do).
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
            conn.execute(verified.delete())
            conn.execute(verified.insert().values(**values, seal=seal))


def _page(rows: Sequence[Any], *, marshalled: bool) -> bytes:
    """Return the bytes a page of raw rows adds to the digest (:meth:`VerifiedContent.digest`)."""
    if marshalled:
        try:
            return b"m" + marshal.dumps(list(rows), 2)
        except ValueError:  # a value marshal cannot write, such as a datetime
            pass
    return b"r" + repr(rows).encode()


def _values(row: Any) -> dict[str, Any]:
    """Return the sealed columns of the ``verified`` row."""
    return {
        name: getattr(row, name)
        for name in ("id", "digest", "chain_from", "head_seq", "head_hash", "at")
    }
