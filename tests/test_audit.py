"""The audit trail: every action chained, tampering found, exported, shipped, never a value."""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rotator.cli.main import cli
from rotator.engine.runner import Engine
from rotator.journal.audit import (
    GENESIS,
    AuditRecord,
    JsonlSink,
    actor,
    chain_key,
    seal_row,
    seal_time,
    verify_chain,
)
from rotator.journal.journal import Journal
from rotator.journal.records import Rotation
from rotator.lifecycle import State, Step, Transition
from rotator.policy.loader import load_policies
from tests.conftest import AWS_REGION, FakeClock, run_sql

REGION = AWS_REGION
POLICY = """
secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db}
    issuer: {kind: random, length: 24}
    targets:
      - {provider: aws-secretsmanager, secret_id: app/db-replica}
    schedule: {every: 30d}
    grace: 1h
"""


@pytest.fixture
def aws(aws_in_process: None) -> Any:
    """In-process moto with the two secrets of POLICY."""
    sm = boto3.client("secretsmanager", region_name=REGION)
    sm.create_secret(Name="app/db", SecretString="first-value-of-app-db")
    sm.create_secret(Name="app/db-replica", SecretString="first-value-of-app-db")
    return sm


def _engine(tmp_path: Path, clock: FakeClock, **journal: Any) -> Engine:
    (tmp_path / "p.yaml").write_text(POLICY)
    return Engine(
        load_policies(tmp_path / "p.yaml"),
        Journal(f"sqlite:///{tmp_path / 'j.db'}", clock, **journal),
        clock=clock,
        sleep=clock.sleep,
    )


def _rotation(journal: Journal, clock: FakeClock, name: str, number: int) -> Rotation:
    return journal.create(
        Rotation(
            id=f"{name}-{number}",
            secret=name,
            state=State.PLANNED,
            trigger="manual",
            created_at=clock(),
            updated_at=clock(),
        )
    )


def _steps(journal: Journal, clock: FakeClock, count: int = 3) -> None:
    """Write a few rotations' worth of events (about three records each)."""
    for number in range(count):
        rotation = _rotation(journal, clock, "app", number)
        clock.advance(timedelta(seconds=1))
        rotation = journal.advance(rotation, Transition.MINTED, "minted", new_ref="r")
        journal.record(rotation, Step.STORE, "retry", "throttled (attempt 1 of 4)")


def test_a_rotation_leaves_one_chained_record_per_action(
    aws: Any, tmp_path: Path, clock: FakeClock
) -> None:
    """Rotate, revoke: each action is a record, linked to the one before, with fingerprints."""
    engine = _engine(tmp_path, clock, actor="operator:alice@host")
    engine.rotate("app/db", reason="quarterly")
    clock.advance(timedelta(hours=2))
    engine.run_once()
    records = list(engine.journal.trail.records())
    assert [r.action for r in records] == [
        "manual",
        "inventory",
        "minted",
        "stored-pending",
        "propagated-to-target",
        "propagated",
        "verified",
        "promoted",
        "revoked",
        "deleted",
    ]
    assert [r.seq for r in records] == list(range(1, 11))
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert {r.actor for r in records} == {"operator:alice@host"}
    assert {r.reason for r in records} == {"quarterly"}
    promoted = records[7]
    assert promoted.new_fingerprint and promoted.old_fingerprint
    assert promoted.new_fingerprint != promoted.old_fingerprint
    assert records[4].detail == "target 1: aws-secretsmanager:app/db-replica"
    assert engine.journal.trail.verify().intact


def test_no_value_reaches_the_audit_trail(aws: Any, tmp_path: Path, clock: FakeClock) -> None:
    """Neither the old nor the new value is in the records, the export or the sink."""
    shipped = tmp_path / "audit.jsonl"
    engine = _engine(tmp_path, clock, sink=JsonlSink(str(shipped)))
    engine.rotate("app/db")
    new = aws.get_secret_value(SecretId="app/db", VersionStage="AWSCURRENT")["SecretString"]
    text = "".join(json.dumps(r.as_dict()) for r in engine.journal.trail.records())
    for value in ("first-value-of-app-db", new):
        assert value not in text
        assert value not in shipped.read_text()
        assert value.encode() not in (tmp_path / "j.db").read_bytes()


def test_verify_names_an_edited_record(journal: Journal, clock: FakeClock) -> None:
    """Changing one field of one record breaks the chain exactly at that record."""
    journal_url = journal.url
    _steps(journal, clock)
    assert journal.trail.verify().records == 9
    run_sql(journal_url, "UPDATE audit SET detail = 'nothing to see' WHERE seq = 5")
    report = journal.trail.verify()
    assert not report.intact and report.broken_at == 5 and report.records == 4
    assert "edited" in (report.problem or "")


