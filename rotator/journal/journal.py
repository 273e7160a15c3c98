"""The journal: every rotation's progress, durable, on SQLite or PostgreSQL.

SQLAlchemy 2 Core only (no ORM), so the same statements run on SQLite (WAL,
the embedded default) and PostgreSQL. The schema is versioned: each entry of
``MIGRATIONS`` runs once, in order, inside a transaction, and is recorded in
``schema_migrations``.

The journal never holds a secret value. It holds version ids, issuer refs
(an access key id, an API key id: identifiers, not secrets) and keyed
fingerprints: HMAC-SHA256 under a per-installation key kept beside the
database file with mode 0600, so a fingerprint cannot be brute-forced from
the database alone.

Leases (invariant 4 of docs/design.md: one rotation of a secret at a time, across replicas
and one-shot runs) are rows of ``leases``: an owner, an expiry and a
*fencing token* that grows by one each time the lease changes hands. While
a run holds a lease (:meth:`Journal.holding`), every write it makes for that
secret first updates the lease row on the condition that owner and token
are still its own, in the same transaction, which also pushes the expiry
out. A run that lost its lease (paused past the expiry, partitioned, taken
over) therefore cannot commit a step afterwards: its write fails with
:class:`LeaseLost` and changes nothing. Rows and tokens rather than
PostgreSQL advisory locks or ``SELECT ... FOR UPDATE`` held for the whole
rotation: a rotation lasts minutes of provider calls, and neither a session
lock nor an open transaction survives the database restarting under it,
while a row does; the same statements also serve SQLite.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import json
import os
import secrets
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError

from rotator.adapters.secret import SecretValue
from rotator.clock import Clock
from rotator.errors import JournalError, JournalTampered, JournalUnavailable, LeaseLost
from rotator.journal.audit import (
    GENESIS,
    AuditAction,
    AuditRecord,
    ChainReport,
    Tampering,
    chain_key,
    row_key,
    seal_row,
    verify_chain,
)
from rotator.lifecycle import BLOCKING, TERMINAL, State, check
from rotator.output import redact

#: Secret names per ``IN (...)`` list (SQLite allows 32,766 parameters; keep well under).
_IN_CHUNK = 500


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the journal")
        value = value.astimezone(UTC)
        # SQLite has no time zone type: keep a naive UTC value there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

rotations = sa.Table(
    "rotations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("secret", sa.String(128), nullable=False, index=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("emergency", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("promoted_at", UTCDateTime),
    sa.Column("grace_deadline", UTCDateTime),
    sa.Column("delete_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("old_version_id", sa.String(128)),
    sa.Column("old_ref", sa.String(256)),
    sa.Column("old_fingerprint", sa.String(64)),
    sa.Column("new_version_id", sa.String(128)),
    sa.Column("new_ref", sa.String(256)),
    sa.Column("new_fingerprint", sa.String(64)),
    sa.Column("known_refs", sa.Text),
    sa.Column("checked_at", UTCDateTime),
    sa.Column("extensions", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    # Added by migration 2 (see _policy_digest_and_change_index).
    sa.Column("policy_digest", sa.String(64)),
    # Added by migration 4: when the old credential was revoked.
    sa.Column("revoked_at", UTCDateTime),
    # Added by migration 5: HMAC of the row under the journal key (see _seal).
    sa.Column("seal", sa.String(64)),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rotation_id", sa.String(64), sa.ForeignKey("rotations.id"), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("state_from", sa.String(32)),
    sa.Column("state_to", sa.String(32)),
    sa.Column("detail", sa.Text),
    # Added by migration 5.
    sa.Column("seal", sa.String(64)),
    sa.Index("ix_events_rotation", "rotation_id", "id"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("secret", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    # Added by migration 3: the fencing token.
    sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
    # Added by migration 5: HMAC of (secret, owner, token), so a token cannot be forged.
    sa.Column("seal", sa.String(64)),
)


audit = sa.Table(
    "audit",
    metadata,
    # Assigned as the previous record's plus one, never by the database, so
    # that a gap means a deleted record.
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("secret", sa.String(128)),
    sa.Column("rotation_id", sa.String(64)),
    sa.Column("step", sa.String(32)),
    sa.Column("reason", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("old_ref", sa.String(256)),
    sa.Column("new_ref", sa.String(256)),
    sa.Column("old_fingerprint", sa.String(64)),
    sa.Column("new_fingerprint", sa.String(64)),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # Added by migration 5: the rows this record was written with (AuditRecord.BINDINGS).
    sa.Column("row_seal", sa.String(64)),
    sa.Column("event_id", sa.Integer),
    sa.Column("event_seal", sa.String(64)),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_rotation", "rotation_id", "seq"),
    sa.Index("ix_audit_secret", "secret"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    # One row (id 1): the chain's last record, sealed with the journal key and
    # moved in the same transaction as each append. A chain emptied or cut at
    # its end no longer reaches the head; a head deleted or edited is missed
    # or fails its seal (added by migration 5).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The record by which a person accepted the journal as found (``audit
    # accept``): rows deleted before it are no longer reported.
    sa.Column("accepted", sa.BigInteger, nullable=False, server_default="0"),
    # The last event row sealed as found (at the upgrade, or an acceptance):
    # every later event must be named by an audit record.
    sa.Column("events_from", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("seal", sa.String(64), nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    # The outbox and memory of alerts: one row per secret (empty for alerts
    # about no secret), event and notifier, holding the condition last
    # raised. The same condition is not sent again until it changes or is
    # cleared; a row not yet delivered (sent_at NULL) is retried.
    sa.Column("secret", sa.String(128), primary_key=True),
    sa.Column("event", sa.String(32), primary_key=True),
    sa.Column("notifier", sa.String(64), primary_key=True),
    sa.Column("condition", sa.String(256), nullable=False),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    # The alert itself, as JSON (never a secret value), to send it again.
    sa.Column("payload", sa.Text, nullable=False),
    # Added by migration 5: HMAC of the condition and whether it was sent, so
    # an alert cannot be silenced by marking it sent or pre-raising it.
    sa.Column("seal", sa.String(64)),
)

usage = sa.Table(
    "usage",
    metadata,
    # When an issuer last saw each credential used, as last checked.
    sa.Column("secret", sa.String(128), primary_key=True),
    sa.Column("ref", sa.String(256), primary_key=True),
    sa.Column("last_used", UTCDateTime),
    sa.Column("checked_at", UTCDateTime, nullable=False),
)


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        for table in tables:
            table.create(conn)

    return run


def _policy_digest_and_change_index(conn: Connection) -> None:
    """Add ``rotations.policy_digest`` and an index on ``rotations.updated_at``.

    A journal created by this version got the column from migration 1 (which
    creates the table as defined now), so it is added only where missing.
    The index lets the service ask cheaply which secrets changed since its
    last look (another process may have rotated them).
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns("rotations")}
    if "policy_digest" not in columns:
        conn.execute(sa.text("ALTER TABLE rotations ADD COLUMN policy_digest VARCHAR(64)"))
    conn.execute(
        sa.text("CREATE INDEX IF NOT EXISTS ix_rotations_updated_at ON rotations (updated_at)")
    )


