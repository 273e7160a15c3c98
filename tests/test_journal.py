"""The journal contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rotator.adapters.ratelimit import Pacing
from rotator.adapters.secret import SecretValue
from rotator.errors import JournalError, JournalTampered, JournalUnavailable, LeaseLost
from rotator.journal import database
from rotator.journal.audit import as_sealed
from rotator.journal.journal import Journal
from rotator.journal.records import (
    ROTATION_FIELDS,
    Rotation,
    rotation_from,
    rotation_sealed,
    rotation_values,
)
from rotator.journal.rows import raw_rows, rotation_decoder, rotation_seal_check
from rotator.journal.schema import SCHEMA_VERSION, rotations, schema_migrations
from rotator.journal.shares import TTL as SHARE_TTL
from rotator.lifecycle import TERMINAL, State, Step, Transition, TransitionError
from tests.conftest import FakeClock, calls_of, empty_postgres, run_sql

#: The transitions from planned to verified, in order.
_TO_VERIFIED = (
    Transition.MINTED,
    Transition.STORED_PENDING,
    Transition.PROPAGATED,
    Transition.VERIFIED,
)


def _rotation(clock: FakeClock, secret: str = "db", rid: str = "a" * 32) -> Rotation:
    now = clock()
    return Rotation(
        id=rid,
        secret=secret,
        state=State.PLANNED,
        trigger="schedule",
        created_at=now,
        updated_at=now,
    )


def test_migrate_is_versioned_and_idempotent(journal: Journal) -> None:
    """Migrating twice applies each migration once and reports the current version."""
    assert journal.migrate() == SCHEMA_VERSION
    with journal.database._engine.connect() as conn:
        versions = list(conn.scalars(sa.select(schema_migrations.c.version)))
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_concurrent_starts_migrate_once(journal_url: str, clock: FakeClock, tmp_path: Path) -> None:
    """Four processes' journals migrating an empty database at once apply each migration once."""
    # One key file for all (migrating makes it: it seals the trail's head), never the cwd's.
    journals = [Journal(journal_url, clock, key_file=tmp_path / "k") for _ in range(4)]
    barrier = threading.Barrier(len(journals))
    errors: list[BaseException] = []

    def start(journal: Journal) -> None:
        barrier.wait()
        try:
            journal.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(j,)) for j in journals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    engine = sa.create_engine(journal_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        versions = list(conn.scalars(sa.select(schema_migrations.c.version)))
    engine.dispose()
    assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))


def test_a_journal_at_schema_6_gains_the_events_index_and_keeps_its_rows(
    journal: Journal, clock: FakeClock
) -> None:
    """Migration 7 indexes events by secret on a journal made before it; nothing else changes."""
    rotation = journal.create(_rotation(clock))
    journal.advance(rotation, Transition.MINTED, "minted")
    with journal.database._engine.begin() as conn:  # as a rotator before migration 7 left it
        conn.execute(sa.text("DROP INDEX ix_events_secret"))
        conn.execute(schema_migrations.delete().where(schema_migrations.c.version == 7))
    assert journal.migrate() == SCHEMA_VERSION
    with journal.database._engine.connect() as conn:
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("events")}
    assert indexes["ix_events_secret"] == ["secret", "id"]
    assert [e.step for _, events in journal.history("db") for e in events] == ["plan", "mint"]
    assert journal.tampering.find() == ()


def test_newer_schema_is_refused(journal: Journal) -> None:
    """A journal written by a newer rotator is refused, not silently downgraded."""
    with journal.database._engine.begin() as conn:
        conn.execute(
            schema_migrations.insert().values(
                version=SCHEMA_VERSION + 1, name="future", applied_at=journal.clock()
            )
        )
    with pytest.raises(JournalError, match="newer than this rotator"):
        journal.migrate()


def test_transition_records_state_and_event(journal: Journal, clock: FakeClock) -> None:
    """A transition persists the new state, its fields and a step event."""
    r = journal.create(_rotation(clock))
    clock.advance(timedelta(seconds=5))
    r = journal.advance(r, Transition.MINTED, "minted AKIA1", new_ref="AKIA1")
    stored = journal.get(r.id)
    assert stored is not None
    assert stored.state is State.MINTED and stored.new_ref == "AKIA1"
    assert stored.updated_at == clock()
    [(_, events)] = journal.history("db")
    assert [(e.step, e.state_from, e.state_to) for e in events] == [
        ("plan", None, "planned"),
        ("mint", "planned", "minted"),
    ]