def test_verify_names_a_deleted_record(journal: Journal, clock: FakeClock) -> None:
    """Removing a record is found at the record after the gap."""
    journal_url = journal.url
    _steps(journal, clock)
    run_sql(journal_url, "DELETE FROM audit WHERE seq = 4")
    report = journal.trail.verify()
    assert report.broken_at == 5
    assert "record 4 missing" in (report.problem or "")


def test_verify_finds_a_record_inserted_with_renumbering(
    journal: Journal, clock: FakeClock
) -> None:
    """A forged record slipped in (later ones renumbered to hide the gap) breaks its link."""
    journal_url = journal.url
    _steps(journal, clock, 2)
    run_sql(journal_url, "UPDATE audit SET seq = seq + 100 WHERE seq >= 4")
    run_sql(journal_url, "UPDATE audit SET seq = seq - 99 WHERE seq >= 100")
    forged = AuditRecord(
        seq=4, at=clock(), actor="mallory", action="revoked", outcome="ok", prev_hash="f" * 64
    ).sealed(b"a guessed key")
    run_sql(
        journal_url,
        "INSERT INTO audit (seq, at, actor, action, outcome, prev_hash, hash) "
        "VALUES (4, :at, 'mallory', 'revoked', 'ok', :prev, :hash)",
        at=clock().replace(tzinfo=None),
        prev=forged.prev_hash,
        hash=forged.hash,
    )
    report = journal.trail.verify()
    assert report.broken_at == 4


def test_verify_finds_two_records_swapped(journal: Journal, clock: FakeClock) -> None:
    """Swapping the order of two records breaks the chain at the first of them."""
    journal_url = journal.url
    _steps(journal, clock)
    run_sql(journal_url, "UPDATE audit SET seq = 1000 WHERE seq = 3")
    run_sql(journal_url, "UPDATE audit SET seq = 3 WHERE seq = 4")
    run_sql(journal_url, "UPDATE audit SET seq = 4 WHERE seq = 1000")
    report = journal.trail.verify()
    assert not report.intact and report.broken_at == 3


def test_an_anchor_finds_records_cut_off_the_end(tmp_path: Path, clock: FakeClock) -> None:
    """Cutting the newest records leaves a valid chain, but not the sealed or the anchored head."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    journal = Journal(url, clock)
    journal.migrate()
    _steps(journal, clock)
    head = journal.trail.verify()
    assert head.head_seq == 9 and head.head_hash is not None
    run_sql(url, "DELETE FROM audit WHERE seq > 6")
    sealed = journal.trail.verify()  # the head sealed in the journal no longer matches
    assert not sealed.intact and sealed.problem is None
    found = [t.what for t in sealed.tampering]
    assert (
        found[0] == "the audit trail: it ends before its sealed head (record 9): cut after record 6"
    )
    # The steps the cut records were written with are named by no record now.
    assert all("is in no audit record: inserted" in what for what in found[1:]) and found[1:]
    cut = journal.trail.verify(anchor=(head.head_seq, head.head_hash))
    assert cut.broken_at == 9 and "cut off the end" in (cut.problem or "")


def test_a_chain_rewritten_without_the_key_does_not_verify() -> None:
    """Records re-sealed under another key (no access to the key file) are refused."""
    key, other = chain_key(b"k" * 32), chain_key(b"x" * 32)
    at = datetime(2026, 11, 2, tzinfo=UTC)
    first = AuditRecord(seq=1, at=at, actor="a", action="manual", outcome="ok").sealed(other)
    report = verify_chain([first], key)
    assert report.broken_at == 1


def test_a_records_hash_is_what_it_always_was() -> None:
    """Every field, bindings included, is sealed as before: journals written earlier still verify.

    The hash was computed once by the release that wrote such records; any
    change to what the hash covers, or to how it is written, breaks it.
    """
    record = AuditRecord(
        seq=7,
        at=datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
        actor="one-shot",
        action="minted",
        outcome="ok",
        secret="app/db",
        rotation_id="ab" * 16,
        step="mint",
        old_ref="v1",
        new_ref="v2",
        prev_hash="1" * 64,
        row_seal="r" * 64,
        event_id=3,
        event_seal="e" * 64,
    )
    expected = "8d3504de90f2f2ec5654d4f542356ba3cdc6c2217eadf84cf1793334d09f5932"
    assert record.seal(b"k" * 32) == record.sealed(b"k" * 32).hash == expected
    assert verify_chain(
        [replace(record, seq=1, prev_hash=GENESIS).sealed(b"k" * 32)], b"k" * 32
    ).intact


def test_concurrent_writers_keep_one_unbroken_chain(journal: Journal, clock: FakeClock) -> None:
    """Eight threads appending at once leave every record numbered and linked."""

    def work(thread: int) -> None:
        for number in range(5):
            rotation = _rotation(journal, clock, f"s{thread}", number)
            journal.record(rotation, Step.MINT, "info", "inventory: 0 existing")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = journal.trail.verify()
    assert report.intact and report.records == 80


def test_the_sink_gets_each_record_once_committed(tmp_path: Path, clock: FakeClock) -> None:
    """Committed records are shipped as JSON lines equal to the chain's records."""
    shipped = tmp_path / "audit.jsonl"
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock, sink=JsonlSink(str(shipped)))
    journal.migrate()
    _steps(journal, clock, 2)
    lines = [json.loads(line) for line in shipped.read_text().splitlines()]
    assert lines == [r.as_dict() for r in journal.trail.records()]
    assert shipped.stat().st_mode & 0o077 == 0