def _fencing_token(conn: Connection) -> None:
    """Add ``leases.token`` where migration 1 created the table without it."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("leases")}
    if "token" not in columns:
        conn.execute(sa.text("ALTER TABLE leases ADD COLUMN token BIGINT NOT NULL DEFAULT 0"))


def _watching(conn: Connection) -> None:
    """Add the audit chain, the alerts table, the usage table and ``rotations.revoked_at``."""
    for table in (audit, alerts, usage):
        table.create(conn, checkfirst=True)
    columns = {c["name"] for c in sa.inspect(conn).get_columns("rotations")}
    if "revoked_at" not in columns:
        kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        conn.execute(sa.text(f"ALTER TABLE rotations ADD COLUMN revoked_at {kind}"))


def _row_seals(conn: Connection) -> None:
    """Add the seal columns, the audit bindings, their indexes and the chain's head table.

    The rows already there are sealed by ``Journal.migrate`` in the same
    transaction (sealing needs the key, which migrations do not hold).
    """
    inspector = sa.inspect(conn)
    added = {
        "rotations": ("seal VARCHAR(64)",),
        "events": ("seal VARCHAR(64)",),
        "leases": ("seal VARCHAR(64)",),
        "alerts": ("seal VARCHAR(64)",),
        "audit": ("row_seal VARCHAR(64)", "event_id INTEGER", "event_seal VARCHAR(64)"),
    }
    for table, columns in added.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.split()[0] not in present:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column}"))
    for index in ("ix_audit_rotation", "ix_audit_secret"):
        found = next(i for i in audit.indexes if i.name == index)
        found.create(conn, checkfirst=True)
    audit_head.create(conn, checkfirst=True)


#: Versioned schema migrations, applied in order. Never edit a released
#: entry: add a new one that alters the schema.
MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "rotations, events and leases", _create(rotations, events, leases)),
    (2, "rotations.policy_digest; index on updated_at", _policy_digest_and_change_index),
    (3, "leases.token (fencing)", _fencing_token),
    (4, "audit chain, alerts, credential usage, rotations.revoked_at", _watching),
    (5, "row seals, audit bindings and the chain's head", _row_seals),
)
#: The migration after which every row is sealed (its rows are sealed as found).
_SEALED_FROM = 5
#: The sealed head and the number of the chain's last record, in one read.
_HEAD_AND_END = sa.select(
    audit_head.c.seq,
    audit_head.c.hash,
    audit_head.c.accepted,
    audit_head.c.events_from,
    audit_head.c.seal,
    sa.select(sa.func.max(audit.c.seq)).scalar_subquery().label("end"),
).where(audit_head.c.id == 1)
#: The chain's last record (seq, hash).
_LAST_RECORD = sa.select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
#: Moves the head to the record just appended (parameters: seq, hash, seal).
_MOVE_HEAD = audit_head.update().where(audit_head.c.id == 1)
SCHEMA_VERSION = MIGRATIONS[-1][0]
#: PostgreSQL advisory lock key that serialises migrations ("rotator" in ASCII).
_LOCK_KEY = 0x726F7461746F72
#: PostgreSQL advisory lock key that serialises appends to the audit chain.
_AUDIT_LOCK_KEY = _LOCK_KEY + 1
#: Audit records read per query when streaming the chain.
_AUDIT_PAGE = 5000

#: The audit action of a state change, by (from, to).
_TRANSITION_ACTIONS: dict[tuple[State, State], AuditAction] = {
    (State.PLANNED, State.MINTED): AuditAction.MINTED,
    (State.MINTED, State.MINTED): AuditAction.MINTED,
    (State.MINTED, State.PENDING): AuditAction.STORED_PENDING,
    (State.PENDING, State.PROPAGATED): AuditAction.PROPAGATED,
    (State.PROPAGATED, State.VERIFIED): AuditAction.VERIFIED,
    (State.VERIFIED, State.GRACE): AuditAction.PROMOTED,
    (State.ROLLING_BACK, State.GRACE): AuditAction.PROMOTED,
    (State.GRACE, State.REVOKED): AuditAction.REVOKED,
    (State.REVOKED, State.DONE): AuditAction.DELETED,
    (State.ROLLING_BACK, State.ROLLED_BACK): AuditAction.ROLLED_BACK,
}
_TRIGGER_ACTIONS = {
    "schedule": AuditAction.SCHEDULED,
    "manual": AuditAction.MANUAL,
    "emergency": AuditAction.EMERGENCY,
}


def _audit_action(
    trigger: str, step: str, outcome: str, src: State | None, dst: State | None
) -> str:
    """Name what an event did, in the audit trail's words."""
    if src is None:
        return _TRIGGER_ACTIONS.get(trigger, AuditAction.MANUAL).value
    if outcome == "info":
        return AuditAction.INVENTORY.value
    if outcome != "ok":
        return AuditAction.STEP.value
    if dst is State.ROLLING_BACK:
        return AuditAction.ROLLBACK_STARTED.value
    if src is dst is State.GRACE:
        return AuditAction.GRACE_EXTENDED.value
    if src is dst and step == "propagate":
        return AuditAction.PROPAGATED_TO_TARGET.value
    found = _TRANSITION_ACTIONS.get((src, dst)) if dst is not None else None
    return found.value if found is not None else AuditAction.STEP.value


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


#: The lease the current thread holds while it works on a secret (see Journal.holding).
_HELD: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("rotator_lease", default=None)


@dataclass(frozen=True)
class SecretSummary:
    """What the journal knows about one secret, for plan and status."""

    last_success: datetime | None = None
    last_rotation: Rotation | None = None
    open: list[Rotation] = field(default_factory=list)
    #: Rotations rolled back since the last success (the failure streak).
    failures_in_a_row: int = 0


#: Rotation fields that are columns of ``rotations`` (``seal`` and ``intact`` are not sealed).
_ROTATION_FIELDS = {f.name for f in fields(Rotation)} - {"seal", "intact"}


def _enable_wal(cursor: Any, attempts: int = 200, pause: float = 0.05) -> None:
    """Switch a SQLite database to WAL, waiting out another process doing the same.

    WAL is persistent, so this matters only for a new file. Switching needs
    an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, when another connection holds a lock it might
    be waiting on (two one-shot runs creating the same journal together).
    """
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(pause)