def test_illegal_transition_is_refused(journal: Journal, clock: FakeClock) -> None:
    """The journal refuses a state change outside the lifecycle table."""
    r = journal.create(_rotation(clock))
    with pytest.raises(TransitionError):
        journal.advance(r, Transition.PROMOTED)


def test_stale_transition_is_refused(journal: Journal, clock: FakeClock) -> None:
    """Moving a rotation from a state it has already left fails (a concurrent writer)."""
    r = journal.create(_rotation(clock))
    journal.advance(r, Transition.MINTED)
    with pytest.raises(JournalError, match="changed by another run"):
        journal.advance(r, Transition.MINTED)


def test_known_refs_round_trip(journal: Journal, clock: FakeClock) -> None:
    """An empty inventory is kept apart from an inventory not yet taken."""
    r = journal.create(_rotation(clock))
    assert journal.get(r.id).known_refs is None  # type: ignore[union-attr]
    journal.record(r, "mint", "info", "inventory", known_refs=())
    assert journal.get(r.id).known_refs == ()  # type: ignore[union-attr]


def test_summaries_report_last_success_and_open(journal: Journal, clock: FakeClock) -> None:
    """Summaries give each secret its last promotion and its unfinished rotations."""
    r = journal.create(_rotation(clock))
    for transition in (
        Transition.MINTED,
        Transition.STORED_PENDING,
        Transition.PROPAGATED,
        Transition.VERIFIED,
    ):
        r = journal.advance(r, transition)
    promoted = clock()
    r = journal.advance(
        r,
        Transition.PROMOTED,
        promoted_at=promoted,
        grace_deadline=promoted + timedelta(hours=1),
    )
    clock.advance(timedelta(minutes=1))
    other = journal.create(_rotation(clock, secret="api", rid="b" * 32))
    summaries = journal.summaries()
    assert summaries["db"].last_success == promoted
    assert [o.id for o in summaries["db"].open] == [r.id]
    assert summaries["api"].last_success is None
    assert summaries["api"].last_rotation is not None
    assert summaries["api"].last_rotation.id == other.id


