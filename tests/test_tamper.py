"""Tamper evidence over every journal row the engine acts on, on SQLite and PostgreSQL.

Rows of ``rotations``, ``events`` and ``leases`` are sealed with the journal
key, each rotation and event is bound to the audit record that last wrote
it, and the chain's last record to a sealed head. ``audit verify`` finds an
edited column, a deleted, inserted or replayed row, an emptied or cut chain;
the engine refuses to act on a secret whose rows fail, raises a critical
alert, and revokes or extends nothing on the strength of a forged row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from rotator.adapters.values import AlertEvent, Severity
from rotator.cli.main import cli
from rotator.engine.plan import plan_orphans
from rotator.engine.report import Action
from rotator.engine.runner import Engine
from rotator.errors import JournalTampered
from rotator.journal.audit import AnchorFile, AuditAction
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.journal.schema import rotations
from rotator.lifecycle import State, Transition
from tests.conftest import FakeClock, calls_of, run_sql
from tests.watched import WatchedIssuer, recorded_alerts, watched_engine, watched_secret


def _to_grace(journal: Journal, clock: FakeClock, name: str, number: int) -> Rotation:
    """Record one rotation of ``name`` from planned to grace, as the engine would."""
    rotation = journal.create(
        Rotation(
            id=f"{name}-{number}",
            secret=name,
            state=State.PLANNED,
            trigger="schedule",
            created_at=clock(),
            updated_at=clock(),
        )
    )
    steps = [
        (Transition.MINTED, {"new_ref": f"new-{number}", "old_ref": f"old-{number}"}),
        (Transition.STORED_PENDING, {"new_version_id": f"v{number}"}),
        (Transition.PROPAGATED, {}),
        (Transition.VERIFIED, {}),
        (
            Transition.PROMOTED,
            {"promoted_at": clock(), "grace_deadline": clock() + timedelta(hours=1)},
        ),
    ]
    for transition, changes in steps:
        clock.advance(timedelta(seconds=1))
        rotation = journal.advance(rotation, transition, f"by {transition}", **changes)
    return rotation


@pytest.fixture
def history(journal: Journal, clock: FakeClock) -> Journal:
    """A journal with two secrets' rotations in grace and a lease held."""
    _to_grace(journal, clock, "app/db", 1)
    _to_grace(journal, clock, "app/api", 2)
    assert journal.leases.acquire("app/api", "host:1:a", timedelta(hours=1)) is not None
    assert journal.trail.verify().intact
    return journal


#: (kind of tampering, SQL, what verify must say). Every row the engine decides on.
TAMPERING: list[tuple[str, str, str]] = [
    *(
        (
            f"edited rotations.{column}",
            f"UPDATE rotations SET {column} = {value} WHERE id = 'app/db-1'",
            "rotation app/db-1 of app/db does not match its seal: edited",
        )
        for column, value in [
            ("grace_deadline", "created_at"),
            ("state", "'done'"),
            ("old_ref", "'old-x'"),
            ("new_ref", "'new-x'"),
            ("new_version_id", "'v9'"),
            ("extensions", "7"),
            ("revoked_at", "created_at"),
            ("delete_at", "created_at"),
            ("error", "'x'"),
            ("emergency", "true"),
            ("promoted_at", "NULL"),
        ]
    ),
    (
        "deleted rotation",
        "DELETE FROM events WHERE rotation_id = 'app/db-1'; "
        "DELETE FROM rotations WHERE id = 'app/db-1'",
        "rotation app/db-1 of app/db is in the audit trail but not in the journal: deleted",
    ),
    (
        "inserted rotation",
        "INSERT INTO rotations (id, secret, state, trigger, emergency, created_at, updated_at, "
        "extensions) SELECT 'forged', secret, 'grace', trigger, emergency, created_at, "
        "updated_at, 0 FROM rotations WHERE id = 'app/db-1'",
        "rotation forged of app/db does not match its seal: edited",
    ),
    (
        "every event deleted",
        "DELETE FROM events",
        "of app/db (audit record 1) is gone: deleted",
    ),
    (
        "edited event",
        "UPDATE events SET detail = 'nothing happened' WHERE rotation_id = 'app/db-1'",
        "of app/db does not match its seal",
    ),
    (
        "inserted event",
        "INSERT INTO events (rotation_id, secret, at, step, outcome) "
        "SELECT rotation_id, secret, at, 'revoke', 'ok' FROM events WHERE rotation_id = 'app/db-1'",
        "of app/db does not match its seal",
    ),
    (
        "copied event (its seal with it)",
        "INSERT INTO events (rotation_id, secret, at, step, outcome, state_from, state_to, "
        "detail, seal) SELECT rotation_id, secret, at, step, outcome, state_from, state_to, "
        "detail, seal FROM events WHERE rotation_id = 'app/db-1' AND step = 'promote'",
        "of app/db is in no audit record: inserted",
    ),
    ("emptied chain", "DELETE FROM audit", "it ends before its sealed head (record 12): emptied"),
    (
        "emptied chain and head",
        "DELETE FROM audit; DELETE FROM audit_head",
        "its sealed head is gone",
    ),
    (
        "records cut off the end",
        "DELETE FROM audit WHERE seq > 10",
        "it ends before its sealed head (record 12): cut after record 10",
    ),
    ("edited head", "UPDATE audit_head SET seq = 11", "its head does not match its seal"),
    (
        "edited lease token",
        "UPDATE leases SET token = token + 5",
        "the lease on app/api does not match its seal",
    ),
    (
        "lease pushed out to 2099",
        "UPDATE leases SET expires_at = '2099-01-01 00:00:00'",
        "the lease on app/api does not match its seal",
    ),
    (
        "edited lease holder",
        "UPDATE leases SET owner = 'elsewhere:1:b'",
        "the lease on app/api does not match its seal",
    ),
]


