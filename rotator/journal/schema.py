"""The journal's tables, their versioned migrations, and the sealing of rows found at an upgrade.

SQLAlchemy 2 Core only (no ORM), so the same statements run on SQLite (WAL,
the embedded default) and PostgreSQL. The schema is versioned: each entry of
``MIGRATIONS`` runs once, in order, inside a transaction, and is recorded in
``schema_migrations`` (see :meth:`rotator.journal.database.Database.migrate`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rotator.errors import JournalTampered
from rotator.journal.audit import GENESIS, row_key, seal_row
from rotator.journal.records import ROTATION_FIELDS, alert_seal, event_seal, head_values, lease_seal


def _never_written(column: str) -> JournalTampered:
    """Say that ``column`` holds what rotator never writes there (SQLite keeps anything)."""
    return JournalTampered(
        f"the journal's {column} holds what rotator never writes there: a row was edited "
        "outside rotator (`rotator audit verify`)"
    )


class _UnloadableTime:
    """What the journal's PostgreSQL driver loads a time as when Python has no datetime for it."""

    def __repr__(self) -> str:  # the same in every process: the kept digest writes it
        return "UNLOADABLE_TIME"


#: A time PostgreSQL keeps and Python cannot hold (``infinity``, a year past
#: 9999, before year 1), as rotator/journal/database.py loads it: rotator never
#: writes one, and the time type names its column instead of the read failing.
UNLOADABLE_TIME = _UnloadableTime()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    A stored value no time is read from (text, a number or bytes in a SQLite
    column) raises JournalTampered, not the driver's ValueError or TypeError.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def __init__(self, column: str = "time column") -> None:
        super().__init__()
        #: ``table.column``, named when it holds no time.
        self.column = column

    def result_processor(
        self, dialect: sa.Dialect, coltype: Any
    ) -> Callable[[Any], datetime | None] | None:
        process = super().result_processor(dialect, coltype)
        if process is None:
            return None
        checked = process
        if dialect.name != "sqlite":
            # PostgreSQL's timestamptz holds times only, some of which Python
            # cannot (loaded as UNLOADABLE_TIME).
            def loaded(value: Any) -> datetime | None:
                if value is UNLOADABLE_TIME:
                    raise _never_written(self.column)
                return checked(value)

            return loaded

        def read(value: Any) -> datetime | None:
            if value is not None and type(value) is not str:
                raise _never_written(self.column)
            try:
                return checked(value)
            except (ValueError, OverflowError):
                raise _never_written(self.column) from None

        return read

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


class Whole(sa.types.TypeDecorator[int]):
    """An integer; text, a real or bytes SQLite kept in its column raises JournalTampered.

    As :class:`UTCDateTime` does: a sequence number, a token or a count is
    compared and added as a number, and must be one.
    """

    impl = sa.Integer
    cache_ok = True

    def __init__(self, column: str = "number column") -> None:
        super().__init__()
        #: ``table.column``, named when it holds no integer.
        self.column = column

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":  # the server's integer types hold integers only
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> int | None:
        if value is not None and type(value) is not int:
            raise _never_written(self.column)
        return value


class BigWhole(Whole):
    """A 64-bit :class:`Whole` (sequence numbers, tokens)."""

    impl = sa.BigInteger
    cache_ok = True


metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UTCDateTime("schema_migrations.applied_at"), nullable=False),
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
    sa.Column("created_at", UTCDateTime("rotations.created_at"), nullable=False),
    sa.Column("updated_at", UTCDateTime("rotations.updated_at"), nullable=False),
    sa.Column("promoted_at", UTCDateTime("rotations.promoted_at")),
    sa.Column("grace_deadline", UTCDateTime("rotations.grace_deadline")),
    sa.Column("delete_at", UTCDateTime("rotations.delete_at")),
    sa.Column("finished_at", UTCDateTime("rotations.finished_at")),
    sa.Column("old_version_id", sa.String(128)),
    sa.Column("old_ref", sa.String(256)),
    sa.Column("old_fingerprint", sa.String(64)),
    sa.Column("new_version_id", sa.String(128)),
    sa.Column("new_ref", sa.String(256)),
    sa.Column("new_fingerprint", sa.String(64)),
    sa.Column("known_refs", sa.Text),
    sa.Column("checked_at", UTCDateTime("rotations.checked_at")),
    sa.Column("extensions", Whole("rotations.extensions"), nullable=False, default=0),
    sa.Column("error", sa.Text),
    # Added by migration 2 (see _policy_digest_and_change_index).
    sa.Column("policy_digest", sa.String(64)),
    # Added by migration 4: when the old credential was revoked.
    sa.Column("revoked_at", UTCDateTime("rotations.revoked_at")),
    # Added by migration 5: HMAC of the row under the row key (see records.py).
    sa.Column("seal", sa.String(64)),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rotation_id", sa.String(64), sa.ForeignKey("rotations.id"), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("at", UTCDateTime("events.at"), nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("state_from", sa.String(32)),
    sa.Column("state_to", sa.String(32)),
    sa.Column("detail", sa.Text),
    # Added by migration 5.
    sa.Column("seal", sa.String(64)),
    sa.Index("ix_events_rotation", "rotation_id", "id"),
    # Added by migration 7: a run reads one secret's events (its tamper
    # check before acting, ``history``) without scanning every secret's.
    sa.Index("ix_events_secret", "secret", "id"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("secret", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("acquired_at", UTCDateTime("leases.acquired_at"), nullable=False),
    sa.Column("expires_at", UTCDateTime("leases.expires_at"), nullable=False),
    # Added by migration 3: the fencing token.
    sa.Column("token", BigWhole("leases.token"), nullable=False, server_default="0"),
    # Added by migration 5: HMAC of (secret, owner, token), so a token cannot be forged.
    sa.Column("seal", sa.String(64)),
)


audit = sa.Table(
    "audit",
    metadata,
    # Assigned as the previous record's plus one, never by the database, so
    # that a gap means a deleted record.
    sa.Column("seq", BigWhole("audit.seq"), primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime("audit.at"), nullable=False),
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
    sa.Column("event_id", Whole("audit.event_id")),
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
    sa.Column("seq", BigWhole("audit_head.seq"), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The record by which a person accepted the journal as found (``audit
    # accept``): rows deleted before it are no longer reported.
    sa.Column("accepted", BigWhole("audit_head.accepted"), nullable=False, server_default="0"),
    # The last event row sealed as found (at the upgrade, or an acceptance):
    # every later event must be named by an audit record.
    sa.Column(
        "events_from", BigWhole("audit_head.events_from"), nullable=False, server_default="0"
    ),
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
    sa.Column("raised_at", UTCDateTime("alerts.raised_at"), nullable=False),
    sa.Column("sent_at", UTCDateTime("alerts.sent_at")),
    sa.Column("attempts", Whole("alerts.attempts"), nullable=False, default=0),
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
    sa.Column("last_used", UTCDateTime("usage.last_used")),
    sa.Column("checked_at", UTCDateTime("usage.checked_at"), nullable=False),
)

quota_shares = sa.Table(
    "quota_shares",
    metadata,
    # Added by migration 6: one row per run (a lease owner) and provider
    # quota (QUOTA@SCOPE) it paces itself under, renewed each second while
    # it calls (see rotator/journal/shares.py). Not sealed: a forged or
    # deleted row changes only how fast runs call, and the provider's own
    # throttling (which cuts the pace) still bounds that.
    sa.Column("quota", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(256), primary_key=True),
    sa.Column("expires_at", UTCDateTime("quota_shares.expires_at"), nullable=False),
)

verified = sa.Table(
    "verified",
    metadata,
    # Added by migration 8: one row (id 1), the digest of the content the
    # last check found intact, sealed with the row key, so that a journal
    # found unchanged is not checked row by row again
    # (see rotator/journal/verified.py).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", sa.String(64), nullable=False),
    # The record the chain was verified from (0: the whole chain).
    sa.Column("chain_from", BigWhole("verified.chain_from"), nullable=False),
    sa.Column("head_seq", BigWhole("verified.head_seq"), nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime("verified.at"), nullable=False),
    sa.Column("seal", sa.String(64), nullable=False),
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

    The rows already there are sealed by ``Database.migrate`` in the same
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


def _events_by_secret(conn: Connection) -> None:
    """Index ``events`` by secret where migration 1 created the table without that index."""
    found = next(i for i in events.indexes if i.name == "ix_events_secret")
    found.create(conn, checkfirst=True)


#: Versioned schema migrations, applied in order. Never edit a released
#: entry: add a new one that alters the schema.
MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "rotations, events and leases", _create(rotations, events, leases)),
    (2, "rotations.policy_digest; index on updated_at", _policy_digest_and_change_index),
    (3, "leases.token (fencing)", _fencing_token),
    (4, "audit chain, alerts, credential usage, rotations.revoked_at", _watching),
    (5, "row seals, audit bindings and the chain's head", _row_seals),
    (6, "quota shares", _create(quota_shares)),
    (7, "index on events.secret", _events_by_secret),
    (8, "the content last found intact", _create(verified)),
)
#: The migration after which every row is sealed (its rows are sealed as found).
SCHEMA_VERSION = MIGRATIONS[-1][0]
#: The migration after which every row is sealed (its rows are sealed as found).
SEALED_FROM = 5
#: PostgreSQL advisory lock key that serialises migrations ("rotator" in ASCII).
MIGRATION_LOCK_KEY = 0x726F7461746F72
#: PostgreSQL advisory lock key that serialises appends to the audit chain.
AUDIT_LOCK_KEY = MIGRATION_LOCK_KEY + 1
#: The chain's last record (seq, hash).
LAST_RECORD = sa.select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)


def refuse_resealing(conn: Connection) -> None:
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


def seal_existing(conn: Connection, fingerprint_key: bytes) -> None:
    """Seal the rows a journal holds when it is upgraded to sealed rows, and start the head.

    What is there at the upgrade is taken as rotator wrote it: from then on
    an edit, insertion or deletion is detected.
    """
    key = row_key(fingerprint_key)
    seal_rows(conn, key)
    head = head_at_end(conn)
    conn.execute(audit_head.insert().values(id=1, **head, seal=seal_row(key, "audit_head", head)))


def seal_rows(conn: Connection, key: bytes) -> None:
    """Seal every rotation, event, lease and alert row whose seal is missing or fails.

    At the upgrade that adds seals (every row), and for ``audit accept``
    (the rows a person took as found).
    """
    for row in conn.execute(sa.select(rotations)).all():
        values = {k: v for k, v in row._asdict().items() if k in ROTATION_FIELDS}
        seal = seal_row(key, "rotations", values)
        if row.seal != seal:
            conn.execute(rotations.update().where(rotations.c.id == row.id).values(seal=seal))
    for row in conn.execute(sa.select(events)).all():
        seal = event_seal(key, row)
        if row.seal != seal:
            conn.execute(events.update().where(events.c.id == row.id).values(seal=seal))
    for row in conn.execute(sa.select(leases)).all():
        seal = lease_seal(key, row.secret, row.owner, row.token, row.expires_at)
        if row.seal != seal:
            conn.execute(leases.update().where(leases.c.secret == row.secret).values(seal=seal))
    for row in conn.execute(sa.select(alerts)).all():
        seal = alert_seal(key, row)
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


def head_at_end(conn: Connection) -> dict[str, Any]:
    """Return a head at the chain's last record, every event so far taken as found."""
    last = conn.execute(LAST_RECORD).first()
    return head_values(
        None,
        seq=last.seq if last else 0,
        hash=last.hash if last else GENESIS,
        events_from=conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0,
    )