#: A rotation as the property below draws it: (secret, state, minute, promoted how
#: many seconds after its creation: never, at once, or later).
_DRAWN = st.tuples(
    st.sampled_from(["app/db", "app/api", "ops/key"]),
    st.sampled_from(list(State)),
    st.integers(0, 30),
    st.sampled_from([None, 0, 30]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(_DRAWN, max_size=20))
def test_the_summaries_say_what_the_history_says(
    journal: Journal, clock: FakeClock, history: list[tuple[str, State, int, int | None]]
) -> None:
    """Each secret's summary is what its history says, decoded from the driver's rows."""
    key = journal.database.keys.row()
    start = clock()
    rows = []
    for i, (secret, state, minute, promoted) in enumerate(history):
        # Times apart within a secret (the queries leave ties to row order),
        # interleaved with other secrets', some with microseconds.
        created = start + timedelta(minutes=minute, seconds=i, microseconds=i * 7919 % 3)
        rotation = Rotation(
            id=f"{len(history) - i:032x}",  # ids in another order than times
            secret=secret,
            state=state,
            trigger="schedule",
            created_at=created,
            updated_at=created,
            promoted_at=None if promoted is None else created + timedelta(seconds=promoted),
            known_refs=("v1", "v2") if i % 2 else None,
            emergency=bool(i % 3),
        )
        rows.append(rotation_values(rotation, key))
    with journal.database.write() as conn:
        conn.execute(rotations.delete())
        if rows:
            conn.execute(rotations.insert(), rows)
    found = journal.summaries()
    read = [r for s in found.values() for r in [*s.open, *filter(None, [s.last_rotation])]]
    assert all(r.intact and r.seal for r in read)
    # Decoded from the driver's rows, each rotation is as a row object reads it.
    assert all(journal.get(r.id) == r for r in read)
    # And each summary is what the history drawn says, worked out here.
    drawn = [
        Rotation(**{k: v for k, v in row.items() if k != "seal"} | {"state": State(row["state"])})
        for row in rows
    ]
    for secret in {r.secret for r in drawn}:
        mine = [r for r in drawn if r.secret == secret]
        success = max((r.promoted_at for r in mine if r.promoted_at), default=None)
        expected = (
            success,
            max(mine, key=lambda r: r.created_at).id,
            sorted(r.id for r in mine if r.state not in TERMINAL),
            sum(
                1
                for r in mine
                if r.state is State.ROLLED_BACK and (success is None or r.created_at > success)
            ),
        )
        summary = found[secret]
        assert summary.last_rotation is not None
        got = (
            summary.last_success,
            summary.last_rotation.id,
            sorted(r.id for r in summary.open),
            summary.failures_in_a_row,
        )
        assert got == expected


@pytest.fixture
def sqlite_journal(clock: FakeClock, tmp_path: Path) -> Iterator[Journal]:
    """A migrated journal in a SQLite file, whatever database the run tests."""
    j = Journal(f"sqlite:///{tmp_path / 'rows.db'}", clock, key_file=tmp_path / "rows.key")
    j.migrate()
    yield j
    j.close()


def _stored(
    at: datetime, *, sep: str = " ", fraction: bool = True, micro: int | None = None
) -> str:
    """Write ``at`` as SQLAlchemy stores a time in SQLite, or in a form near it."""
    text = f"{at.year:04d}-{at:%m-%d}{sep}{at:%H:%M:%S}"
    return f"{text}.{at.microsecond if micro is None else micro:06d}" if fraction else text


def _other_digit(text: str) -> str:
    """Write the year's first digit as the Arabic-Indic digit of the same value."""
    return chr(0x660 + int(text[0])) + text[1:]


#: What a time column may be set to by hand, from a drawn time: its text as
#: SQLAlchemy writes it, other forms SQLAlchemy still reads, another instant,
#: and values that are no time at all (texts, numbers, bytes, NULL).
_STORED_FORMS: dict[str, Callable[[datetime], object]] = {
    "as stored": _stored,
    "no fraction": lambda at: _stored(at, fraction=False),
    "iso T": lambda at: _stored(at, sep="T"),
    "with an offset": lambda at: _stored(at) + "+00:00",
    "a microsecond on": lambda at: _stored(at, micro=(at.microsecond + 1) % 10**6),
    "month 13": lambda at: _stored(at).replace(f"-{at:%m}-", "-13-", 1),
    "hour 24": lambda at: _stored(at, sep=" ")[:11] + "24:00:00.000000",
    "the day before at 24:00": lambda at: _stored(at - timedelta(days=1))[:11] + "24:00:00.000000",
    "unicode digit": lambda at: _other_digit(_stored(at)),
    "an integer": lambda at: at.year * 10000 + at.month * 100 + at.day,
    "a float": lambda at: at.timestamp(),
    "bytes": lambda at: _stored(at).encode(),
    "NULL": lambda at: None,
}

#: Instants from year 1 to 9999, some on a whole second, some at midnight.
_INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).flatmap(
    lambda at: st.sampled_from(
        [at, at, at.replace(microsecond=0), at.replace(hour=0, minute=0, second=0, microsecond=0)]
    )
)