@pytest.mark.parametrize(("kind", "statements", "said"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_verify_finds_every_kind_of_tampering(
    history: Journal, kind: str, statements: str, said: str
) -> None:
    """Each edit, deletion or insertion made outside rotator is named by verify."""
    for statement in statements.split("; "):
        run_sql(history.url, statement)
    report = history.trail.verify()
    assert not report.intact, kind
    assert any(said in t.what for t in report.tampering) or said in (report.problem or "")


def test_a_replayed_earlier_copy_of_a_row_is_found(journal: Journal, clock: FakeClock) -> None:
    """A row put back as it was before a step (valid seal, stale) no longer matches the trail."""
    rotation = _to_grace(journal, clock, "app/db", 1)
    engine = sa.create_engine(journal.url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        saved = conn.execute(sa.select(rotations).where(rotations.c.id == rotation.id)).one()
    clock.advance(timedelta(hours=2))
    journal.advance(rotation, Transition.REVOKED, "revoked", revoked_at=clock())
    with engine.begin() as conn:
        conn.execute(
            rotations.update().where(rotations.c.id == rotation.id).values(**saved._asdict())
        )
    engine.dispose()
    [found] = journal.trail.verify().tampering
    assert found.secret == "app/db" and "replaced by an earlier copy of itself" in found.what
    assert [t.what for t in journal.tampering.find("app/db")] == [found.what]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("promoted_at", "'yesterday'"),
        ("promoted_at", "'2026-02-30 10:00:00.000000'"),
        ("promoted_at", "42"),
        ("promoted_at", "4.2"),
        ("promoted_at", "x'00'"),
        ("state", "'revoked-early'"),
        ("state", "7"),
        ("known_refs", "'[\"v1\"'"),
        ("known_refs", "'7'"),
        ("known_refs", "x'00'"),
        ("known_refs", "'" + "[" * 100_000 + "'"),  # nested past the interpreter's stack
        ("old_ref", "x'00'"),
        ("extensions", "'x'"),
    ],
)
def test_a_column_holding_what_rotator_never_writes_is_found_edited(
    clock: FakeClock, tmp_path: Path, column: str, value: str
) -> None:
    """SQLite keeps any value in any column: the check finds the row edited, not failed.

    A time that is no time, a state rotator has not, refs that are no JSON
    list. Reading the secret's rows alone cannot decode it and says which
    rotation is not as rotator wrote it (JournalTampered, a RotatorError),
    never a bare ValueError or TypeError; the summaries of every secret
    name it for that secret alone, and read the others.
    """
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock, key_file=tmp_path / "j.key")
    journal.migrate()
    _to_grace(journal, clock, "app/db", 1)
    run_sql(journal.url, f"UPDATE rotations SET {column} = {value} WHERE id = 'app/db-1'")
    [found] = journal.trail.verify().tampering
    assert found.what == "rotation app/db-1 of app/db does not match its seal: edited"
    assert [t.what for t in journal.tampering.find("app/db")] == [found.what]
    _to_grace(journal, clock, "app/api", 1)
    named = f"rotation app/db-1 of app/db: {column}"
    summaries = journal.summaries()
    assert named in (summaries["app/db"].unreadable or "")
    assert summaries["app/db"].last_rotation is None and summaries["app/db"].open == []
    assert summaries["app/api"].unreadable is None
    assert summaries["app/api"].open and summaries["app/api"].open[0].intact
    [orphan] = plan_orphans(summaries, frozenset(), ["app/db"])  # its policy removed, too
    assert orphan.action is Action.ATTENTION and named in orphan.reason
    for read in (
        lambda: journal.history("app/db"),
        lambda: journal.open_rotations("app/db"),
        lambda: journal.get("app/db-1"),
    ):
        with pytest.raises(JournalTampered, match=named) as raised:
            read()
        assert raised.value.secret == "app/db"
    assert journal.get("app/api-1") is not None
    recorded, unreadable = journal.rotations_of()  # for leak triage: the others all there
    assert named in unreadable["app/db"] and [r.id for r in recorded["app/api"]] == ["app/api-1"]
    assert "app/db" not in recorded
    journal.close()


def test_a_secret_name_that_is_bytes_is_named_as_text(clock: FakeClock, tmp_path: Path) -> None:
    """Bytes SQLite kept as a rotation's secret are named by their repr, never used as a name."""
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock, key_file=tmp_path / "j.key")
    journal.migrate()
    _to_grace(journal, clock, "app/db", 1)
    run_sql(journal.url, "UPDATE rotations SET secret = x'00ff'")
    found = [t for t in journal.trail.verify().tampering if t.secret == "b'\\x00\\xff'"]
    assert found and found[0].what.startswith("rotation app/db-1 of b'\\x00\\xff'")
    summaries = journal.summaries()
    assert all(type(name) is str for name in summaries)
    assert "rotation app/db-1 of b'\\x00\\xff'" in (summaries["b'\\x00\\xff'"].unreadable or "")
    journal.close()


def test_a_journal_untouched_verifies_intact_and_checks_per_secret(history: Journal) -> None:
    """No false alarm: the untouched journal and each of its secrets pass."""
    report = history.trail.verify()
    assert report.intact and report.tampering == ()
    assert history.tampering.find("app/db") == () and history.tampering.find("app/api") == ()


