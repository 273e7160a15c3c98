"""The journal's database: connecting (SQLite with WAL, or PostgreSQL), reads, writes, migrating.

Every read and write goes through :meth:`Database.read` and
:meth:`Database.write`, which turn a database failure into a
:class:`~rotator.errors.JournalError` (:class:`JournalUnavailable` when the
database did not answer: trying again later may work). A write is one
transaction; the audit records sealed inside it reach the sink (the JSONL
shipper) only once it has committed.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from rotator.clock import Clock
from rotator.errors import JournalError, JournalUnavailable
from rotator.journal.audit import AuditRecord
from rotator.journal.keys import Keys, default_key_file
from rotator.journal.schema import (
    MIGRATION_LOCK_KEY,
    MIGRATIONS,
    SCHEMA_VERSION,
    SEALED_FROM,
    UNLOADABLE_TIME,
    refuse_resealing,
    rotations,
    schema_migrations,
    seal_existing,
)
from rotator.output import redact

#: Secret names per ``IN (...)`` list (SQLite allows 32,766 parameters; keep well under).
IN_CHUNK = 500
#: Seconds a SQLite writer waits for the write lock before the journal counts as unavailable.
SQLITE_BUSY_SECONDS = 10


@dataclass(frozen=True)
class Snapshot:
    """One state of the journal: an open read every statement of which sees that state.

    Made by :meth:`Database.snapshot`; the state is the one its first
    statement finds. A check passes it to each read it makes, so that all
    of them see what the first did.
    """

    conn: Connection


class Database:
    """One journal's database and its key: connections, transactions and the schema's version."""

    def __init__(
        self,
        url: str,
        *,
        key_file: str | Path | None = None,
        sink: Callable[[AuditRecord], None] | None = None,
    ) -> None:
        """Connect to the journal at ``url`` (lazily: nothing is opened until first used)."""
        self.url = url
        # Its password is rotator's own credential: masked wherever it is echoed.
        redact.register_url(url)
        #: Told of every audit record once its transaction committed (the JSONL sink).
        self.sink = sink
        self._engine = _connect(url)
        self.keys = Keys(
            Path(key_file) if key_file else default_key_file(url),
            journal=self.describe(),
            has_rotations=self.has_rotations,
            # Only a SQLite file's runs all find a key made on first use;
            # replicas of any other journal would each make their own.
            may_create=sqlite_path(url) is not None,
        )
        # Audit records sealed inside this thread's open transaction: handed
        # to the sink only once it commits.
        self._unshipped = threading.local()
        # SQLite lets one writer in at a time; another one waiting in SQLite's
        # busy handler sleeps in steps of up to 100 ms, long after the lock
        # was let go. This process's threads take turns here instead, each
        # woken as soon as the one before commits (other processes still
        # wait in SQLite).
        self._writers = threading.RLock() if self._engine.dialect.name == "sqlite" else None
        #: SQLite's transactions are begun by rotator itself (see :meth:`_transaction`).
        self._sqlite = self._engine.dialect.name == "sqlite"

    def describe(self) -> str:
        """Return the journal's URL with any password hidden."""
        return safe_url(self.url)

    def exists(self) -> bool:
        """Tell whether the journal has been created (plan must not create it)."""
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            return False
        try:
            with self._engine.connect() as conn:
                return sa.inspect(conn).has_table("schema_migrations")
        except SQLAlchemyError as exc:
            # Retryable when the server did not answer, as read() takes it.
            unanswered = isinstance(exc, OperationalError | InterfaceError)
            failed = JournalUnavailable if unanswered else JournalError
            raise failed(f"cannot read journal {self.describe()}: {said(exc)}") from None

    def has_rotations(self) -> bool:
        """Tell whether the journal exists and records at least one rotation."""
        if not self.exists():
            return False
        try:
            with self.read() as conn:
                return conn.execute(sa.select(rotations.c.id).limit(1)).first() is not None
        except JournalError:
            return False  # no rotations table yet

    def has_tables(self, *names: str) -> bool:
        """Tell whether the journal exists and has every table named (a schema reached)."""
        if not self.exists():
            return False
        with self.read() as conn:
            inspector = sa.inspect(conn)
            return all(inspector.has_table(name) for name in names)

    def migrate(self, clock: Clock) -> int:
        """Apply every pending migration; return the schema version now in place."""
        path = sqlite_path(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Sealing the rows found by the migration that adds seals needs the
        # key; taking it may read the journal, so before the transaction.
        key = self.keys.fingerprint_key() if self._seals_pending() else None
        try:
            with self._transaction(writing=True) as conn:
                if conn.dialect.name == "postgresql":
                    # Replicas starting together migrate one at a time.
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                self._apply_migrations(conn, clock, key)
        except OperationalError as exc:
            raise JournalError(f"cannot migrate journal {self.describe()}: {said(exc)}") from None
        if path is not None:
            for suffix in ("", "-wal", "-shm"):
                extra = Path(str(path) + suffix)
                if extra.exists():
                    extra.chmod(0o600)
        return SCHEMA_VERSION

    def _apply_migrations(self, conn: Connection, clock: Clock, key: bytes | None) -> None:
        """Run, in this transaction, each migration not yet recorded, and record it."""
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
            if version == SEALED_FROM:
                refuse_resealing(conn)
                seal_existing(conn, key if key is not None else self.keys.fingerprint_key())
            conn.execute(
                schema_migrations.insert().values(version=version, name=name, applied_at=clock())
            )

    def _seals_pending(self) -> bool:
        """Tell whether the migration that seals rows is still to be applied here."""
        if not self.exists():
            return True
        with self.read() as conn:
            done = set(conn.scalars(sa.select(schema_migrations.c.version)))
        return SEALED_FROM not in done

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Open a connection for reading; a database failure becomes a ``JournalError``.

        On SQLite it reads one snapshot without the write lock (WAL lets
        readers beside the writer), so reads never queue behind writes.
        """
        try:
            with self._transaction(writing=False) as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise JournalUnavailable(f"journal unreachable: {type(exc).__name__}") from None
        except SQLAlchemyError as exc:
            raise JournalError(f"journal read failed: {type(exc).__name__}") from None

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """Open a read whose every statement sees one state of the journal (its first's)."""
        with self.read() as conn:
            if conn.dialect.name == "postgresql":
                # Every query of a check must see one state: other runs write
                # meanwhile, and a row read after the record that last wrote it
                # (or a head read after the chain's end) would seem tampered
                # with. (A SQLite read already holds one snapshot: see read.)
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield Snapshot(conn)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """Open a transaction; a database failure becomes a ``JournalError``, rolled back.

        The audit records given to :meth:`ship_on_commit` inside it reach the
        sink once it has committed, never when it rolled back.
        """
        # The audit chain needs the key inside the transaction; making the key
        # may read the journal, which must not wait on this thread's own lock.
        self.keys.fingerprint_key()
        self._unshipped.records = []
        try:
            with self._write_turn(), self._transaction(writing=True) as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise JournalUnavailable(f"journal unreachable: {type(exc).__name__}") from None
        except SQLAlchemyError as exc:
            raise JournalError(f"journal write failed: {type(exc).__name__}") from None
        finally:
            committed, self._unshipped.records = self._unshipped.records, []
        if self.sink is not None:
            for record in committed:
                self.sink(record)

    @contextmanager
    def _transaction(self, *, writing: bool) -> Iterator[Connection]:
        """Open a connection inside a transaction, committed at the end if ``writing``.

        On SQLite the transaction is begun here, by hand (pysqlite opens
        transactions late and not at all for DDL, so the driver's own are
        turned off: see ``_connect``): a write with ``BEGIN IMMEDIATE``, which
        takes the write lock up front (waiting up to the busy timeout), so
        that concurrent writers queue instead of failing and a
        read-then-write (a lease) cannot race another process; a read with
        ``BEGIN``, its snapshot taken at its first statement and kept to its
        end, never waiting for the write lock. Begun here rather than by a
        "begin" event listener: any such listener makes SQLAlchemy dispatch
        its execution events around every statement, about a fifth of what
        each of a rotation's sixty statements cost.
        """
        with self._engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
            yield conn
            if writing:
                conn.commit()
            # A read ends as the connection goes back to the pool: rolled back.

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """Wait for this process's other writers to SQLite to finish (as long as SQLite would)."""
        if self._writers is None:
            yield
            return
        if not self._writers.acquire(timeout=SQLITE_BUSY_SECONDS):
            raise JournalUnavailable("journal unreachable: its write lock is held too long")
        try:
            yield
        finally:
            self._writers.release()

    def ship_on_commit(self, record: AuditRecord) -> None:
        """Hand ``record`` to the sink once this thread's open write commits."""
        self._unshipped.records.append(record)


def _mark_unloadable_times(dbapi_conn: Any, _record: Any) -> None:
    """Have psycopg load a time Python cannot hold as ``UNLOADABLE_TIME``, not fail the read.

    PostgreSQL keeps ``infinity``, years past 9999 and dates BC, which
    rotator never writes; psycopg raises DataError for each, ending the read
    (a check, the digest, every secret's summaries). Loaded as a marker, the
    journal's time type names the column (rotator/journal/schema.py) and a
    rotation holding one sets its secret alone aside. psycopg's own loader
    does the loading: this one only catches what it cannot load.
    """
    from psycopg import DataError
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    oid = dbapi_conn.adapters.types["timestamptz"].oid
    for form in (Format.TEXT, Format.BINARY):
        load_with = dbapi_conn.adapters.get_loader(oid, form)

        class Marking(Loader):
            format = form
            _load_with = load_with

            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                self._loader = self._load_with(oid, context)

            def load(self, data: Any) -> Any:
                try:
                    return self._loader.load(data)
                except DataError:
                    return UNLOADABLE_TIME

        dbapi_conn.adapters.register_loader(oid, Marking)


def sqlite_path(url: str) -> Path | None:
    """Return the database file of a SQLite URL (None for other URLs)."""
    if not url.startswith("sqlite"):
        return None
    database = sa.engine.make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def in_chunks(names: Collection[str] | None) -> list[list[str]] | list[None]:
    """Split secret names into ``IN (...)`` lists of ``IN_CHUNK``; ``[None]``: no filter."""
    if names is None:
        return [None]
    wanted = sorted(set(names))
    return [wanted[i : i + IN_CHUNK] for i in range(0, len(wanted), IN_CHUNK)]


def safe_url(url: str) -> str:
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


#: The databases a journal may live in (a URL scheme's part before any ``+driver``).
DATABASES = ("sqlite", "postgresql")
#: What a URL scheme may be made of (anything else is no URL: it is not repeated).
_SCHEME = re.compile(r"[a-z][a-z0-9+]*")
#: Longest piece of a driver's own words kept in an error.
_SAID = 300


def said(exc: BaseException) -> str:
    """Say what went wrong in the driver's own words, without SQLAlchemy's wrapping.

    SQLAlchemy wraps a driver's error with its class, the statement and a
    "Background on this error" link; the operator needs the driver's
    sentence (connection refused, password failed), scrubbed and on one line.
    """
    inner = getattr(exc, "orig", None)
    text = str(inner) if inner is not None else str(exc)
    text = text.split("(Background on this error", 1)[0].split("[SQL:", 1)[0]
    return redact.outside_text(" ".join(text.split()), _SAID) or type(exc).__name__


def _connect(url: str) -> Engine:
    """Create the engine for ``url``: SQLite with WAL and up-front write locks, or psycopg."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    expected = "rotator keeps its journal in SQLite (sqlite:///PATH) or PostgreSQL (postgresql://USER@HOST/DB)"
    if not sep or not _SCHEME.fullmatch(scheme):
        # Not repeated: a URL mistyped may hold its password where a scheme should be.
        raise JournalError(f"cannot use journal {safe_url(url)}: not a database URL; {expected}")
    if scheme.partition("+")[0] not in DATABASES:
        raise JournalError(f"cannot use journal {safe_url(url)}: {expected}, not {scheme!r}")
    if scheme == "postgresql":
        url = f"postgresql+psycopg://{rest}"
    try:
        engine = sa.create_engine(url, future=True)
    except ImportError as exc:
        needed = exc.name or "its database driver"
        hint = ": pip install 'rotator-keys[postgres]'" if needed.startswith("psycopg") else ""
        raise JournalError(
            f"cannot use journal {safe_url(url)}: {needed} is not installed{hint}"
        ) from None
    except (SQLAlchemyError, ValueError) as exc:
        raise JournalError(f"cannot use journal {safe_url(url)}: {said(exc)}") from None
    if engine.dialect.name != "sqlite":
        # A SQLite file has no server to restart: nothing to ping.
        sa.event.listen(engine, "checkin", _idle_from)
        sa.event.listen(engine, "checkout", _ping_after_idle(engine.dialect))
        sa.event.listen(engine, "connect", _mark_unloadable_times)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite opens transactions late and not at all for DDL; take
            # over (see Database._transaction) so that migrations are atomic
            # and a read-then-write (a lease) cannot race another process.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # The busy timeout first: it makes concurrent one-shot runs wait
            # instead of fail, and switching to WAL itself needs a lock.
            # WAL lets readers (status, plan) run beside a writer.
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            _enable_wal(cur)
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


#: Seconds a pooled database server connection may sit idle and still be used unpinged.
IDLE_BEFORE_PING = 1.0


def _idle_from(_dbapi_conn: Any, record: Any) -> None:
    """Note when a connection went back to the pool."""
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_after_idle(dialect: Any) -> Callable[[Any, Any, Any], None]:
    """Return the checkout hook that pings a connection back from idling, replacing a dead one.

    A connection that died with a server restart (or an idle timeout) is
    then replaced before use instead of failing the next statement. Not on
    every checkout, as ``pool_pre_ping`` would: a rotation opens about
    twenty transactions back to back, and a round trip more for each was
    a tenth of a busy replica's time spent on the journal. The errors
    raised make the pool connect anew: DisconnectionError for this
    connection, InvalidatePoolError for every pooled one.
    """

    errors = dialect.loaded_dbapi.Error  # the driver's own error root (psycopg.Error)

    def ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since <= IDLE_BEFORE_PING:
            return
        try:
            # The dialect's own ping (psycopg's in autocommit, leaving no transaction open).
            dialect.do_ping(dbapi_conn)
        except errors as exc:
            # The pool connects anew (or fails plainly: the server is down). A server
            # restart dropped every pooled connection: all are replaced at once. (So is
            # the pool when one connection alone timed out at a proxy: a reconnect
            # per pooled connection, not a failure.)
            if dialect.is_disconnect(exc, dbapi_conn, None):
                raise sa.exc.InvalidatePoolError(type(exc).__name__) from None
            raise sa.exc.DisconnectionError(type(exc).__name__) from None

    return ping


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