def _as_row_object_reads(row: sa.Row[Any], key: bytes) -> Rotation:
    """Return the Rotation of a row as SQLAlchemy decodes it, sealed as rotator seals it."""
    data = {k: v for k, v in row._asdict().items() if k in ROTATION_FIELDS}
    return rotation_from(data, row.seal, rotation_sealed(key, as_sealed(data), row.seal))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    at=_INSTANTS,
    column=st.sampled_from(["created_at", "promoted_at", "revoked_at"]),
    form=st.sampled_from(sorted(_STORED_FORMS)),
)
def test_a_raw_row_is_sealed_and_decoded_as_its_row_object_is(
    sqlite_journal: Journal, at: datetime, column: str, form: str
) -> None:
    """Sealing SQLite's stored time text as it is finds what the decoded row's seal finds.

    The tamper checks and the summaries check each raw row without parsing
    its times (rotator/journal/rows.py). Whatever a time column holds, the
    verdict and the rotation decoded (``intact`` and each time's zone
    included) are the row object's; a value that is no time is found
    edited by the check, and fails to decode as it did.
    """
    assume(not (form == "NULL" and column == "created_at"))  # NOT NULL
    journal = sqlite_journal
    key = journal.database.keys.row()
    rotation = Rotation(
        id="a" * 32,
        secret="app/db",
        state=State.GRACE,
        trigger="schedule",
        created_at=at,
        updated_at=at,
        promoted_at=at,
        revoked_at=at,
    )
    value = _STORED_FORMS[form](at)
    with journal.database.write() as conn:
        conn.execute(rotations.delete())
        conn.execute(rotations.insert(), [rotation_values(rotation, key)])
        conn.exec_driver_sql(f"UPDATE rotations SET {column} = ?", (value,))
    with journal.database.read() as conn:
        [raw] = list(raw_rows(conn, sa.select(rotations)))
        check = rotation_seal_check(conn.dialect, key)
        decode = rotation_decoder(conn.dialect, key)
        try:  # SQLAlchemy decodes as it fetches
            [row] = conn.execute(sa.select(rotations)).all()
            expected = _as_row_object_reads(row, key)
        except JournalTampered:  # a time column holding no time (rotator/journal/schema.py)
            assert check(raw) is False
            with pytest.raises(JournalTampered, match=f"rotation {'a' * 32} of app/db: {column}"):
                decode(raw)
            return
    assert check(raw) is expected.intact
    decoded = decode(raw)
    assert decoded == expected
    assert (decoded.intact, decoded.seal) == (expected.intact, expected.seal)  # not compared by ==
    times = [v for v in asdict(decoded).values() if isinstance(v, datetime)]
    assert len(times) >= 2 and all(t.tzinfo is UTC for t in times)  # created, updated at least
    # The premise: the text SQLAlchemy writes is intact; another instant is not.
    if form == "as stored" or (form == "no fraction" and at.microsecond == 0):
        assert expected.intact
    if form == "a microsecond on":
        assert not expected.intact


def test_summaries_check_each_rotation_against_its_seal(journal: Journal, clock: FakeClock) -> None:
    """A rotation row edited outside rotator reads back not intact, latest and open alike."""
    r = journal.create(_rotation(clock))
    for transition in _TO_VERIFIED:
        r = journal.advance(r, transition)
    assert journal.summaries()["db"].last_rotation.intact  # type: ignore[union-attr]
    run_sql(journal.url, "UPDATE rotations SET extensions = 5")
    summary = journal.summaries()["db"]
    assert summary.last_rotation is not None and not summary.last_rotation.intact
    assert [o.intact for o in summary.open] == [False]


def test_fingerprint_is_keyed_and_key_file_private(journal: Journal, tmp_path: Path) -> None:
    """Fingerprints depend on a 0600 key file, so the database alone cannot confirm a guess."""
    value = SecretValue("correct horse battery staple")
    first = journal.fingerprint(value)
    key = tmp_path / "fingerprint.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    other = Journal(journal.url, journal.clock, key_file=tmp_path / "other.key")
    assert other.fingerprint(value) != first
    assert journal.fingerprint(SecretValue("correct horse battery staple")) == first


def test_a_new_key_is_made_once_under_concurrent_first_use(
    journal_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """Threads and separate journals using a fresh key file at once all get the one key."""
    key = tmp_path / "race.key"
    value = SecretValue("correct horse battery staple")
    for trial in range(20):
        key.unlink(missing_ok=True)
        journals = [Journal(journal_url, clock, key_file=key) for _ in range(3)]
        barrier = threading.Barrier(9)
        found: list[str] = []
        errors: list[BaseException] = []

        def use(journal: Journal) -> None:
            barrier.wait()
            try:
                found.append(journal.fingerprint(value))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=use, args=(j,)) for j in journals for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert errors == [], trial
        assert len(found) == 9 and len(set(found)) == 1, trial
        assert sorted(p.name for p in tmp_path.iterdir() if "race" in p.name) == ["race.key"]


def test_world_readable_key_is_refused(journal_url: str, clock: FakeClock, tmp_path: Path) -> None:
    """A fingerprint key others can read is refused instead of used."""
    key = tmp_path / "loose.key"
    key.write_text("00" * 32)
    key.chmod(0o644)
    with pytest.raises(JournalError, match="its owner's only"):
        Journal(journal_url, clock, key_file=key).fingerprint(SecretValue("x" * 20))