def _statements(journal: Journal) -> list[str]:
    """Start collecting the SQL statements ``journal`` sends; return the list they go to."""
    sent: list[str] = []

    def collect(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(" ".join(statement.split()))

    sa.event.listen(journal.database._engine, "before_cursor_execute", collect)
    return sent


def test_checking_one_secret_reads_no_other_secrets_records(history: Journal) -> None:
    """Before each step a secret's rows are checked: reading the whole trail would grow with it."""
    sent = _statements(history)
    assert history.tampering.find("app/db") == ()
    reads = [s for s in sent if " FROM audit " in s and "audit_head" not in s]
    assert reads, sent
    # Every read of the records is limited to the secret, or (the chain's last
    # record) to one row.
    assert all("audit.secret =" in s or "LIMIT" in s for s in reads), reads


def test_an_event_named_by_a_record_of_another_secret_is_not_called_inserted(
    history: Journal,
) -> None:
    """Whichever secret's record names an event, the event is named (not reported inserted)."""
    run_sql(
        history.url,
        "UPDATE audit SET secret = 'app/api' WHERE event_id = "
        "(SELECT max(id) FROM events WHERE secret = 'app/db')",
    )
    assert not any("inserted" in t.what for t in history.tampering.find("app/db"))
    run_sql(history.url, "UPDATE audit SET event_id = NULL WHERE secret = 'app/api'")
    assert any("inserted" in t.what for t in history.tampering.find("app/db"))


def test_the_trail_refuses_to_grow_past_a_cut(history: Journal, clock: FakeClock) -> None:
    """Appending after records were cut off would hide the cut: the write is refused."""
    run_sql(history.url, "DELETE FROM audit WHERE seq > 10")
    [rotation] = history.open_rotations("app/db")
    with pytest.raises(JournalTampered, match="cut after record 10"):
        history.advance(rotation, Transition.REVOKED, "revoked")


def test_a_lease_with_a_forged_token_is_not_taken(history: Journal) -> None:
    """A lease row edited to another token is refused, not taken over."""
    run_sql(history.url, "UPDATE leases SET token = 1000")
    with pytest.raises(JournalTampered, match="lease on app/api"):
        history.leases.acquire("app/api", "host:2:c", timedelta(hours=1))


# -- a journal found unchanged is not checked row by row again ----------------------------


def _kept(journal: Journal) -> str:
    """Keep, as the engine does after a check found ``journal`` intact, its digest; return it."""
    mark, digest = journal.verified.unchanged(0)
    assert mark is None and journal.trail.verify().intact
    journal.verified.keep(digest, 0, (1, "0" * 64))
    assert journal.verified.unchanged(0)[0] is not None
    return digest


@pytest.mark.parametrize(("kind", "statements", "said"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_every_kind_of_tampering_changes_the_digest_found_intact(
    history: Journal, kind: str, statements: str, said: str
) -> None:
    """After any edit, deletion or insertion, the journal no longer matches the content kept."""
    kept = _kept(history)
    for statement in statements.split("; "):
        run_sql(history.url, statement)
    mark, digest = history.verified.unchanged(0)
    assert mark is None and digest != kept, kind


def test_a_replayed_copy_of_a_row_changes_the_digest(journal: Journal, clock: FakeClock) -> None:
    """A row put back as it was (valid seal, stale) is a change: the full check finds it."""
    rotation = _to_grace(journal, clock, "app/db", 1)
    kept = _kept(journal)
    engine = sa.create_engine(journal.url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        saved = conn.execute(sa.select(rotations).where(rotations.c.id == rotation.id)).one()
    journal.advance(rotation, Transition.REVOKED, "revoked", revoked_at=clock())
    with engine.begin() as conn:
        conn.execute(
            rotations.update().where(rotations.c.id == rotation.id).values(**saved._asdict())
        )
    engine.dispose()
    mark, digest = journal.verified.unchanged(0)
    assert mark is None and digest != kept


def test_a_digest_kept_outside_rotator_is_not_taken(history: Journal) -> None:
    """The kept digest set to the tampered content's own (without the key) is not believed."""
    _kept(history)
    run_sql(history.url, "UPDATE rotations SET state = 'done'")
    _, digest = history.verified.unchanged(0)
    run_sql(history.url, f"UPDATE verified SET digest = '{digest}'")
    assert history.verified.unchanged(0)[0] is None


def test_a_check_from_a_later_record_does_not_answer_for_the_whole_chain(
    history: Journal,
) -> None:
    """Content found intact with the chain verified from record 5 answers only for 5 on."""
    _, digest = history.verified.unchanged(0)
    history.verified.keep(digest, 5, (12, "0" * 64))
    assert history.verified.unchanged(0)[0] is None
    assert history.verified.unchanged(4)[0] is None
    assert history.verified.unchanged(5)[0] is not None
    assert history.verified.unchanged(9)[0] is not None


def test_the_digest_is_read_from_one_snapshot(history: Journal) -> None:
    """A row changed while the digest is read is not in it: every table is read from one state."""
    before = history.verified.unchanged(0)[1]
    edited: list[bool] = []

    def edit_once(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not edited and 'FROM "rotations"' in statement:  # leases are read later
            edited.append(True)
            run_sql(history.url, "UPDATE leases SET token = token + 1")

    sa.event.listen(history.database._engine, "after_cursor_execute", edit_once)
    assert history.verified.unchanged(0)[1] == before and edited
    sa.event.remove(history.database._engine, "after_cursor_execute", edit_once)
    assert history.verified.unchanged(0)[1] != before


def test_the_engine_checks_an_unchanged_journal_without_sealing_a_row_or_writing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second check finds the journal as the first left it: no row checked, nothing written."""
    engine.rotate("app/key")
    engine.trust._audit_verified = None  # as a new process finds it
    first = engine.check_state()
    assert first.intact and not first.unchanged
    engine.trust._audit_verified = None
    sent = _statements(engine.journal)
    monkeypatch.setattr(engine.journal.trail, "verify", _not_again)
    monkeypatch.setattr(engine.journal.tampering, "find_in", _not_again)
    second = engine.check_state()
    assert second.intact and second.unchanged and second.records == 0
    assert (second.head_seq, second.head_hash) == (first.head_seq, first.head_hash)
    assert not [s for s in sent if s.split()[0] in ("INSERT", "UPDATE", "DELETE")], sent


#: The checks that keep the journal as found when it is intact.
CHECKS = {
    "check-state": lambda engine: engine.check_state(),
    "watch": lambda engine: engine.check_audit(unless_unchanged=True),
}


@pytest.mark.parametrize("check", CHECKS)
def test_a_row_put_back_while_the_check_reads_is_not_kept_as_checked(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    """An edit undone while a check reads the journal, then made again, is still found.

    The check reads one state: the edit it digested is the edit it checks,
    so the digest of the edited journal is never kept as found intact.
    """
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    engine.check_state()  # keeps the journal as found
    before = engine.journal.verified.unchanged(0)[1]
    edit, undo = "UPDATE rotations SET state = 'done'", "UPDATE rotations SET state = 'grace'"
    run_sql(engine.journal.url, edit)
    run_sql(engine.journal.url, undo)
    assert engine.journal.verified.unchanged(0)[1] == before  # undone, the content is as it was
    run_sql(engine.journal.url, edit)
    digest = engine.journal.verified.digest

    def then_undone(conn: object) -> str:
        found = digest(conn)  # type: ignore[arg-type]
        run_sql(engine.journal.url, undo)  # while the check goes on
        return found

    monkeypatch.setattr(engine.journal.verified, "digest", then_undone)
    engine.trust._audit_verified = None
    assert CHECKS[check](engine).tampering  # it checked what it digested: the edit
    monkeypatch.undo()
    run_sql(engine.journal.url, edit)  # and made again
    engine.trust._audit_verified = None
    again = engine.check_state()
    assert not again.unchanged and again.tampering


def test_a_check_writes_nothing_while_it_holds_its_state_of_the_journal(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest kept and the alerts raised are written after the check's read has ended.

    A migration queued behind that read (PostgreSQL) must never wait on a
    write of the same process that the read itself waits for.
    """
    held: list[bool] = []
    writes: list[bool] = []
    snapshot, write = engine.journal.database.snapshot, engine.journal.database.write

    @contextmanager
    def holding() -> Iterator[object]:
        with snapshot() as state:
            held.append(True)
            try:
                yield state
            finally:
                held.pop()

    def writing() -> object:
        writes.append(bool(held))
        return write()

    monkeypatch.setattr(engine.journal.database, "snapshot", holding)
    monkeypatch.setattr(engine.journal.database, "write", writing)
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    writes.clear()  # the rotation's own
    assert engine.check_state().intact
    assert writes and engine.journal.verified.unchanged(0)[0] is not None  # a digest kept
    kept = len(writes)
    run_sql(engine.journal.url, "UPDATE rotations SET state = 'done'")
    engine.trust._audit_verified = None
    assert engine.check_state().tampering
    assert len(writes) > kept and engine.journal.alerts.rows()  # alerts written
    assert not any(writes), writes  # none while a check's read was open


def test_a_journal_with_no_record_yet_is_kept_too(engine: Engine) -> None:
    """An empty chain is kept at its start: the next check finds it unchanged, with no head."""
    engine.journal.migrate()
    assert engine.check_state().intact
    engine.trust._audit_verified = None
    again = engine.check_state()
    assert again.intact and again.unchanged and again.head_seq is None


def _not_again(*_: object, **__: object) -> object:
    raise AssertionError("the rows or the chain were checked again")


def test_the_watch_pass_checks_an_unchanged_journal_without_sealing_a_row(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between full checks, the watch spares the rows a check found intact; full ones do not."""
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    first = engine.check_state()  # as the service's first pass, before its first watch
    verify = calls_of(monkeypatch, engine.journal.trail, "verify")
    watched = engine.check_audit(unless_unchanged=True)
    assert watched.intact and watched.unchanged and not verify
    assert (watched.head_seq, watched.head_hash) == (first.head_seq, first.head_hash)
    full = engine.check_audit(full=True)  # every 24th watch, and `audit verify`: every row
    assert full.intact and full.whole and not full.unchanged and len(verify) == 1


def test_the_watch_pass_keeps_what_it_found_intact(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch that checked every row spares the next one (of any process)."""
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    assert not engine.check_audit(unless_unchanged=True).unchanged
    monkeypatch.setattr(engine.journal.trail, "verify", _not_again)
    engine.trust._audit_verified = None
    assert engine.check_audit(unless_unchanged=True).unchanged


def test_a_watch_from_the_start_does_not_take_a_check_from_a_later_record(
    engine: Engine,
) -> None:
    """A journal found intact by a check from a later record is checked whole from the start."""
    engine.rotate("app/key")
    report = engine.check_audit(full=True)
    assert report.head_seq is not None and report.head_hash is not None
    _, digest = engine.journal.verified.unchanged(0)
    engine.journal.verified.keep(digest, report.head_seq, (report.head_seq, report.head_hash))
    assert engine.check_audit(unless_unchanged=True).unchanged  # from the last verified record
    engine.trust._audit_verified = None  # a new process, no anchor: from the start
    whole = engine.check_audit(unless_unchanged=True)
    assert whole.intact and whole.whole and not whole.unchanged


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(
    "forge",
    ["UPDATE rotations SET state = 'done'", "UPDATE audit SET detail = 'x' WHERE seq = 1"],
    ids=["rotation", "first-record"],
)
def test_tampering_after_a_check_kept_the_journal_is_still_found(
    engine: Engine, tmp_path: Path, forge: str, check: str
) -> None:
    """An edit made after a check found the journal intact is found by the next check."""
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    assert engine.check_state().intact
    run_sql(engine.journal.url, forge)
    engine.trust._audit_verified = None
    report = CHECKS[check](engine)
    assert not report.intact and not report.unchanged
    assert engine.trust.trail_problem or engine.trust._tampered


# -- the engine refuses to act on a forged row --------------------------------------------


@pytest.fixture
def engine(aws_in_process: None, tmp_path: Path, clock: FakeClock) -> Engine:
    """An engine over one secret in moto, whose old credentials' revocations are recorded."""
    watched_secret()
    return watched_engine(tmp_path, clock)


FAR = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        (
            lambda: f"UPDATE rotations SET grace_deadline = '{FAR:%Y-%m-%d %H:%M:%S}'",
            "keep the old key alive",
        ),
        (lambda: "UPDATE rotations SET grace_deadline = created_at", "revoke the old key early"),
        (lambda: "UPDATE rotations SET state = 'done'", "forget the old key"),
        (lambda: "UPDATE rotations SET state = 'revoked-early'", "a state rotator has not"),
        (lambda: "UPDATE rotations SET known_refs = '[\"v1\"'", "refs that are no JSON"),
        (lambda: "UPDATE rotations SET known_refs = '7'", "refs that are no list"),
        (lambda: "UPDATE rotations SET promoted_at = 'yesterday'", "a time that is no time"),
    ],
    ids=[
        "deadline-2099",
        "deadline-early",
        "state-done",
        "state-unknown",
        "refs-no-json",
        "refs-no-list",
        "time-no-time",
    ],
)
def test_the_engine_does_not_act_on_a_forged_rotation(
    engine: Engine, tmp_path: Path, clock: FakeClock, forge: Callable[[], str], why: str
) -> None:
    """A grace deadline or state edited in the database: needs attention, critical, nothing done."""
    engine.rotate("app/key")
    run_sql(engine.journal.url, forge())
    clock.advance(timedelta(hours=2))  # past the real deadline
    report = engine.run_once()
    assert report.exit_code == 1, why
    assert "not as rotator wrote" in report.attention[0].message
    assert WatchedIssuer.revoked == []  # the old credential was neither revoked early nor forgotten
    [alert] = [a for a in recorded_alerts(tmp_path) if a["event"] == "journal-tampered"]
    assert alert["severity"] == "critical" and alert["secret"] == "app/key"
    [item] = engine.plan()
    assert item.action is Action.ATTENTION
    assert engine.rotate("app/key").exit_code == 1  # not by hand either
    engine.run_once()
    tampered = [a for a in recorded_alerts(tmp_path) if a["event"] == "journal-tampered"]
    assert len(tampered) == 1, tampered


@pytest.mark.parametrize(
    ("forge", "column"),
    [
        ("UPDATE events SET at = 'yesterday'", "events.at"),
        ("UPDATE audit SET at = x'00' WHERE seq = 2", "audit.at"),
        ("UPDATE audit SET seq = 'x' WHERE seq = 1", "audit.seq"),
        ("UPDATE audit SET event_id = 'x'", "audit.event_id"),
        ("UPDATE audit_head SET seq = 'x'", "audit_head.seq"),
        ("UPDATE leases SET expires_at = '2026-02-30 10:00:00.000000'", "leases.expires_at"),
        ("UPDATE leases SET token = 'x'", "leases.token"),
        ("UPDATE alerts SET attempts = 4.5", "alerts.attempts"),
        ("UPDATE audit_head SET accepted = 'x'", "audit_head.accepted"),
    ],
)
def test_a_column_holding_what_rotator_never_writes_is_reported_not_raised(
    engine: Engine, tmp_path: Path, clock: FakeClock, forge: str, column: str
) -> None:
    """SQLite keeps any value anywhere: the checks report it, and nothing is acted on.

    Before, ``audit verify`` and every run failed with the driver's
    ValueError or TypeError: the tamper check itself undone by the tampering.
    """
    engine.rotate("app/key")
    # A lease that has run out by the run below (which could then take it).
    engine.journal.leases.acquire("app/key", "someone", timedelta(minutes=1))
    engine.journal.alerts.raised("app/key", "needs-attention", "n", "c", "{}")
    run_sql(engine.journal.url, forge)
    said = f"the journal's {column} holds what rotator never writes there"
    report = engine.journal.trail.verify()
    assert not report.intact and said in report.tampering[0].what
    clock.advance(timedelta(hours=2))  # past the grace deadline: the old key is due for revoking
    run = engine.run_once()
    assert run.exit_code == 1 and said in run.attention[0].message
    assert WatchedIssuer.revoked == []
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    result = CliRunner().invoke(cli, ["audit", "verify", *args])
    assert result.exit_code == 1 and said in result.output, result.output


@pytest.mark.parametrize(
    "forge",
    [
        "at = 7",
        "at = 'yesterday'",
        "seal = x'00'",
        "seal = 'é'",
        "head_seq = 'x'",
        "chain_from = x'00'",
    ],
)
def test_a_kept_digest_holding_what_rotator_never_writes_is_not_taken(
    engine: Engine, forge: str
) -> None:
    """The digest a check kept, edited to hold junk, spares no check: the next one is full."""
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    assert engine.check_state().intact
    engine.trust._audit_verified = None
    assert engine.check_state().unchanged  # the digest kept is taken
    run_sql(engine.journal.url, f"UPDATE verified SET {forge}")
    engine.trust._audit_verified = None
    report = engine.check_state()
    assert report.intact and not report.unchanged


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("rotations", "seal"),
        ("events", "seal"),
        ("leases", "seal"),
        ("alerts", "seal"),
        ("audit_head", "seal"),
        ("audit", "hash"),
    ],
)
def test_a_seal_that_is_not_ascii_is_found_not_matching(
    history: Journal, table: str, column: str
) -> None:
    """A seal or hash that is no ASCII text does not match: found, never raised.

    ``hmac.compare_digest`` raises TypeError on such text (either database)
    where it would answer False; before, the checks and reads failed with it.
    """
    history.alerts.raised("app/db", "needs-attention", "n", "c", "{}")
    run_sql(history.url, f"UPDATE {table} SET {column} = :v", v="é" * 64)
    report = history.trail.verify()
    assert not report.intact
    history.tampering.find("app/db")  # answers, whatever it finds
    summaries = history.summaries()
    intact = {name: s.last_rotation.intact for name, s in summaries.items() if s.last_rotation}
    # Every rotation's seal edited, or none: read, and intact as its seal says.
    assert intact == {"app/db": table != "rotations", "app/api": table != "rotations"}


@pytest.mark.parametrize(
    ("forge", "said"),
    [
        (
            "UPDATE rotations SET grace_deadline = 'infinity' WHERE id = 'app/db-1'",
            "rotation app/db-1 of app/db",
        ),
        (
            "UPDATE events SET at = '20000-01-01' WHERE secret = 'app/db'",
            "the journal's events.at holds what rotator never writes there",
        ),
        (
            "UPDATE audit SET at = '-infinity' WHERE seq = 2",
            "the journal's audit.at holds what rotator never writes there",
        ),
    ],
)
def test_a_time_python_cannot_hold_is_reported_not_raised(
    history: Journal, clock: FakeClock, forge: str, said: str
) -> None:
    """PostgreSQL keeps infinity and years past 9999, which psycopg cannot load (SQLite: text).

    Before, on PostgreSQL, the checks, the digest and every secret's
    summaries failed with the driver's DataError. Now a rotation holding one
    sets its secret alone aside, and elsewhere the journal is held, its
    table and column named, as on SQLite.
    """
    run_sql(history.url, forge)
    report = history.trail.verify()
    assert not report.intact and said in report.tampering[0].what
    engine = Engine({}, history, clock=clock)
    assert not engine.check_state().intact
    summaries = history.summaries()
    if forge.startswith("UPDATE rotations"):
        assert "app/db" in engine.trust._tampered and engine.trust.trail_problem is None
        assert "grace_deadline holds no time" in (summaries["app/db"].unreadable or "")
        assert summaries["app/api"].unreadable is None
    else:
        assert engine.trust.trail_problem is not None and said in engine.trust.trail_problem
    history.verified.unchanged(0)  # the digest reads every row: it answers


@pytest.mark.parametrize("table", ["events", "leases", "alerts"])
def test_a_secret_column_holding_bytes_is_named_as_text_and_the_run_goes_on(
    engine: Engine, tmp_path: Path, clock: FakeClock, table: str
) -> None:
    """Bytes as the secret of an event, a lease or an alert: found, named as text, the run goes on.

    Before, the finding carried the bytes, and raising its alert (JSON)
    failed the run, and the service with it. (A lease or an alert moved to
    another name leaves app/key's own rows whole: it is rotated.)
    """
    engine.rotate("app/key")
    engine.journal.leases.acquire("app/key", "someone", timedelta(minutes=1))
    engine.journal.alerts.raised("app/key", "needs-attention", "n", "c", "{}")
    run_sql(engine.journal.url, f"UPDATE {table} SET secret = x'00ff'")
    clock.advance(timedelta(hours=2))
    engine.run_once()  # raises nothing
    found = engine.journal.trail.verify().tampering
    assert found and all(type(t.secret) is str for t in found)
    assert "b'\\x00\\xff'" in {t.secret for t in found} | set(engine.trust._tampered)


def test_bytes_in_an_audit_record_are_found_edited_and_exported(
    engine: Engine, tmp_path: Path
) -> None:
    """Bytes SQLite kept in a record's text column: the record is found edited; export writes it."""
    engine.rotate("app/key")
    run_sql(engine.journal.url, "UPDATE audit SET actor = x'00ff' WHERE seq = 2")
    run_sql(engine.journal.url, "UPDATE events SET detail = x'00ff' WHERE step = 'verify'")
    report = engine.journal.trail.verify()
    assert report.problem is not None and report.broken_at == 2
    assert "does not match its hash: edited" in report.problem
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    exported = CliRunner().invoke(cli, ["audit", "export", *args])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout.splitlines()[1])["actor"] == "b'\\x00\\xff'"
    shown = CliRunner().invoke(cli, ["history", "app/key", "--json", *args])
    assert shown.exit_code == 0, shown.output
    details = [step["detail"] for r in json.loads(shown.stdout) for step in r["steps"]]
    assert "b'\\x00\\xff'" in details  # printed as its repr


def test_audit_verify_names_tampered_rows_and_exits_1(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI prints each tampered row (and lists them in --json) and exits 1."""
    engine.rotate("app/key")
    run_sql(engine.journal.url, "UPDATE rotations SET extensions = 3")
    run_sql(engine.journal.url, "DELETE FROM events WHERE step = 'verify'")
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    result = CliRunner().invoke(cli, ["audit", "verify", *args])
    assert result.exit_code == 1, result.output
    assert "TAMPERED: rotation" in result.output and "does not match its seal" in result.output
    assert "is gone: deleted" in result.output
    result = CliRunner().invoke(cli, ["audit", "verify", "--json", *args])
    data = json.loads(result.stdout)
    assert data["intact"] is False
    assert {t["secret"] for t in data["tampered"]} == {"app/key"}


# -- a person accepts the journal as found -------------------------------------------------


def test_accept_takes_the_rows_as_found_and_records_who_and_why(
    engine: Engine, tmp_path: Path, clock: FakeClock
) -> None:
    """After checking, `audit accept` reseals, records the finding, and the secret runs again."""
    engine.rotate("app/key")
    [rotation] = engine.journal.open_rotations("app/key")
    url = engine.journal.url
    run_sql(url, "UPDATE rotations SET grace_deadline = created_at")
    run_sql(url, "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    args = ["--config", str(tmp_path / "p.yaml"), "--state", url]
    refused = CliRunner().invoke(cli, ["audit", "accept", "--reason", "checked", *args])
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    assert not engine.journal.trail.verify().intact  # nothing changed
    result = CliRunner().invoke(
        cli, ["audit", "accept", "--reason", "INC-42: DBA restored a row", "--yes", *args]
    )
    assert result.exit_code == 0, result.output
    assert "TAMPERED: rotation" in result.output and "cut after record" in result.output
    # The cut, the edited row, and the step whose record was cut off.
    assert "accepted 3 finding(s)" in result.output
    assert engine.journal.trail.verify().intact
    accepted = [r for r in engine.journal.trail.records() if r.action == "tampering-accepted"]
    assert accepted[-1].reason == "INC-42: DBA restored a row"
    assert accepted[-1].actor.startswith("operator:")
    assert "does not match its seal" in (accepted[-1].detail or "")
    clock.advance(timedelta(minutes=1))
    report = engine.run_once()
    assert report.exit_code == 0  # acted on again: the accepted (earlier) deadline has passed
    assert WatchedIssuer.revoked == [rotation.old_ref]
    assert engine.journal.trail.verify().intact


def test_accept_refuses_a_row_rotator_cannot_read_and_accepts_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    """A state rotator has not, sealed as found, would stop the secret for good: refused.

    Once the person puts back a value rotator writes, the row is accepted.
    """
    engine.rotate("app/key")
    url = engine.journal.url
    run_sql(url, "UPDATE rotations SET state = 'revoked-early'")
    before = engine.journal.trail.verify().tampering
    records = len(list(engine.journal.trail.records()))
    args = ["--config", str(tmp_path / "p.yaml"), "--state", url]
    refused = CliRunner().invoke(cli, ["audit", "accept", "--reason", "x", "--yes", *args])
    assert refused.exit_code == 2, refused.output
    assert "state holds no state rotator has" in refused.output
    assert "nothing was accepted" in refused.output
    assert engine.journal.trail.verify().tampering == before  # nothing sealed, nothing moved
    assert len(list(engine.journal.trail.records())) == records
    run_sql(url, "UPDATE rotations SET state = 'done'")
    result = CliRunner().invoke(cli, ["audit", "accept", "--reason", "x", "--yes", *args])
    assert result.exit_code == 0, result.output
    assert engine.journal.trail.verify().intact


def test_accept_with_nothing_to_accept_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    """An intact journal: accept says so, exits 0 and appends nothing."""
    engine.rotate("app/key")
    before = len(list(engine.journal.trail.records()))
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    result = CliRunner().invoke(cli, ["audit", "accept", "--reason", "x", "--yes", *args])
    assert result.exit_code == 0 and "nothing to accept" in result.output
    assert len(list(engine.journal.trail.records())) == before


def test_accept_json_needs_yes_and_lists_what_was_accepted(engine: Engine, tmp_path: Path) -> None:
    """--json without --yes is refused (a prompt cannot be answered in JSON); with it, the list."""
    engine.rotate("app/key")
    run_sql(engine.journal.url, "UPDATE rotations SET grace_deadline = created_at")
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    refused = CliRunner().invoke(cli, ["audit", "accept", "--reason", "x", "--json", *args])
    assert refused.exit_code == 2 and "--yes" in refused.stderr and refused.stdout == ""
    assert not engine.journal.trail.verify().intact  # nothing was accepted
    accept = ["audit", "accept", "--reason", "INC-9", "--yes", "--json", *args]
    result = CliRunner().invoke(cli, accept)
    assert result.exit_code == 0, result.output
    [finding] = json.loads(result.stdout)["accepted"]
    assert finding["secret"] == "app/key" and "does not match its seal" in finding["problem"]
    assert engine.journal.trail.verify().intact
    again = CliRunner().invoke(cli, accept)
    assert again.exit_code == 0 and json.loads(again.stdout) == {"accepted": []}


# -- an anchor outside the database ---------------------------------------------------------


def test_an_anchor_file_finds_a_journal_restored_from_an_older_copy(
    engine: Engine, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROTATOR_AUDIT_ANCHOR keeps the verified head: an older copy of the journal is refused."""
    anchor = tmp_path / "anchor"
    monkeypatch.setenv("ROTATOR_AUDIT_ANCHOR", str(anchor))
    database = Path(engine.journal.url.removeprefix("sqlite:///"))
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    engine.rotate("app/key")
    older = tmp_path / "older.db"
    with sqlite3.connect(database) as live, sqlite3.connect(older) as copy:
        live.backup(copy)
    clock.advance(timedelta(hours=2))
    engine.run_once()  # the old credential is revoked: records after the copy
    verified = CliRunner().invoke(cli, ["audit", "verify", *args])
    assert verified.exit_code == 0, verified.output
    seq, _, digest = anchor.read_text().strip().partition(":")
    assert int(seq) > 0 and len(digest) == 64
    with sqlite3.connect(older) as copy, sqlite3.connect(database) as live:
        copy.backup(live)  # the copy is put back (its sealed head agrees with it)
    assert engine.journal.trail.verify().intact  # from inside the database it looks whole
    refused = CliRunner().invoke(cli, ["audit", "verify", *args])
    assert refused.exit_code == 1 and f"record {seq}" in refused.output
    engine.anchor = AnchorFile(anchor)
    report = engine.run_once()
    assert report.exit_code == 1
    assert all("anchored audit record" in o.message for o in report.failed)


@pytest.mark.parametrize("check", ["check-state", "watch", "watch-full"])
def test_a_running_process_finds_a_journal_restored_under_it_from_an_older_copy(
    engine: Engine, tmp_path: Path, clock: FakeClock, check: str
) -> None:
    """Without an anchor file, the process remembers the last record it verified.

    The copy carries the digest its own check kept, so it is found unchanged:
    that must not take the process back to the copy's older head.
    """
    database = Path(engine.journal.url.removeprefix("sqlite:///"))
    engine.rotate("app/key")
    engine.trust._audit_verified = None
    assert engine.check_state().intact  # keeps the digest of this journal
    older = tmp_path / "older.db"
    with sqlite3.connect(database) as live, sqlite3.connect(older) as copy:
        live.backup(copy)
    clock.advance(timedelta(hours=2))
    engine.run_once()  # the old credential is revoked: records after the copy
    engine.check_state()  # this process verifies them
    verified = engine.trust._audit_verified
    with sqlite3.connect(older) as copy:
        [(copied_head,)] = copy.execute("SELECT max(seq) FROM audit").fetchall()
    assert verified is not None and copied_head < verified[0]
    engine.journal.close()
    with sqlite3.connect(older) as copy, sqlite3.connect(database) as live:
        copy.backup(live)  # the copy is put back, its verified digest with it
    report = {**CHECKS, "watch-full": lambda e: e.check_audit(full=True)}[check](engine)
    problem = engine.trust.trail_problem
    assert problem is not None and f"audit record {verified[0]}" in problem, report
    assert engine.check_audit(unless_unchanged=True) and engine.trust.trail_problem == problem
    assert engine.run_once().exit_code == 1  # nothing acted on until a person checks
    # Others go on writing to the older chain, past the record this process verified:
    # the chain looks whole again from its start, and the process still acts on nothing.
    for _ in range(verified[0] - copied_head + 1):
        engine.journal.trail.note(AuditAction.REVOKED_CREDENTIAL_USED, "ok", "seen in use")
    assert engine.journal.trail.verify().intact  # whole from its start, and past the record
    for check_again in (*CHECKS.values(), lambda e: e.check_audit(full=True)):
        check_again(engine)
        assert engine.trust.trail_problem == problem
    assert engine.run_once().exit_code == 1


def test_a_check_that_cannot_read_the_journal_keeps_looking_for_the_record_it_verified(
    engine: Engine, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal restored from an older copy and made unreadable at once is still found restored.

    A check that stops on a value it cannot read past holds everything, and
    keeps the record this process verified: once that value is gone, the next
    check finds the record missing (before, it had forgotten it, and took the
    older chain as whole).
    """
    database = Path(engine.journal.url.removeprefix("sqlite:///"))
    engine.rotate("app/key")
    older = tmp_path / "older.db"
    with sqlite3.connect(database) as live, sqlite3.connect(older) as copy:
        live.backup(copy)
    clock.advance(timedelta(hours=2))
    engine.run_once()  # records after the copy
    engine.check_state()
    verified = engine.trust._audit_verified
    assert verified is not None
    engine.journal.close()
    with sqlite3.connect(older) as copy, sqlite3.connect(database) as live:
        copy.backup(live)
    unreadable = JournalTampered("the journal's events.at holds what rotator never writes there")

    def cannot_read(*_: object, **__: object) -> object:
        raise unreadable

    with monkeypatch.context() as patched:
        patched.setattr(engine.journal.verified, "unchanged", cannot_read)
        report = engine.check_state()
    assert not report.intact and engine.trust.trail_problem == str(unreadable)
    assert engine.trust._audit_verified == verified  # still looked for
    engine.check_state()
    problem = engine.trust.trail_problem
    assert problem is not None and f"audit record {verified[0]}" in problem
    assert engine.run_once().exit_code == 1


def test_checks_beside_concurrent_writers_find_nothing(journal: Journal, clock: FakeClock) -> None:
    """Rows and records written while a check reads them are never taken for tampering."""
    _to_grace(journal, clock, "app/db", 0)
    stop, writing = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    written = [0]

    def write() -> None:
        try:
            while not stop.is_set():
                written[0] += 1
                _to_grace(journal, clock, f"app/w{written[0] % 3}", written[0])
                writing.set()
        except BaseException as exc:  # reported below
            failures.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(30)
        before = written[0]
        found = [journal.tampering.find(f"app/w{i % 3}") for i in range(30)]
        found += [journal.tampering.find() for _ in range(5)]
        during = written[0] - before
    finally:
        stop.set()
        writer.join()
    assert failures == []
    if journal.url.startswith("postgresql"):
        # The checks really ran beside writes. (On SQLite a read holds the write
        # lock, BEGIN IMMEDIATE: checks and writes take turns by design.)
        assert during > 0
    assert [f for f in found if f] == []


# -- alerts cannot be silenced, the upgrade cannot be replayed -----------------------------


def test_an_alert_marked_sent_outside_rotator_is_sent_again(journal: Journal) -> None:
    """Marking an undelivered alert sent in the database does not silence it."""
    assert journal.alerts.raised("app/db", "journal-tampered", "ops", "c1", "{}")
    assert [a.condition for a in journal.alerts.rows(unsent=True)] == ["c1"]
    run_sql(journal.url, "UPDATE alerts SET sent_at = raised_at")
    assert [a.condition for a in journal.alerts.rows(unsent=True)] == ["c1"]
    [found] = journal.trail.verify().tampering
    assert "journal-tampered alert of app/db to ops does not match its seal" in found.what


def test_an_alert_raised_outside_rotator_does_not_stop_the_real_one(journal: Journal) -> None:
    """A row planted with the condition rotator is about to raise is overwritten and sent."""
    run_sql(
        journal.url,
        "INSERT INTO alerts (secret, event, notifier, condition, raised_at, sent_at, attempts, "
        "payload) SELECT 'app/db', 'journal-tampered', 'ops', 'c1', applied_at, applied_at, 1, "
        "'{}' FROM schema_migrations WHERE version = 1",
    )
    assert journal.alerts.raised("app/db", "journal-tampered", "ops", "c1", "{}")
    assert [a.condition for a in journal.alerts.rows(unsent=True)] == ["c1"]
    assert not journal.alerts.raised("app/db", "journal-tampered", "ops", "c1", "{}")


def test_the_sealing_upgrade_cannot_be_replayed_to_launder_edits(
    history: Journal, clock: FakeClock
) -> None:
    """Deleting the upgrade's row in schema_migrations would re-seal edited rows: refused."""
    run_sql(history.url, "UPDATE rotations SET grace_deadline = NULL WHERE id = 'app/db-1'")
    run_sql(history.url, "DELETE FROM audit_head")
    run_sql(history.url, "DELETE FROM schema_migrations WHERE version = 5")
    with pytest.raises(JournalTampered, match="sealed before"):
        history.migrate()
    assert not history.trail.verify().intact


@pytest.mark.parametrize(
    "forge",
    [
        "UPDATE alerts SET sent_at = NULL, payload = replace(payload, 'overdue since', 'ignore')",
        "UPDATE alerts SET sent_at = NULL, attempts = 30",
    ],
    ids=["reworded", "given-up-on"],
)
def test_an_altered_alert_is_replaced_by_a_critical_one(
    engine: Engine, tmp_path: Path, forge: str
) -> None:
    """A reworded or given-up alert row is not sent as written: a critical alert says why."""
    engine.journal.migrate()
    engine.alerting.raise_alert(
        AlertEvent.OVERDUE,
        Severity.WARNING,
        "app/key: overdue since yesterday",
        secret="app/key",
        condition="c1",
        to=["ops"],
    )
    assert [a["summary"] for a in recorded_alerts(tmp_path)] == ["app/key: overdue since yesterday"]
    run_sql(engine.journal.url, forge)
    engine.alerting.flush()
    *_, last = recorded_alerts(tmp_path)
    assert last["event"] == "journal-tampered" and last["severity"] == "critical"
    assert "altered in the journal outside rotator" in last["summary"]
    assert "ignore" not in last["summary"]
    assert engine.journal.trail.verify().intact  # the replacement is rotator's own row
    engine.alerting.flush()
    assert len(recorded_alerts(tmp_path)) == 2  # sent once


# -- the chain itself: an edited record vouches for nothing -------------------------------


def test_an_edited_record_stops_the_engine_until_a_person_accepts(
    engine: Engine, tmp_path: Path, clock: FakeClock
) -> None:
    """A record edited in the trail: its row is not trusted, nothing is done, accept lifts it."""
    engine.rotate("app/key")
    [rotation] = engine.journal.open_rotations("app/key")
    last = max(r.seq for r in engine.journal.trail.records(secret="app/key"))
    run_sql(engine.journal.url, f"UPDATE audit SET detail = detail || ' ' WHERE seq = {last}")
    [found] = engine.journal.tampering.find("app/key")
    assert f"audit record {last}, which last wrote rotation" in found.what
    clock.advance(timedelta(hours=2))
    report = engine.run_once()
    assert report.exit_code == 1 and WatchedIssuer.revoked == []
    assert "the audit trail" in report.attention[0].message
    args = ["--config", str(tmp_path / "p.yaml"), "--state", engine.journal.url]
    accepted = CliRunner().invoke(cli, ["audit", "accept", "--reason", "INC-7", "--yes", *args])
    assert accepted.exit_code == 0, accepted.output
    report = engine.run_once()
    assert report.exit_code == 0, [o.message for o in report.failed]
    assert WatchedIssuer.revoked == [rotation.old_ref]
    # The edited record stays edited: the full verification still says so.
    assert CliRunner().invoke(cli, ["audit", "verify", *args]).exit_code == 1


def test_run_once_keeps_the_anchor_and_checks_only_what_is_new(
    engine: Engine, tmp_path: Path, clock: FakeClock
) -> None:
    """With an anchor file, each run verifies from the kept head and moves it forward."""
    anchor = AnchorFile(tmp_path / "anchor")
    engine.anchor = anchor
    engine.rotate("app/key")
    assert anchor.read() is None  # checked before anything was written: nothing to keep
    engine.run_once()
    first = anchor.read()
    assert first is not None
    clock.advance(timedelta(hours=2))
    engine.run_once()  # revokes: records after the kept head
    engine.run_once()
    second = anchor.read()
    assert second is not None and second[0] > first[0]
    report = engine.check_state()
    assert report.intact and report.records == 0  # nothing new since the kept head


def test_the_audit_sink_and_the_anchor_never_write_through_a_planted_link(
    tmp_path: Path,
) -> None:
    """A link planted at the sink's or the anchor's name leaves its target untouched."""
    from rotator.journal.audit import AuditRecord, JsonlSink

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "sink.jsonl").symlink_to(victim)
    record = AuditRecord(seq=1, at=datetime.now(UTC), actor="a", action="manual", outcome="ok")
    JsonlSink(str(tmp_path / "sink.jsonl"))(record)
    assert victim.read_text() == "precious\n"
    (tmp_path / "anchor").symlink_to(victim)
    AnchorFile(tmp_path / "anchor").write(7, "a" * 64)
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "anchor").is_symlink()
    assert (tmp_path / "anchor").read_text() == f"7:{'a' * 64}\n"


def test_a_secrets_check_and_its_unfinished_rotations_are_read_at_once(
    history: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run reads first under a lease: the secret's findings and open rotations, one read."""
    reads = calls_of(monkeypatch, history.database, "read")
    found, unfinished = history.checked_open_rotations("app/db")
    assert found == () and [r.id for r in unfinished] == ["app/db-1"]
    assert len(reads) == 1
    assert unfinished == history.open_rotations("app/db")
    run_sql(history.url, "UPDATE rotations SET state = 'verified' WHERE id = 'app/db-1'")
    found, unfinished = history.checked_open_rotations("app/db")
    assert [t.what for t in found] == [t.what for t in history.tampering.find("app/db")]
    assert "rotation app/db-1 of app/db does not match its seal" in found[0].what
    assert unfinished == []  # nothing is done for it: nor read (an edited row may not read)
    assert history.checked_open_rotations("app/api")[0] == ()