def _row_to_rotation(row: sa.Row[Any], key: bytes | None) -> Rotation:
    """Turn a ``rotations`` row into a Rotation, checking its seal when the key is at hand."""
    # _asdict, not _mapping.items(): the latter rebuilds the key view per row,
    # which was most of the cost of reading 100,000 summaries.
    data = {k: v for k, v in row._asdict().items() if k in _ROTATION_FIELDS}
    seal = row.seal
    intact = key is None or (
        seal is not None and hmac.compare_digest(seal_row(key, "rotations", data), seal)
    )
    data["state"] = State(data["state"])
    known = data.get("known_refs")
    data["known_refs"] = None if known is None else tuple(json.loads(known))
    return Rotation(**data, seal=seal, intact=intact)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_owner() -> str:
    """Return a lease owner id: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Journal:
    """The durable record of rotations, steps and leases."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        *,
        key_file: str | Path | None = None,
        actor: str = "rotator",
        sink: Callable[[AuditRecord], None] | None = None,
    ) -> None:
        self.url = url
        # Its password is rotator's own credential: masked wherever it is echoed.
        redact.register_url(url)
        self.clock = clock
        #: Who the audit records name as having acted (``service``, ``operator:NAME``...).
        self.actor = actor
        #: Told of every audit record once its transaction committed (the JSONL sink).
        self.sink = sink
        self._engine = self._connect(url)
        self._key_file = Path(key_file) if key_file else self._default_key_file(url)
        self._key: bytes | None = None
        self._derived: tuple[bytes, bytes] | None = None
        # Set once the journal is known to have sealed rows (schema only grows).
        self._sealed_schema = False
        self._key_lock = threading.Lock()
        # Audit records sealed inside this thread's open transaction: handed
        # to the sink only once it commits.
        self._sealed = threading.local()

    # -- setup -------------------------------------------------------------

    @staticmethod
    def _connect(url: str) -> Engine:
        try:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            # pre_ping: a pooled connection that died with a database restart
            # is replaced before use instead of failing the next statement.
            engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise JournalError(f"cannot use journal {_safe_url(url)}: {exc}") from None
        if engine.dialect.name == "sqlite":

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                # pysqlite opens transactions late and not at all for DDL; take
                # over (see "begin" below) so that migrations are atomic and a
                # read-then-write (a lease) cannot race another process.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                # The busy timeout first: it makes concurrent one-shot runs wait
                # instead of fail, and switching to WAL itself needs a lock.
                # WAL lets readers (status, plan) run beside a writer.
                cur.execute("PRAGMA busy_timeout=10000")
                _enable_wal(cur)
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @sa.event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                # IMMEDIATE: the write lock is taken up front (waiting up to the
                # busy timeout), so concurrent writers queue instead of failing.
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    @staticmethod
    def _default_key_file(url: str) -> Path:
        database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
        if database and database != ":memory:":
            return Path(database + ".key")
        return Path(os.environ.get("ROTATOR_KEY_FILE", "rotator.key"))

    @staticmethod
    def sqlite_path(url: str) -> Path | None:
        """Return the database file of a SQLite URL (None for other URLs)."""
        if not url.startswith("sqlite"):
            return None
        database = sa.engine.make_url(url).database
        return Path(database) if database and database != ":memory:" else None

    def describe(self) -> str:
        """Return the journal's URL with any password hidden."""
        return _safe_url(self.url)

    def exists(self) -> bool:
        """Tell whether the journal has been created (plan must not create it)."""
        path = self.sqlite_path(self.url)
        if path is not None and not path.exists():
            return False
        try:
            with self._engine.connect() as conn:
                return sa.inspect(conn).has_table("schema_migrations")
        except SQLAlchemyError as exc:
            raise JournalError(f"cannot read journal {_safe_url(self.url)}: {exc}") from None

    def _has_rotations(self) -> bool:
        """Tell whether the journal exists and records at least one rotation."""
        if not self.exists():
            return False
        try:
            with self._read() as conn:
                return conn.execute(sa.select(rotations.c.id).limit(1)).first() is not None
        except JournalError:
            return False  # no rotations table yet

    def has_audit_trail(self) -> bool:
        """Tell whether the journal exists and has the audit chain (schema 4 or later)."""
        if not self.exists():
            return False
        with self._read() as conn:
            return sa.inspect(conn).has_table("audit")

    def migrate(self) -> int:
        """Apply every pending migration; return the schema version now in place."""
        path = self.sqlite_path(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Sealing the rows found by the migration that adds seals needs the
        # key; taking it may read the journal, so before the transaction.
        key = self._fingerprint_key() if self._seals_pending() else None
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Replicas starting together migrate one at a time.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
                schema_migrations.create(conn, checkfirst=True)
                done = set(conn.scalars(sa.select(schema_migrations.c.version)))
                if done and max(done) > SCHEMA_VERSION:
                    raise JournalError(
                        f"journal schema version {max(done)} is newer than this rotator "
                        f"({SCHEMA_VERSION}); upgrade rotator"
                    )
                for version, name, run in MIGRATIONS:
                    if version in done:
                        continue
                    run(conn)
                    if version == _SEALED_FROM:
                        _refuse_resealing(conn)
                        _seal_existing(conn, key if key is not None else self._fingerprint_key())
                    conn.execute(
                        schema_migrations.insert().values(
                            version=version, name=name, applied_at=self.clock()
                        )
                    )
        except OperationalError as exc:
            raise JournalError(f"cannot migrate journal {_safe_url(self.url)}: {exc}") from None
        if path is not None:
            for suffix in ("", "-wal", "-shm"):
                extra = Path(str(path) + suffix)
                if extra.exists():
                    extra.chmod(0o600)
        return SCHEMA_VERSION

    def _seals_pending(self) -> bool:
        """Tell whether the migration that seals rows is still to be applied here."""
        if not self.exists():
            return True
        with self._read() as conn:
            done = set(conn.scalars(sa.select(schema_migrations.c.version)))
        return _SEALED_FROM not in done

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """Open a connection for reading; a database failure becomes a ``JournalError``."""
        try:
            with self._engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise JournalUnavailable(f"journal unreachable: {type(exc).__name__}") from None
        except SQLAlchemyError as exc:
            raise JournalError(f"journal read failed: {type(exc).__name__}") from None

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        # The audit chain needs the key inside the transaction; making the key
        # may read the journal, which must not wait on this thread's own lock.
        self._fingerprint_key()
        self._sealed.records = []
        try:
            with self._engine.begin() as conn:
                yield conn
        except (JournalError, LeaseLost):
            raise
        except (OperationalError, InterfaceError) as exc:
            raise JournalUnavailable(f"journal unreachable: {type(exc).__name__}") from None
        except SQLAlchemyError as exc:
            raise JournalError(f"journal write failed: {type(exc).__name__}") from None
        finally:
            sealed, self._sealed.records = self._sealed.records, []
        if self.sink is not None:
            for record in sealed:
                self.sink(record)

    # -- fingerprints --------------------------------------------------------

    def _fingerprint_key(self) -> bytes:
        if self._key is not None:
            return self._key
        with self._key_lock:  # threads of one run: one of them makes the key
            if self._key is None:
                path = self._key_file
                if not path.exists():
                    if self._has_rotations():
                        # A new key would make every recorded fingerprint
                        # unmatchable (leak reports, read-back checks).
                        raise JournalError(
                            f"fingerprint key {path} is missing, but the journal "
                            f"{self.describe()} already records rotations: restore the key "
                            "file (or point ROTATOR_KEY_FILE at it) from where rotator first "
                            "ran; every replica must share it"
                        )
                    _create_key_file(path)
                if path.stat().st_mode & 0o077:
                    raise JournalError(f"fingerprint key {path} must be readable by its owner only")
                self._key = bytes.fromhex(path.read_text().strip())
        return self._key

    def _row_key(self) -> bytes:
        return self._derived_keys()[0]

    def _derived_keys(self) -> tuple[bytes, bytes]:
        """The row and chain keys, derived once from the fingerprint key (every write uses them)."""
        if self._derived is None:
            key = self._fingerprint_key()
            self._derived = (row_key(key), chain_key(key))
        return self._derived

    def _row_key_if_present(self) -> bytes | None:
        """The row key when the key file exists (reads never create it); None otherwise."""
        if self._key is None and not self._key_file.exists():
            return None
        try:
            return self._row_key()
        except (JournalError, OSError, ValueError):
            return None

    def fingerprint(self, value: SecretValue) -> str:
        """Return a keyed fingerprint of a value (HMAC-SHA256, 16 bytes, hex)."""
        digest = hmac.new(self._fingerprint_key(), value.text().encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    # -- rotations -----------------------------------------------------------

    def create(self, rotation: Rotation, detail: str | None = None) -> Rotation:
        """Record a new rotation (in state ``planned``) and its first event."""
        values = _rotation_values(rotation, self._row_key())
        with self._tx() as conn:
            self._fence(conn, rotation.secret)
            conn.execute(rotations.insert().values(**values))
            self._event(conn, rotation, "plan", "ok", None, rotation.state, detail, values["seal"])
        return replace(rotation, seal=values["seal"])

    def transition(
        self,
        rotation: Rotation,
        to: State,
        step: str,
        detail: str | None = None,
        **changes: Any,
    ) -> Rotation:
        """Move a rotation to ``to`` (checked against the lifecycle table) and record the step."""
        check(rotation.state, to)
        now = self.clock()
        # A step that succeeds clears the last error, except on the way to a
        # rollback, whose reason is the error.
        keep = rotation.error if to in (State.ROLLING_BACK, State.ROLLED_BACK) else None
        new = replace(rotation, state=to, updated_at=now, **{"error": keep, **changes})
        if to in TERMINAL and new.finished_at is None:
            new = replace(new, finished_at=now)
        self._refuse_tampered(rotation)
        values = _rotation_values(new, self._row_key())
        with self._tx() as conn:
            self._fence(conn, rotation.secret)
            result = conn.execute(
                rotations.update().where(*self._as_read(rotation)).values(**values)
            )
            if result.rowcount != 1:
                raise JournalError(
                    f"rotation {rotation.id} is no longer {rotation.state}: changed by another run"
                )
            self._event(
                conn, new, step, "ok", rotation.state, to, detail, values["seal"], previous=rotation
            )
        return replace(new, seal=values["seal"])

    def record(
        self, rotation: Rotation, step: str, outcome: str, detail: str | None, **changes: Any
    ) -> Rotation:
        """Record an event without a state change (a retry, a failure, a fact learnt)."""
        now = self.clock()
        error = detail if outcome == "error" else rotation.error
        new = replace(rotation, updated_at=now, error=error, **changes)
        self._refuse_tampered(rotation)
        values = _rotation_values(new, self._row_key())
        with self._tx() as conn:
            self._fence(conn, rotation.secret)
            conn.execute(rotations.update().where(rotations.c.id == rotation.id).values(**values))
            state = rotation.state
            self._event(conn, rotation, step, outcome, state, state, detail, values["seal"])
        return replace(new, seal=values["seal"])

    @staticmethod
    def _as_read(rotation: Rotation) -> tuple[sa.ColumnElement[bool], ...]:
        """The conditions that the row is still as this run read it (state, and seal if known)."""
        conditions = [rotations.c.id == rotation.id, rotations.c.state == rotation.state.value]
        if rotation.seal is not None:
            conditions.append(rotations.c.seal == rotation.seal)
        return tuple(conditions)

    @staticmethod
    def _refuse_tampered(rotation: Rotation) -> None:
        """Raise JournalTampered rather than build on a row that failed its seal."""
        if not rotation.intact:
            raise JournalTampered(
                f"rotation {rotation.id} of {rotation.secret}: its journal row does not match "
                "its seal (edited outside rotator); nothing is done on the strength of it",
                secret=rotation.secret,
            )

    def _event(
        self,
        conn: Connection,
        rotation: Rotation,
        step: str,
        outcome: str,
        src: State | None,
        dst: State | None,
        detail: str | None,
        row_seal: str,
        *,
        previous: Rotation | None = None,
    ) -> None:
        at = self.clock()
        row: dict[str, Any] = {
            "rotation_id": rotation.id,
            "secret": rotation.secret,
            "at": at,
            "step": step,
            "outcome": outcome,
            "state_from": src.value if src else None,
            "state_to": dst.value if dst else None,
            "detail": detail,
        }
        # Sealed without its id (the database assigns it): the audit record
        # below names the id, which binds the two.
        event_seal = seal_row(self._row_key(), "events", row)
        inserted = conn.execute(events.insert(), {**row, "seal": event_seal}).inserted_primary_key
        assert inserted is not None  # an INSERT of one row always has its key
        event_id = inserted[0]
        action = _audit_action(rotation.trigger, step, outcome, src, dst)
        if action == AuditAction.GRACE_EXTENDED and previous is not None:
            action = _grace_action(previous, rotation)
        self._append_audit(
            conn,
            AuditRecord(
                seq=0,
                at=at,
                actor=self.actor,
                action=action,
                outcome=outcome,
                secret=rotation.secret,
                rotation_id=rotation.id,
                step=step,
                reason=rotation.reason,
                detail=detail,
                old_ref=rotation.old_ref,
                new_ref=rotation.new_ref,
                old_fingerprint=rotation.old_fingerprint,
                new_fingerprint=rotation.new_fingerprint,
                row_seal=row_seal,
                event_id=int(event_id),
                event_seal=event_seal,
            ),
        )

    # -- the audit chain -------------------------------------------------------

    def _append_audit(self, conn: Connection, record: AuditRecord) -> AuditRecord:
        """Link ``record`` after the chain's head and insert it, inside the caller's write."""
        if conn.dialect.name == "postgresql":
            # Writers on every replica take turns at the head; SQLite's
            # BEGIN IMMEDIATE already serialises all writers.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK_KEY})
        # One read for both: the sealed head, and the last record's number.
        row = conn.execute(_HEAD_AND_END).first()
        problem = self._head_problem(row, row.end or 0 if row is not None else 0)
        if problem is not None or row is None:
            # Appending would hide the cut (or bless a forged head): refuse.
            raise JournalTampered(f"audit trail: {problem}; run `rotator audit verify`")
        seq, prev = row.seq + 1, row.hash
        sealed = replace(record, seq=seq, prev_hash=prev).sealed(self._chain_key())
        conn.execute(audit.insert(), sealed.as_dict() | {"at": sealed.at})
        head = _head_values(row, seq=seq, hash=sealed.hash)
        seal = seal_row(self._row_key(), "audit_head", head)
        conn.execute(_MOVE_HEAD, {**head, "seal": seal})
        self._sealed.records.append(sealed)
        return sealed

    def _head_problem(self, row: Any, end: int, end_hash: str | None = None) -> str | None:
        """Say how the sealed head ``row`` disagrees with the chain's last record (None: agrees).

        ``end`` is the last record's number (0 for an empty chain), and
        ``end_hash`` its hash when it was read. Every write happens after
        ``migrate``, which made the row.
        """
        if row is None:
            return "its sealed head is gone (deleted outside rotator)"
        if not self._head_sealed(row):
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

    def _head_sealed(self, row: Any) -> bool:
        """Tell whether the head row is as rotator wrote it."""
        expected = seal_row(self._row_key(), "audit_head", _head_values(row))
        return hmac.compare_digest(expected, row.seal)

    def _chain_key(self) -> bytes:
        return self._derived_keys()[1]

    def audit_note(
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
        with self._tx() as conn:
            return self._append_audit(conn, record)

    def audit_records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        secret: str | None = None,
        after: int = 0,
    ) -> Iterator[AuditRecord]:
        """Yield audit records in chain order, read a page at a time (filters optional)."""
        while True:
            query = sa.select(audit).where(audit.c.seq > after)
            if since is not None:
                query = query.where(audit.c.at >= since)
            if until is not None:
                query = query.where(audit.c.at < until)
            if secret is not None:
                query = query.where(audit.c.secret == secret)
            with self._read() as conn:
                rows = conn.execute(query.order_by(audit.c.seq).limit(_AUDIT_PAGE)).all()
            for row in rows:
                yield AuditRecord(**row._asdict())
            if len(rows) < _AUDIT_PAGE:
                return
            after = rows[-1].seq

    def verify_audit(
        self, *, anchor: tuple[int, str] | None = None, start: tuple[int, str] | None = None
    ) -> ChainReport:
        """Check the chain (whole, or from ``start``, a record verified before) and every row.

        The rows are always checked whole: each rotation, event and lease
        against its seal, each rotation and event against the audit record
        that last wrote it, every rotation the trail names still there, and
        the chain's last record against its sealed head.
        """
        records = self.audit_records(after=start[0] if start else 0)
        chain = verify_chain(records, self._chain_key(), anchor=anchor, start=start)
        return replace(chain, tampering=self._tampering())

    def check_secret(self, secret: str) -> tuple[Tampering, ...]:
        """Check one secret's rows (and the chain's head) before acting on it; () if all hold."""
        return self._tampering(secret)

    def accept_tampering(
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
        if not self._tampering():
            return ()
        key = self._row_key()
        with self._tx() as conn:
            if conn.dialect.name == "postgresql":  # no replica appends meanwhile
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
            # Under the write lock now: what is found here is what is accepted.
            found = self._tampering_in(conn, None)
            if expected is not None and set(found) != set(expected):
                raise JournalTampered(
                    "the journal changed since its findings were shown; nothing was accepted: "
                    "run `rotator audit accept` again"
                )
            head = _head_at_end(conn)
            conn.execute(audit_head.delete())
            seal = seal_row(key, "audit_head", head)
            conn.execute(audit_head.insert().values(id=1, **head, seal=seal))
            _seal_rows(conn, key)
            bound = _bound(conn, None)

            def accepted_record(detail: str, **about: Any) -> AuditRecord:
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
                return self._append_audit(conn, record)

            chain = self._chain_key()
            for row in conn.execute(sa.select(rotations)).all():
                record = bound.get(row.id)
                vouches = record is not None and hmac.compare_digest(
                    record.sealed(chain).hash, record.hash
                )
                if record is None or not vouches or record.row_seal != row.seal:
                    accepted_record(
                        f"row taken as found: state {row.state}",
                        secret=row.secret,
                        rotation_id=row.id,
                        row_seal=row.seal,
                    )
            summary = "; ".join(t.what for t in found)
            accepted = accepted_record(f"{len(found)} finding(s) accepted: {summary}"[:4000])
            moved = _head_values(head, seq=accepted.seq, hash=accepted.hash, accepted=accepted.seq)
            conn.execute(_MOVE_HEAD, {**moved, "seal": seal_row(key, "audit_head", moved)})
        return found

    def accepted_through(self) -> int:
        """Return the record by which a person last accepted the journal as found (0: never)."""
        with self._read() as conn:
            if not sa.inspect(conn).has_table("audit_head"):
                return 0
            accepted = conn.scalar(sa.select(audit_head.c.accepted).where(audit_head.c.id == 1))
        return int(accepted or 0)

    def verify_state(self) -> tuple[Tampering, ...]:
        """Check every row and the chain's head (not the records: see ``verify_audit``)."""
        return self._tampering()

    def _tampering(self, secret: str | None = None) -> tuple[Tampering, ...]:
        """Find the rows (all, or one secret's) that are not as rotator wrote them."""
        if not self._has_sealed_rows():
            return ()  # not upgraded yet: nothing is sealed
        with self._read() as conn:
            if conn.dialect.name == "postgresql":
                # Every query below must see one state: other runs write
                # meanwhile, and a row read after the record that last wrote it
                # (or a head read after the chain's end) would seem tampered
                # with. (SQLite's reads already hold one snapshot: BEGIN IMMEDIATE.)
                conn.execution_options(isolation_level="REPEATABLE READ")
            return self._tampering_in(conn, secret)

    def _has_sealed_rows(self) -> bool:
        """Tell whether the journal is at the schema that seals rows (remembered once true)."""
        if not self._sealed_schema and self.has_audit_trail():
            with self._read() as conn:
                self._sealed_schema = sa.inspect(conn).has_table("audit_head")
        return self._sealed_schema

    def _tampering_in(self, conn: Connection, secret: str | None) -> tuple[Tampering, ...]:
        """Find, on this connection (one snapshot), the rows not as rotator wrote them."""
        key, chain = self._derived_keys()
        found: list[Tampering] = []
        last = conn.execute(_LAST_RECORD).first()
        head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        problem = self._head_problem(head, last.seq if last else 0, last.hash if last else None)
        if problem is not None:
            found.append(Tampering(None, f"the audit trail: {problem}"))
        # The head's watermarks count when its seal holds, even if the chain
        # no longer reaches it (that is reported above).
        sealed = head is not None and self._head_sealed(head)
        accepted = head.accepted if head is not None and sealed else 0
        since = head.events_from if head is not None and sealed else 0
        found += _rotation_tampering(conn, key, chain, secret, accepted)
        found += _event_tampering(conn, key, chain, secret, accepted, since)
        found += _alert_tampering(conn, key, secret)
        found += _lease_tampering(conn, key, secret)
        return tuple(found)

    def get(self, rotation_id: str) -> Rotation | None:
        """Return one rotation by id."""
        with self._read() as conn:
            row = conn.execute(sa.select(rotations).where(rotations.c.id == rotation_id)).first()
        return _row_to_rotation(row, self._row_key_if_present()) if row else None

    def open_rotations(self, secret: str | None = None) -> list[Rotation]:
        """Return unfinished rotations (oldest first), optionally of one secret."""
        query = sa.select(rotations).where(rotations.c.state.not_in([s.value for s in TERMINAL]))
        if secret is not None:
            query = query.where(rotations.c.secret == secret)
        with self._read() as conn:
            rows = conn.execute(query.order_by(rotations.c.created_at, rotations.c.id)).all()
        key = self._row_key_if_present()
        return [_row_to_rotation(r, key) for r in rows]

    def summaries(
        self, secret: str | None = None, *, names: Collection[str] | None = None
    ) -> dict[str, SecretSummary]:
        """Return each known secret's last success and open rotations (all, one, or ``names``).

        Four queries whatever the number of secrets (per 500 ``names``), so
        ``plan`` and ``run --once`` over thousands of policies stay fast.
        """
        if secret is not None:
            names = [secret]
        if names is None:
            return self._summaries(None)
        found: dict[str, SecretSummary] = {}
        for chunk in _chunks(names):
            found.update(self._summaries(chunk))
        return found

    def _summaries(self, names: list[str] | None) -> dict[str, SecretSummary]:
        key = self._row_key_if_present()

        def only(query: sa.Select[Any], table: sa.Table = rotations) -> sa.Select[Any]:
            return query if names is None else query.where(table.c.secret.in_(names))

        last_success = only(
            sa.select(rotations.c.secret, sa.func.max(rotations.c.promoted_at).label("at"))
            .where(rotations.c.promoted_at.is_not(None))
            .group_by(rotations.c.secret)
        )
        latest_id = only(
            sa.select(rotations.c.secret, sa.func.max(rotations.c.created_at).label("at")).group_by(
                rotations.c.secret
            )
        ).subquery()
        latest = sa.select(rotations).join(
            latest_id,
            sa.and_(
                rotations.c.secret == latest_id.c.secret,
                rotations.c.created_at == latest_id.c.at,
            ),
        )
        succeeded = rotations.alias("succeeded")
        since_success = (
            sa.select(sa.func.max(succeeded.c.promoted_at))
            .where(succeeded.c.secret == rotations.c.secret)
            .scalar_subquery()
        )
        streaks = only(
            sa.select(rotations.c.secret, sa.func.count().label("n"))
            .where(
                rotations.c.state == State.ROLLED_BACK.value,
                sa.or_(since_success.is_(None), rotations.c.created_at > since_success),
            )
            .group_by(rotations.c.secret)
        )
        open_query = only(
            sa.select(rotations)
            .where(rotations.c.state.not_in([s.value for s in TERMINAL]))
            .order_by(rotations.c.created_at, rotations.c.id)
        )
        with self._read() as conn:
            successes = {
                row.secret: UTCDateTime().process_result_value(row.at, conn.dialect)
                for row in conn.execute(last_success)
            }
            last = {r.secret: r for r in (_row_to_rotation(x, key) for x in conn.execute(latest))}
            failures = {row.secret: int(row.n) for row in conn.execute(streaks)}
            open_rows = conn.execute(open_query).all()
        open_by_secret: dict[str, list[Rotation]] = {}
        for rotation in (_row_to_rotation(r, key) for r in open_rows):
            open_by_secret.setdefault(rotation.secret, []).append(rotation)
        return {
            name: SecretSummary(
                successes.get(name),
                last.get(name),
                open_by_secret.get(name, []),
                failures.get(name, 0),
            )
            for name in set(successes) | set(last)
        }

    def latest_change(self) -> datetime | None:
        """Return when any rotation last changed (None for an empty journal)."""
        with self._read() as conn:
            at = conn.execute(sa.select(sa.func.max(rotations.c.updated_at))).scalar()
            return UTCDateTime().process_result_value(at, conn.dialect)

    def changed_since(self, since: datetime | None) -> list[tuple[str, datetime]]:
        """Return (secret, when) for every rotation changed after ``since`` (all if None).

        The service calls this on every pass to notice rotations made by
        other processes (a one-shot run, ``rotator rotate`` by hand).
        Indexed: cheap when little changed.
        """
        query = sa.select(rotations.c.secret, rotations.c.updated_at)
        if since is not None:
            query = query.where(rotations.c.updated_at > since)
        with self._read() as conn:
            return [(row.secret, row.updated_at) for row in conn.execute(query)]

    def rotations_of(self, names: Collection[str] | None = None) -> dict[str, list[Rotation]]:
        """Return every rotation (oldest first) of every secret, or of ``names``, without events."""
        found: dict[str, list[Rotation]] = {}
        query = sa.select(rotations).order_by(rotations.c.created_at, rotations.c.id)
        key = self._row_key_if_present()
        with self._read() as conn:
            for chunk in _chunks(names):
                q = query if chunk is None else query.where(rotations.c.secret.in_(chunk))
                for row in conn.execute(q):
                    rotation = _row_to_rotation(row, key)
                    found.setdefault(rotation.secret, []).append(rotation)
        return found

    def history(self, secret: str) -> list[tuple[Rotation, list[Event]]]:
        """Return every rotation of a secret (oldest first) with its events."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(rotations)
                .where(rotations.c.secret == secret)
                .order_by(rotations.c.created_at, rotations.c.id)
            ).all()
            evs = conn.execute(
                sa.select(events).where(events.c.secret == secret).order_by(events.c.id)
            ).all()
        by_rotation: dict[str, list[Event]] = {}
        for e in evs:
            by_rotation.setdefault(e.rotation_id, []).append(
                Event(e.at, e.step, e.outcome, e.state_from, e.state_to, e.detail)
            )
        key = self._row_key_if_present()
        return [(r, by_rotation.get(r.id, [])) for r in (_row_to_rotation(x, key) for x in rows)]

    # -- alerts and usage ------------------------------------------------------

    def alert_rows(
        self, secret: str | None = None, event: str | None = None, *, unsent: bool = False
    ) -> list[AlertRow]:
        """Return the alerts raised (of one secret and event, or only those not delivered)."""
        query = sa.select(alerts)
        if secret is not None:
            query = query.where(alerts.c.secret == secret)
        if event is not None:
            query = query.where(alerts.c.event == event)
        with self._read() as conn:
            rows = conn.execute(query.order_by(alerts.c.raised_at)).all()
        key = self._row_key_if_present()
        found = [
            AlertRow(
                **{k: v for k, v in row._asdict().items() if k != "seal"},
                intact=key is None or _alert_intact(key, row),
            )
            for row in rows
        ]
        # A row marked sent by someone other than rotator was never sent.
        return [a for a in found if a.sent_at is None or not a.intact] if unsent else found

    def alert_raised(
        self, secret: str, event: str, notifier: str, condition: str, payload: str
    ) -> bool:
        """Record that an alert is to be sent; False if this condition was raised already."""
        now = self.clock()
        values = {
            "condition": condition,
            "raised_at": now,
            "sent_at": None,
            "attempts": 0,
            "last_error": None,
            "payload": payload,
        }
        values["seal"] = _alert_seal(
            self._row_key(),
            SimpleNamespace(secret=secret, event=event, notifier=notifier, **values),
        )
        key = (alerts.c.secret == secret, alerts.c.event == event, alerts.c.notifier == notifier)
        try:
            with self._tx() as conn:
                changed = conn.execute(
                    alerts.update().where(*key, alerts.c.condition != condition).values(**values)
                ).rowcount
                if changed:
                    return True
                row = conn.execute(sa.select(alerts).where(*key)).first()
                if row is not None and _alert_intact(self._row_key(), row):
                    return False
                if row is not None:  # raised by someone else than rotator: raise it for real
                    conn.execute(alerts.update().where(*key).values(**values))
                    return True
                conn.execute(
                    alerts.insert().values(secret=secret, event=event, notifier=notifier, **values)
                )
                return True
        except JournalError as exc:
            if isinstance(exc.__context__, IntegrityError):
                return False  # another process raised it at the same moment
            raise

    def alert_attempted(
        self,
        row: AlertRow,
        *,
        delivered: bool,
        error: str | None = None,
        replaced: str | None = None,
    ) -> None:
        """Record one delivery attempt of a raised alert (if its condition is still the same).

        ``replaced`` is the payload sent instead of a row's that failed its
        seal: it is kept, and the attempts counted afresh.
        """
        sent = self.clock() if delivered else None
        key = (
            alerts.c.secret == row.secret,
            alerts.c.event == row.event,
            alerts.c.notifier == row.notifier,
            alerts.c.condition == row.condition,
        )
        with self._tx() as conn:
            found = conn.execute(sa.select(alerts).where(*key)).first()
            if found is None:
                return  # cleared, or raised again for another condition, meanwhile
            changes: dict[str, Any] = {"sent_at": sent, "attempts": found.attempts + 1}
            if replaced is not None:
                changes |= {"payload": replaced, "attempts": 1}
            seal = _alert_seal(self._row_key(), SimpleNamespace(**(found._asdict() | changes)))
            conn.execute(alerts.update().where(*key).values(**changes, last_error=error, seal=seal))

    def alerts_cleared(self, secret: str, events: Collection[str]) -> int:
        """Forget the conditions of these events (they ended): the next one is sent again."""
        with self._tx() as conn:
            result = conn.execute(
                alerts.delete().where(alerts.c.secret == secret, alerts.c.event.in_(list(events)))
            )
            return int(result.rowcount)

    def record_usage(self, secret: str, ref: str, last_used: datetime | None) -> None:
        """Remember when the issuer last saw credential ``ref`` used (checked now)."""
        now = self.clock()
        key = (usage.c.secret == secret, usage.c.ref == ref)
        try:
            with self._tx() as conn:
                if (
                    conn.execute(
                        usage.update().where(*key).values(last_used=last_used, checked_at=now)
                    ).rowcount
                    == 0
                ):
                    conn.execute(
                        usage.insert().values(
                            secret=secret, ref=ref, last_used=last_used, checked_at=now
                        )
                    )
        except JournalError as exc:
            if not isinstance(exc.__context__, IntegrityError):
                raise

    def usage_of(self, names: Collection[str] | None = None) -> dict[tuple[str, str], Usage]:
        """Return what is known of each credential's last use, by (secret, ref)."""
        query = sa.select(usage)
        found: dict[tuple[str, str], Usage] = {}
        with self._read() as conn:
            for chunk in _chunks(names):
                q = query if chunk is None else query.where(usage.c.secret.in_(chunk))
                for row in conn.execute(q):
                    found[row.secret, row.ref] = Usage(row.last_used, row.checked_at)
        return found

    # -- leases (invariant 4 of docs/design.md) ---------------------------

    def acquire(self, secret: str, owner: str, ttl: timedelta) -> Lease | None:
        """Take the lease on a secret with a new fencing token; None if another live run holds it.

        A lease is taken over when it has expired, or when its owner is a
        process on this host that no longer exists (a crashed one-shot run).
        Taking it (over) always increments the token, so whoever held it
        before can no longer write (see :meth:`holding`).
        """
        now = self.clock()
        try:
            with self._tx() as conn:
                row = conn.execute(sa.select(leases).where(leases.c.secret == secret)).first()
                key = self._row_key()
                if row is None:
                    conn.execute(
                        leases.insert().values(
                            secret=secret,
                            owner=owner,
                            acquired_at=now,
                            expires_at=now + ttl,
                            token=1,
                            seal=_lease_seal(key, secret, owner, 1, now + ttl),
                        )
                    )
                    return Lease(secret, owner, 1, ttl)
                if row.seal is None or not hmac.compare_digest(
                    _lease_seal(key, secret, row.owner, row.token, row.expires_at), row.seal
                ):
                    raise JournalTampered(
                        f"the lease on {secret} does not match its seal (its holder or fencing "
                        "token was edited outside rotator)",
                        secret=secret,
                    )
                if row.owner != owner and not self._lease_dead(row.owner, row.expires_at, now):
                    return None
                # Conditional on the row being as read: of two runs taking over
                # an expired lease at once, the second updates nothing.
                result = conn.execute(
                    leases.update()
                    .where(
                        leases.c.secret == secret,
                        leases.c.owner == row.owner,
                        leases.c.token == row.token,
                    )
                    .values(
                        owner=owner,
                        acquired_at=now,
                        expires_at=now + ttl,
                        token=row.token + 1,
                        seal=_lease_seal(key, secret, owner, row.token + 1, now + ttl),
                    )
                )
                return Lease(secret, owner, row.token + 1, ttl) if result.rowcount == 1 else None
        except JournalTampered:
            raise
        except JournalError as exc:
            if isinstance(exc.__context__, IntegrityError):
                return None
            raise

    @contextmanager
    def holding(self, lease: Lease) -> Iterator[Lease]:
        """Fence this thread's writes for the lease's secret with its token, while inside."""
        reset = _HELD.set(lease)
        try:
            yield lease
        finally:
            _HELD.reset(reset)

    def _fence(self, conn: Connection, secret: str) -> None:
        """Check (and extend) the lease this thread holds on ``secret``, inside a write.

        Raises ``LeaseLost`` when owner or token changed: the write is not made.
        """
        lease = _HELD.get()
        if lease is None or lease.secret != secret:
            return
        result = conn.execute(
            leases.update()
            .where(
                leases.c.secret == secret,
                leases.c.owner == lease.owner,
                leases.c.token == lease.token,
            )
            .values(
                expires_at=(until := self.clock() + lease.ttl),
                seal=_lease_seal(self._row_key(), secret, lease.owner, lease.token, until),
            )
        )
        if result.rowcount != 1:
            raise LeaseLost(
                f"the lease on {secret} (token {lease.token}) was taken over by another run; "
                "this run stops here and the other one finishes the rotation"
            )

    @staticmethod
    def _lease_dead(owner: str, expires_at: datetime, now: datetime) -> bool:
        if expires_at <= now:
            return True
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        return host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid))

    def release(self, lease: Lease) -> None:
        """Give the lease back (only if it is still this one)."""
        with self._tx() as conn:
            conn.execute(
                leases.delete().where(
                    leases.c.secret == lease.secret,
                    leases.c.owner == lease.owner,
                    leases.c.token == lease.token,
                )
            )


def _refuse_resealing(conn: Connection) -> None:
    """Refuse to seal rows as found when the journal was sealed before (it would launder edits).

    ``schema_migrations`` is not sealed: with its row for the sealing
    migration deleted, the upgrade would run again and take edited rows as
    rotator's. Records already bound to rows, or a head, show it ran.
    """
    bound = conn.execute(
        sa.select(audit.c.seq).where(audit.c.row_seal.is_not(None)).limit(1)
    ).first()
    head = conn.execute(sa.select(audit_head.c.id)).first()
    if bound is not None or head is not None:
        raise JournalTampered(
            "the journal's rows were sealed before, but schema_migrations says they never "
            "were: it was edited outside rotator; restore the journal from a backup"
        )


def _seal_existing(conn: Connection, fingerprint_key: bytes) -> None:
    """Seal the rows a journal holds when it is upgraded to sealed rows, and start the head.

    What is there at the upgrade is taken as rotator wrote it: from then on
    an edit, insertion or deletion is detected.
    """
    key = row_key(fingerprint_key)
    _seal_rows(conn, key)
    head = _head_at_end(conn)
    conn.execute(audit_head.insert().values(id=1, **head, seal=seal_row(key, "audit_head", head)))


def _only(query: sa.Select[Any], column: sa.ColumnElement[Any], secret: str | None) -> Any:
    return query if secret is None else query.where(column == secret)


def _bound(conn: Connection, secret: str | None) -> dict[str, AuditRecord]:
    """Return, by rotation id, the last audit record that wrote each rotation's row.

    The records' own hashes are checked by the caller: a record that fails
    cannot vouch for a row.
    """
    latest = _only(
        sa.select(sa.func.max(audit.c.seq).label("seq"))
        .where(audit.c.row_seal.is_not(None))
        .group_by(audit.c.rotation_id),
        audit.c.secret,
        secret,
    ).subquery()
    rows = conn.execute(sa.select(audit).where(audit.c.seq.in_(sa.select(latest.c.seq)))).all()
    records = (AuditRecord(**row._asdict()) for row in rows)
    return {r.rotation_id: r for r in records if r.rotation_id is not None}


def _rotation_tampering(
    conn: Connection, key: bytes, chain: bytes, secret: str | None, accepted: int
) -> list[Tampering]:
    """Rotations edited (seal or binding), deleted (named by the trail, gone) or inserted."""
    found: list[Tampering] = []
    bound = _bound(conn, secret)
    present: set[str] = set()
    for row in conn.execute(_only(sa.select(rotations), rotations.c.secret, secret)):
        rotation = _row_to_rotation(row, key)
        present.add(rotation.id)
        where = f"rotation {rotation.id} of {rotation.secret}"
        record = bound.get(rotation.id)
        if not rotation.intact:
            found.append(Tampering(rotation.secret, f"{where} does not match its seal: edited"))
        elif record is not None and not hmac.compare_digest(record.sealed(chain).hash, record.hash):
            found.append(
                Tampering(
                    rotation.secret,
                    f"audit record {record.seq}, which last wrote {where}, does not match its "
                    "hash: edited, so it vouches for nothing",
                )
            )
        elif record is not None and record.row_seal != rotation.seal:
            found.append(
                Tampering(
                    rotation.secret,
                    f"{where} is not as audit record {record.seq} left it: "
                    "replaced by an earlier copy of itself",
                )
            )
    # Named after the last acceptance: rotations deleted before it were accepted gone.
    named = conn.execute(
        _only(
            sa.select(audit.c.rotation_id, audit.c.secret)
            .where(audit.c.rotation_id.is_not(None), audit.c.seq > accepted)
            .distinct(),
            audit.c.secret,
            secret,
        )
    ).all()
    for row in named:
        if row.rotation_id not in present:
            found.append(
                Tampering(
                    row.secret,
                    f"rotation {row.rotation_id} of {row.secret} is in the audit trail but not "
                    "in the journal: deleted",
                )
            )
    return found


def _event_tampering(
    conn: Connection, key: bytes, chain: bytes, secret: str | None, accepted: int, since: int
) -> list[Tampering]:
    """Events edited or inserted (seal, or named by no record), or deleted (named, gone).

    Events up to ``since`` were sealed as found (the upgrade, an acceptance):
    no audit record names them, and none need.
    """
    found: list[Tampering] = []
    seals: dict[int, tuple[str | None, str]] = {}
    for row in conn.execute(_only(sa.select(events), events.c.secret, secret)):
        data = {name: getattr(row, name) for name in _EVENT_FIELDS}
        expected = seal_row(key, "events", data)
        if row.seal is None or not hmac.compare_digest(expected, row.seal):
            found.append(
                Tampering(row.secret, f"event {row.id} of {row.secret} does not match its seal")
            )
        seals[row.id] = (row.seal, row.secret)
    query = _only(
        sa.select(audit.c.seq, audit.c.secret, audit.c.event_id, audit.c.event_seal).where(
            audit.c.event_id.is_not(None), audit.c.seq > accepted
        ),
        audit.c.secret,
        secret,
    )
    for row in conn.execute(query):
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
    named = set(
        conn.scalars(sa.select(audit.c.event_id).where(audit.c.event_id > since).distinct())
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
        for row in conn.execute(_only(sa.select(alerts), alerts.c.secret, secret))
        if not _alert_intact(key, row)
    ]


def _lease_tampering(conn: Connection, key: bytes, secret: str | None) -> list[Tampering]:
    """Leases whose holder or fencing token was edited."""
    return [
        Tampering(row.secret, f"the lease on {row.secret} does not match its seal")
        for row in conn.execute(_only(sa.select(leases), leases.c.secret, secret))
        if row.seal is None
        or not hmac.compare_digest(
            _lease_seal(key, row.secret, row.owner, row.token, row.expires_at), row.seal
        )
    ]


def _seal_rows(conn: Connection, key: bytes) -> None:
    """Seal every rotation, event, lease and alert row whose seal is missing or fails.

    At the upgrade that adds seals (every row), and for ``audit accept``
    (the rows a person took as found).
    """
    for row in conn.execute(sa.select(rotations)).all():
        values = {k: v for k, v in row._asdict().items() if k in _ROTATION_FIELDS}
        seal = seal_row(key, "rotations", values)
        if row.seal != seal:
            conn.execute(rotations.update().where(rotations.c.id == row.id).values(seal=seal))
    for row in conn.execute(sa.select(events)).all():
        seal = seal_row(key, "events", {name: getattr(row, name) for name in _EVENT_FIELDS})
        if row.seal != seal:
            conn.execute(events.update().where(events.c.id == row.id).values(seal=seal))
    for row in conn.execute(sa.select(leases)).all():
        seal = _lease_seal(key, row.secret, row.owner, row.token, row.expires_at)
        if row.seal != seal:
            conn.execute(leases.update().where(leases.c.secret == row.secret).values(seal=seal))
    for row in conn.execute(sa.select(alerts)).all():
        seal = _alert_seal(key, row)
        if row.seal != seal:
            conn.execute(
                alerts.update()
                .where(
                    alerts.c.secret == row.secret,
                    alerts.c.event == row.event,
                    alerts.c.notifier == row.notifier,
                )
                .values(seal=seal)
            )


def _head_at_end(conn: Connection) -> dict[str, Any]:
    """Return a head at the chain's last record, every event so far taken as found."""
    last = conn.execute(_LAST_RECORD).first()
    return _head_values(
        None,
        seq=last.seq if last else 0,
        hash=last.hash if last else GENESIS,
        events_from=conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0,
    )


def _head_values(row: Any, **changes: Any) -> dict[str, Any]:
    """Return the sealed columns of the trail's head: ``row``'s (or zeros), with ``changes``."""
    names = ("seq", "hash", "accepted", "events_from")
    values: dict[str, Any] = {"seq": 0, "hash": GENESIS, "accepted": 0, "events_from": 0}
    if row is not None:
        values |= {
            name: (row[name] if isinstance(row, dict) else getattr(row, name)) for name in names
        }
    return values | changes


def _grace_action(before: Rotation, after: Rotation) -> str:
    """Name a change of grace in the audit trail's words: extended, cut short or held."""
    old, new = before.grace_deadline, after.grace_deadline
    if old is not None and new is not None and new < old:
        return AuditAction.GRACE_CUT_SHORT.value
    if old is not None and new is not None and new > old:
        return AuditAction.GRACE_EXTENDED.value
    return AuditAction.GRACE_HELD.value


def _chunks(names: Collection[str] | None) -> list[list[str]] | list[None]:
    """Split secret names into ``IN (...)`` lists of ``_IN_CHUNK``; ``[None]``: no filter."""
    if names is None:
        return [None]
    wanted = sorted(set(names))
    return [wanted[i : i + _IN_CHUNK] for i in range(0, len(wanted), _IN_CHUNK)]


def _create_key_file(path: Path) -> None:
    """Create the fingerprint key file whole, or leave the one another process made.

    The key is written to a private temporary file first and then linked into
    place: ``link`` fails if the name exists, so concurrent processes agree
    on one key, and no reader ever sees the file empty or half-written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A random name (mkstemp: O_EXCL, mode 0600), so nobody who can write the
    # folder can take the name first, and a crashed start leaves no name in the way.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink()


def _rotation_values(rotation: Rotation, key: bytes) -> dict[str, Any]:
    """Return the ``rotations`` columns of a rotation, sealed with the row key."""
    values = {name: getattr(rotation, name) for name in _ROTATION_FIELDS}
    values["state"] = rotation.state.value
    values["known_refs"] = (
        None if rotation.known_refs is None else json.dumps(list(rotation.known_refs))
    )
    values["seal"] = seal_row(key, "rotations", values)
    return values


def _alert_seal(key: bytes, row: Any) -> str:
    """Seal what decides whether an alert is sent (again), and what it says.

    Its condition, whether and how often it was tried, and its payload: an
    alert marked sent, given up on, pre-raised or reworded in the database
    fails its seal and is sent again as rotator raised it.
    """
    names = ("secret", "event", "notifier", "condition", "sent_at", "attempts", "payload")
    return seal_row(key, "alerts", {name: getattr(row, name) for name in names})


def _alert_intact(key: bytes, row: Any) -> bool:
    """Tell whether an ``alerts`` row is as rotator wrote it."""
    return row.seal is not None and hmac.compare_digest(_alert_seal(key, row), row.seal)


def _lease_seal(key: bytes, secret: str, owner: str, token: int, expires_at: datetime) -> str:
    """Seal what fences a lease's writes: who holds it, with which token, until when.

    The expiry too: a lease put back (or pushed out) to 2099 would keep every
    other run off the secret for good.
    """
    values = {"secret": secret, "owner": owner, "token": token, "expires_at": expires_at}
    return seal_row(key, "leases", values)


#: The columns an event's seal covers (not its id, which the database assigns).
_EVENT_FIELDS = (
    "rotation_id",
    "secret",
    "at",
    "step",
    "outcome",
    "state_from",
    "state_to",
    "detail",
)


def _safe_url(url: str) -> str:
    """Return ``url`` with its password and password-like query parameters masked.

    SQLAlchemy's ``hide_password`` masks the user-info password only; libpq
    also takes ``?password=`` (and ``sslpassword``...), which it left as is.
    """
    try:
        parsed = sa.engine.make_url(url)
        masked = {
            name: "***" if redact.is_secret_param(name) else value
            for name, value in parsed.query.items()
        }
        rendered = parsed.set(query=masked).render_as_string(hide_password=True)
        # The query is rendered percent-encoded: show the mask as hide_password does.
        return rendered.replace("=%2A%2A%2A", "=***")
    except (SQLAlchemyError, ValueError, TypeError):
        return "<unparsable URL>"