def test_lease_excludes_a_second_owner(journal: Journal, clock: FakeClock) -> None:
    """Only one live owner holds a secret's lease until it is released or expires."""
    ttl = timedelta(minutes=5)
    first = journal.leases.acquire("db", "otherhost:1:a", ttl)
    assert first is not None
    assert journal.leases.acquire("db", "otherhost:2:b", ttl) is None
    journal.leases.release(first)
    second = journal.leases.acquire("db", "otherhost:2:b", ttl)
    assert second is not None
    clock.advance(ttl + timedelta(seconds=1))
    third = journal.leases.acquire("db", "otherhost:3:c", ttl)
    assert third is not None and third.token > second.token


def test_a_run_that_lost_its_lease_cannot_write(journal: Journal, clock: FakeClock) -> None:
    """After a takeover the old holder's write fails and changes nothing; the new one's works."""
    journal.migrate()
    ttl = timedelta(minutes=5)
    old = journal.leases.acquire("db", "otherhost:1:a", ttl)
    assert old is not None
    with journal.leases.holding(old):
        rotation = journal.create(_rotation(clock))
    clock.advance(ttl + timedelta(seconds=1))  # the holder was paused past its expiry
    new = journal.leases.acquire("db", "otherhost:2:b", ttl)
    assert new is not None and new.token == old.token + 1
    with journal.leases.holding(old), pytest.raises(LeaseLost):
        journal.advance(rotation, Transition.MINTED)
    assert journal.get(rotation.id) == rotation  # nothing was written
    with journal.leases.holding(new):
        minted = journal.advance(rotation, Transition.MINTED)
    assert minted.state is State.MINTED


def test_each_fenced_write_extends_the_lease(journal: Journal, clock: FakeClock) -> None:
    """A holder that keeps writing keeps its lease past the first expiry."""
    journal.migrate()
    ttl = timedelta(minutes=5)
    lease = journal.leases.acquire("db", "otherhost:1:a", ttl)
    assert lease is not None
    with journal.leases.holding(lease):
        rotation = journal.create(_rotation(clock))
        clock.advance(timedelta(minutes=4))
        rotation = journal.record(rotation, "mint", "info", "inventory: 1 existing")
        clock.advance(timedelta(minutes=4))  # 8 min after acquire, 4 after the last write
    assert journal.leases.acquire("db", "otherhost:2:b", ttl) is None


def test_lease_of_a_dead_local_process_is_taken_over(journal: Journal) -> None:
    """A lease held by a process on this host that no longer exists is taken over at once."""
    import socket

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{child.stdout.strip()}:x"
    assert journal.leases.acquire("db", dead, timedelta(hours=1))
    assert journal.leases.acquire(
        "db", f"{socket.gethostname()}:{os.getpid()}:y", timedelta(hours=1)
    )


def test_a_read_goes_on_beside_another_threads_open_write(
    journal: Journal, clock: FakeClock
) -> None:
    """The checks and reads before a step do not queue behind another rotation's write."""
    rotation = journal.create(_rotation(clock))
    writing, finished = threading.Event(), threading.Event()

    def hold_a_write() -> None:
        with journal.database.write() as conn:
            conn.execute(sa.text("UPDATE leases SET owner = owner"))
            writing.set()
            finished.wait(timeout=60)  # a bound, so a failing test cannot hang the suite

    holder = threading.Thread(target=hold_a_write)
    holder.start()
    try:
        assert writing.wait(timeout=60)
        assert [r.id for r in journal.open_rotations("db")] == [rotation.id]
        assert journal.tampering.find("db") == ()
    finally:
        finished.set()
        holder.join()


@pytest.fixture
def pg_journal(clock: FakeClock, tmp_path: Path) -> Iterator[Journal]:
    """A migrated journal on the test PostgreSQL."""
    j = Journal(empty_postgres(), clock, key_file=tmp_path / "fingerprint.key")
    j.migrate()
    yield j
    j.close()