def test_the_actor_names_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator is named from ROTATOR_ACTOR, then SUDO_USER; the service by its mode."""
    monkeypatch.setenv("ROTATOR_ACTOR", "alice")
    assert actor("operator").startswith("operator:alice@")
    monkeypatch.delenv("ROTATOR_ACTOR")
    monkeypatch.setenv("SUDO_USER", "bob")
    assert actor("operator").startswith("operator:bob@")
    assert actor("service").startswith("service@")


def test_cli_verify_and_export(aws: Any, tmp_path: Path, clock: FakeClock) -> None:
    """`audit verify` exits 0 then 1 naming the record; `export` gives JSON lines and CSV."""
    engine = _engine(tmp_path, clock)
    engine.rotate("app/db")
    state = f"sqlite:///{tmp_path / 'j.db'}"
    runner = CliRunner()
    args = ["--config", str(tmp_path / "p.yaml"), "--state", state]
    ok = runner.invoke(cli, ["audit", "verify", *args])
    assert ok.exit_code == 0, ok.output
    assert "8 record(s) verified" in ok.output
    exported = runner.invoke(cli, ["audit", "export", *args])
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, 9))
    as_csv = runner.invoke(cli, ["audit", "export", "--format", "csv", *args])
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["action"] for r in table] == [r["action"] for r in rows]
    later = runner.invoke(cli, ["audit", "export", "--since", "2099-01-01", *args])
    assert later.stdout == ""
    run_sql(state, "UPDATE audit SET actor = 'someone else' WHERE seq = 6")
    broken = runner.invoke(cli, ["audit", "verify", "--json", *args])
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["broken_at"] == 6


def test_cli_refuses_a_malformed_anchor(tmp_path: Path) -> None:
    """A bad --anchor is a usage error (exit 2) naming what is expected."""
    result = CliRunner().invoke(
        cli,
        ["audit", "verify", "--anchor", "12:nothex", "--state", f"sqlite:///{tmp_path / 'j.db'}"],
    )
    assert result.exit_code == 2
    assert "SEQ:HASH" in result.output


@pytest.mark.parametrize("bound", [False, True], ids=["before-bindings", "bound"])
def test_a_record_linked_in_one_go_is_the_record_numbered_then_sealed(bound: bool) -> None:
    """linked() gives the very record (and hash) that replace-then-sealed gives, bindings or not."""
    key = chain_key(b"k" * 32)
    record = AuditRecord(
        seq=0,
        at=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        actor="one-shot",
        action="minted",
        outcome="ok",
        secret="app/db",
        rotation_id="r" * 32,
        step="mint",
        detail="minted a new value at random",
        new_fingerprint="f" * 32,
        **({"row_seal": "s" * 64, "event_id": 7, "event_seal": "e" * 64} if bound else {}),
    )
    linked = record.linked(5, "p" * 64, key)
    assert linked == replace(record, seq=5, prev_hash="p" * 64).sealed(key)
    assert linked.hash == linked.seal(key) and linked.seq == 5 and linked.prev_hash == "p" * 64
    assert verify_chain([linked], key, start=(4, "p" * 64)).intact


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.one_of(st.timezones(), st.just(UTC)),
    )
)
def test_times_are_sealed_in_the_text_every_seal_was_made_with(at: datetime) -> None:
    """The faster formatting writes exactly what strftime wrote: existing seals still hold."""
    assert seal_time(at) == at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_row_seal_is_the_one_rotator_has_always_made() -> None:
    """A row's seal is pinned: a change to how rows are sealed would void every stored seal."""
    values = {
        "id": "r1",
        "secret": "app",
        "state": "done",
        "started_at": datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        "updated_at": None,
        "seal": "not sealed itself",
    }
    # Computed by the sealing that formatted times with strftime, before isoformat.
    pinned = "4de22bca94a8fc5cbe4b1486d0cb3237129e01a64b1da21caf248d8a5106020e"
    assert seal_row(b"k" * 32, "rotations", values) == pinned
