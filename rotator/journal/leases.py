"""Leases: one rotation of a secret at a time, across replicas and one-shot runs.

This is invariant 4 of docs/design.md.

A lease is a row of ``leases``: an owner, an expiry and a *fencing token*
that grows by one each time the lease changes hands. While a run holds a
lease (:meth:`Leases.holding`), every write it makes for that secret first
updates the lease row on the condition that owner and token are still its
own, in the same transaction (:meth:`Leases.fence`), which also pushes the
expiry out. A run that lost its lease (paused past the expiry, partitioned,
taken over) therefore cannot commit a step afterwards: its write fails with
:class:`LeaseLost` and changes nothing. Rows and tokens rather than
PostgreSQL advisory locks or ``SELECT ... FOR UPDATE`` held for the whole
rotation: a rotation lasts minutes of provider calls, and neither a session
lock nor an open transaction survives the database restarting under it,
while a row does; the same statements also serve SQLite.
"""

from __future__ import annotations

import contextvars
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from rotator.clock import Clock
from rotator.errors import JournalError, JournalTampered, LeaseLost
from rotator.journal.audit import same_seal
from rotator.journal.database import Database
from rotator.journal.records import Lease, lease_seal
from rotator.journal.schema import leases

#: The lease the current thread holds while it works on a secret (see Leases.holding).
_HELD: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("rotator_lease", default=None)

# Built once (each fenced write sends the first): parameters ``held_secret``,
# ``held_owner`` and ``held_token`` name the lease as this run holds it.
_HELD_ROW = (
    leases.c.secret == sa.bindparam("held_secret"),
    leases.c.owner == sa.bindparam("held_owner"),
    leases.c.token == sa.bindparam("held_token"),
)
_UPDATE_HELD = leases.update().where(*_HELD_ROW)
_DELETE_HELD = leases.delete().where(*_HELD_ROW)
_INSERT_LEASE = leases.insert()
_SELECT_LEASE = sa.select(leases).where(leases.c.secret == sa.bindparam("held_secret"))


def lease_owner() -> str:
    """Return a lease owner id: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """The leases of one journal: taken, held (fencing every write), released."""

    def __init__(self, database: Database, clock: Clock) -> None:
        """Keep leases in ``database``, timing them by ``clock``."""
        self.database = database
        self.clock = clock

    def acquire(self, secret: str, owner: str, ttl: timedelta) -> Lease | None:
        """Take the lease on a secret with a new fencing token; None if another live run holds it.

        A lease is taken over when it has expired, or when its owner is a
        process on this host that no longer exists (a crashed one-shot run).
        Taking it (over) always increments the token, so whoever held it
        before can no longer write (see :meth:`holding`).
        """
        now = self.clock()
        try:
            with self.database.write() as conn:
                row = conn.execute(_SELECT_LEASE, {"held_secret": secret}).first()
                if row is None:
                    return self._take(conn, secret, owner, ttl, now)
                self._refuse_forged(secret, row)
                if row.owner != owner and not holder_gone(row.owner, row.expires_at, now):
                    return None
                return self._take_over(conn, secret, row, owner, ttl, now)
        except JournalTampered:
            raise
        except JournalError as exc:
            if isinstance(exc.__context__, IntegrityError):
                return None
            raise

    def _take(
        self, conn: Connection, secret: str, owner: str, ttl: timedelta, now: datetime
    ) -> Lease:
        """Insert the first lease on ``secret`` (token 1)."""
        conn.execute(
            _INSERT_LEASE,
            {
                "secret": secret,
                "owner": owner,
                "acquired_at": now,
                "expires_at": now + ttl,
                "token": 1,
                "seal": lease_seal(self.database.keys.row(), secret, owner, 1, now + ttl),
            },
        )
        return Lease(secret, owner, 1, ttl)

    def _refuse_forged(self, secret: str, row: Any) -> None:
        """Raise JournalTampered when the lease row read for ``secret`` fails its seal."""
        expected = lease_seal(
            self.database.keys.row(), secret, row.owner, row.token, row.expires_at
        )
        if not same_seal(expected, row.seal):
            raise JournalTampered(
                f"the lease on {secret} does not match its seal (its holder or fencing "
                "token was edited outside rotator)",
                secret=secret,
            )

    def _take_over(
        self, conn: Connection, secret: str, row: Any, owner: str, ttl: timedelta, now: datetime
    ) -> Lease | None:
        """Take the lease ``row`` over with the next token; None if another run did first."""
        token = row.token + 1
        # Conditional on the row being as read: of two runs taking over
        # an expired lease at once, the second updates nothing.
        result = conn.execute(
            _UPDATE_HELD,
            {
                "held_secret": secret,
                "held_owner": row.owner,
                "held_token": row.token,
                "owner": owner,
                "acquired_at": now,
                "expires_at": now + ttl,
                "token": token,
                "seal": lease_seal(self.database.keys.row(), secret, owner, token, now + ttl),
            },
        )
        return Lease(secret, owner, token, ttl) if result.rowcount == 1 else None

    @contextmanager
    def holding(self, lease: Lease) -> Iterator[Lease]:
        """Fence this thread's writes for the lease's secret with its token, while inside."""
        reset = _HELD.set(lease)
        try:
            yield lease
        finally:
            _HELD.reset(reset)

    def fence(self, conn: Connection, secret: str) -> None:
        """Check (and extend) the lease this thread holds on ``secret``, inside a write.

        Raises ``LeaseLost`` when owner or token changed: the write is not made.
        """
        lease = _HELD.get()
        if lease is None or lease.secret != secret:
            return
        until = self.clock() + lease.ttl
        result = conn.execute(
            _UPDATE_HELD,
            {
                "held_secret": secret,
                "held_owner": lease.owner,
                "held_token": lease.token,
                "expires_at": until,
                "seal": lease_seal(
                    self.database.keys.row(), secret, lease.owner, lease.token, until
                ),
            },
        )
        if result.rowcount != 1:
            raise LeaseLost(
                f"the lease on {secret} (token {lease.token}) was taken over by another run; "
                "this run stops here and the other one finishes the rotation"
            )

    def release(self, lease: Lease) -> None:
        """Give the lease back (only if it is still this one)."""
        with self.database.write() as conn:
            conn.execute(
                _DELETE_HELD,
                {"held_secret": lease.secret, "held_owner": lease.owner, "held_token": lease.token},
            )


def holder_gone(owner: str, expires_at: datetime, now: datetime) -> bool:
    """Tell whether a lease or quota share holder is gone: expired, or a dead local process."""
    if expires_at <= now:
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    """Tell whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