def _backend(journal: Journal) -> int:
    """Return the server process id of the pooled connection a read gets."""
    with journal.database.read() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_pooled_connection_the_server_dropped_is_replaced_after_idling(
    pg_journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that died in the pool (a server restart) is pinged and replaced, unseen."""
    dropped = _backend(pg_journal)
    run_sql(pg_journal.url, "SELECT pg_terminate_backend(:pid)", pid=dropped)
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", -1.0)  # it has idled long enough
    assert _backend(pg_journal) != dropped


def test_without_the_ping_a_dropped_connection_fails_the_read(
    pg_journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the ping is for: unpinged, the next read of a dropped connection fails."""
    dropped = _backend(pg_journal)
    run_sql(pg_journal.url, "SELECT pg_terminate_backend(:pid)", pid=dropped)
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", 1e9)
    with pytest.raises(JournalError, match="unreachable"):
        _backend(pg_journal)


def test_a_journal_server_not_answering_is_unavailable_when_asked_if_it_exists(
    clock: FakeClock, tmp_path: Path
) -> None:
    """Whether the journal exists, asked of a server that does not answer: try again later.

    ``plan`` and the service ask this first; the answer must be the
    retryable error every other read gives, its password masked.
    """
    pytest.importorskip("psycopg")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    journal = Journal(
        f"postgresql+psycopg://rotator:s3cret-pw@127.0.0.1:{port}/rotator?connect_timeout=2",
        clock,
        key_file=tmp_path / "fingerprint.key",
    )
    with pytest.raises(JournalUnavailable) as raised:
        journal.database.exists()
    assert raised.value.retryable
    assert "s3cret-pw" not in str(raised.value)


def test_a_connection_reused_at_once_is_not_pinged(
    pg_journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transactions back to back (a rotation's twenty) cost no round trip more each."""
    pings = calls_of(monkeypatch, pg_journal.database._engine.dialect, "do_ping")
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", 1e9)
    first = _backend(pg_journal)
    assert [_backend(pg_journal) for _ in range(5)] == [first] * 5
    assert pings == []
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", -1.0)
    _backend(pg_journal)
    assert len(pings) == 1


def test_sqlite_file_is_private(tmp_path: Path, clock: FakeClock) -> None:
    """The SQLite journal file and its key (made with it: it seals the trail's head) are private."""
    path = tmp_path / "j.db"
    Journal(f"sqlite:///{path}", clock).migrate()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "j.db.key").stat().st_mode) == 0o600


def test_failure_streak_counts_rollbacks_since_the_last_success(
    journal: Journal, clock: FakeClock
) -> None:
    """Rollbacks before the last promotion do not count; those after it do."""

    def rotation(n: int, promote: bool) -> None:
        clock.advance(timedelta(minutes=1))
        r = journal.create(_rotation(clock, rid=f"{n:032x}"))
        if promote:
            for transition in (
                Transition.MINTED,
                Transition.STORED_PENDING,
                Transition.PROPAGATED,
                Transition.VERIFIED,
            ):
                r = journal.advance(r, transition)
            journal.advance(r, Transition.PROMOTED, promoted_at=clock())
        else:
            r = journal.advance(r, Transition.ROLLBACK_STARTED, step=Step.VERIFY)
            journal.advance(r, Transition.ROLLED_BACK)

    rotation(1, promote=False)
    rotation(2, promote=True)
    rotation(3, promote=False)
    rotation(4, promote=False)
    assert journal.summaries()["db"].failures_in_a_row == 2
    assert journal.summaries("db")["db"].failures_in_a_row == 2


def _run_on(journal: Journal, owner: str) -> Pacing:
    """Return the pacing of a run ``owner`` on ``journal``, calling under one 50/s quota."""
    pacing = Pacing(lambda quotas: journal.shares.renew(owner, quotas))
    pacing.take("secretsmanager.write", "eu-west-1", 50, sleep=lambda _: None)
    return pacing


def _ceiling(pacing: Pacing) -> float:
    return pacing.bucket("secretsmanager.write", "eu-west-1", 50).ceiling


def test_the_shares_of_live_runs_add_up_to_the_quota_never_more(journal: Journal) -> None:
    """Three runs joining one after another: once each renewed, their ceilings sum to 50/s."""
    runs = [_run_on(journal, f"otherhost:{i}:x") for i in range(3)]
    assert [_ceiling(run) for run in runs] == pytest.approx([50, 25, 50 / 3])  # as each joined
    for run in runs:
        run.renew()
    assert [_ceiling(run) for run in runs] == pytest.approx([50 / 3] * 3)
    assert sum(_ceiling(run) for run in runs) <= 50 + 1e-9
    assert journal.shares.holders() == {"secretsmanager.write@eu-west-1": 3}


def test_a_dead_runs_share_returns_within_one_share_lifetime(
    journal: Journal, clock: FakeClock
) -> None:
    """A run that stops renewing (killed, partitioned) is counted until its share expires."""
    first, second = _run_on(journal, "otherhost:1:a"), _run_on(journal, "otherhost:2:b")
    _run_on(journal, "otherhost:3:c")  # then dies: never renews again
    clock.advance(SHARE_TTL - timedelta(seconds=1))
    first.renew()
    second.renew()
    assert (_ceiling(first), _ceiling(second)) == pytest.approx((50 / 3, 50 / 3))
    clock.advance(timedelta(seconds=1))
    first.renew()
    second.renew()
    assert (_ceiling(first), _ceiling(second)) == (25, 25)


def test_a_dead_local_process_holds_no_share(journal: Journal) -> None:
    """A process of this host that no longer exists is not counted, however fresh its row."""
    import socket

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    _run_on(journal, f"{socket.gethostname()}:{child.stdout.strip()}:x")
    assert _ceiling(_run_on(journal, f"{socket.gethostname()}:{os.getpid()}:y")) == 50


def test_an_ended_run_gives_its_shares_back_at_once(journal: Journal) -> None:
    """A run that ends releases its shares: the others get them at their next renewal."""
    staying = _run_on(journal, "otherhost:1:a")
    _run_on(journal, "otherhost:2:b")
    staying.renew()
    assert _ceiling(staying) == 25
    journal.shares.release("otherhost:2:b")
    staying.renew()
    assert _ceiling(staying) == 50
    assert journal.shares.holders() == {"secretsmanager.write@eu-west-1": 1}


def test_shares_are_per_quota_and_scope(journal: Journal) -> None:
    """Runs in different Regions do not divide each other's quota."""
    _run_on(journal, "otherhost:1:a")
    other = Pacing(lambda quotas: journal.shares.renew("otherhost:2:b", quotas))
    other.take("secretsmanager.write", "us-east-1", 50, sleep=lambda _: None)
    assert other.bucket("secretsmanager.write", "us-east-1", 50).ceiling == 50


def test_a_scope_with_userinfo_is_stored_as_a_digest(journal: Journal) -> None:
    """A Vault address carrying a password never reaches the journal; it still divides."""
    scope = "https://ops:hunter2-canary@vault.example:8200"
    for owner in ("otherhost:1:a", "otherhost:2:b"):
        assert journal.shares.renew(owner, [f"vault@{scope}"]) == {f"vault@{scope}": int(owner[10])}
    [stored] = journal.shares.holders()
    assert "hunter2" not in stored and "ops" not in stored and stored.startswith("vault@#")
    long_scope = "https://" + "v" * 300
    assert journal.shares.renew("otherhost:3:c", [f"vault@{long_scope}"]) == {
        f"vault@{long_scope}": 1
    }


def test_a_run_outside_a_rotation_counts_the_holders_and_writes_nothing(journal: Journal) -> None:
    """A plan beside a rotating run paces at half the quota, and holds no share itself."""
    _run_on(journal, "otherhost:1:a")
    key = "secretsmanager.write@eu-west-1"
    assert journal.shares.count("otherhost:2:b", [key]) == {key: 2}
    assert journal.shares.holders() == {key: 1}


def test_a_share_dated_far_ahead_is_not_counted(journal: Journal, clock: FakeClock) -> None:
    """A row no renewal could have written (forged, or a clock far ahead) slows no run."""
    key = "secretsmanager.write@eu-west-1"
    run_sql(
        journal.url,
        "INSERT INTO quota_shares (quota, owner, expires_at) VALUES (:q, 'otherhost:9:z', :at)",
        q=key,
        at=clock() + timedelta(days=365),
    )
    assert _ceiling(_run_on(journal, "otherhost:1:a")) == 50


def test_clearing_conditions_never_raised_makes_no_write(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clearing what is not raised looks and writes nothing; what is raised is deleted, alone."""
    assert journal.alerts.raised("db", "rotation-failed", "ops", "r1:minted", "{}")
    assert journal.alerts.raised("db", "overdue", "ops", "2026-01-01", "{}")
    writes = calls_of(monkeypatch, journal.database, "write")
    assert journal.alerts.cleared("other", ["rotation-failed"]) == 0
    assert journal.alerts.cleared("db", ["needs-attention", "rotation-due"]) == 0
    assert writes == []
    assert journal.alerts.cleared("db", ["rotation-failed", "needs-attention"]) == 1
    assert len(writes) == 1
    assert [(a.secret, a.event) for a in journal.alerts.rows()] == [("db", "overdue")]
