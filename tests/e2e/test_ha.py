"""High availability on one PostgreSQL journal: replicas, overlapping one-shots, a killed replica.

Real processes (`rotator run` and `rotator run --once`), moto_server, and the
PostgreSQL that `.ci/run` starts (skipped on a laptop without it, never in CI).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import empty_postgres
from tests.e2e.conftest import Rotator, client, eventually, spawn

LATER = "2099-01-01T00:00:00+00:00"  # every secret is due (never rotated), no grace ends


@pytest.fixture
def pg(rotator_cli: Rotator) -> Iterator[Rotator]:
    """The CLI on an empty PostgreSQL journal, one fingerprint key shared by every process."""
    rotator_cli.state = empty_postgres()
    # Made once, before any process starts, as docs/operations.md says: no
    # command makes the key of a PostgreSQL journal.
    key = rotator_cli.workdir / "fingerprint.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    rotator_cli.env = {**rotator_cli.env, "ROTATOR_KEY_FILE": str(key)}
    upgraded = rotator_cli("db", "upgrade")
    assert upgraded.code == 0, upgraded.stderr
    rotator_cli.now = LATER  # every process from now on runs through the harness, at LATER
    yield rotator_cli


def _query(url: str, sql: str) -> list[Any]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


def _policies(count: int) -> str:
    return "defaults: {schedule: {every: 1d}, grace: 1h}\nsecrets:\n" + "".join(
        f"  - name: s{i:03d}\n    store: {{provider: aws-secretsmanager, secret_id: s{i:03d}}}\n"
        for i in range(count)
    )


def _promoted(url: str) -> int:
    [(count,)] = _query(
        url, "SELECT count(DISTINCT secret) FROM rotations WHERE promoted_at IS NOT NULL"
    )
    return int(count)


def _promoted_soon(cli: Rotator, at_least: int, seconds: float) -> bool:
    """Wait until at least ``at_least`` secrets have a promoted rotation (False on timeout)."""
    return eventually(lambda: _promoted(cli.state) >= at_least, seconds, every=0.2)


def _stop(processes: list[subprocess.Popen[bytes]]) -> list[int]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    return [process.wait(timeout=60) for process in processes]


def _stalled(services: list[subprocess.Popen[bytes]], log: Path) -> str:
    """Say what a stalled run shows: whether each service still runs, its errors, the log's end.

    The clock is pinned, so a lease held by a service that stopped moving
    never expires: which one, and why, is what a failure must tell.
    """
    unusual = [
        line
        for line in log.read_text().splitlines()
        if '"level": "error"' in line
        or "Traceback" in line
        or ('"level": "warning"' in line and '"alert"' not in line)
    ]
    return (
        f"exit codes (None: running): {[p.poll() for p in services]}\n"
        + "\n".join(unusual[-30:])
        + "\n...\n"
        + log.read_text()[-2000:]
    )


def _errors(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if '"level": "error"' in line]


@pytest.mark.e2e
@pytest.mark.postgres
def test_three_replicas_and_two_one_shots_rotate_each_secret_once(pg: Rotator) -> None:
    """300 due secrets, 3 services and 2 overlapping one-shots: each secret rotated exactly once."""
    count = 300
    sm = client("secretsmanager")
    for i in range(count):
        sm.create_secret(Name=f"s{i:03d}", SecretString=f"initial-value-{i:04d}")
    pg.config.write_text(_policies(count))
    log = pg.workdir / "ha.log"
    services = [spawn(pg, log, "run", "--reconcile", "1", "--listen", "") for _ in range(3)]
    one_shots = [spawn(pg, log, "run", "--once") for _ in range(2)]
    try:
        assert _promoted_soon(pg, count, 240), log.read_text()[-3000:]
        assert [p.wait(timeout=120) for p in one_shots] == [0, 0]
    finally:
        codes = _stop(services + one_shots)
    assert codes[:3] == [0, 0, 0]
    rows = _query(pg.state, "SELECT secret, count(*), min(state) FROM rotations GROUP BY secret")
    assert len(rows) == count
    assert {n for _, n, _ in rows} == {1}  # one rotation per secret, never two
    assert {state for _, _, state in rows} == {"grace"}
    for i in range(count):  # the store agrees: exactly one new version each
        versions = sm.list_secret_version_ids(SecretId=f"s{i:03d}")["Versions"]
        assert len(versions) == 2, (i, versions)
    assert _errors(log) == []
    [(leases,)] = _query(pg.state, "SELECT count(*) FROM leases")
    assert leases == 0  # every lease given back


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_killed_replica_rotation_is_finished_by_another(pg: Rotator) -> None:
    """SIGKILL a replica inside a step: another replica resumes that rotation and finishes it."""
    sm = client("secretsmanager")
    sm.create_secret(Name="s000", SecretString="initial-value-0000")
    pg.config.write_text(_policies(1))
    pg.env = {**pg.env, "ROTATOR_LEASE_TTL": "5s"}
    log = pg.workdir / "ha.log"
    doomed = spawn(pg, log, "run", "--reconcile", "1", "--listen", "", fault="hang:store:written")
    try:
        assert eventually(lambda: "hanging at store:written" in log.read_text(), 60, every=0.2), (
            log.read_text()
        )
    finally:
        doomed.kill()
        doomed.wait(timeout=10)
    [(rotation_id, state)] = _query(pg.state, "SELECT id, state FROM rotations")
    assert state == "minted"  # the pending value was written, the step never recorded
    survivor = spawn(pg, log, "run", "--reconcile", "1", "--listen", "")
    try:
        assert _promoted_soon(pg, 1, 60), log.read_text()[-3000:]
    finally:
        assert _stop([survivor]) == [0]
    assert _query(pg.state, "SELECT id FROM rotations") == [(rotation_id,)]  # resumed, not redone
    versions = sm.list_secret_version_ids(SecretId="s000")["Versions"]
    assert len(versions) == 2
    current = sm.get_secret_value(SecretId="s000", VersionStage="AWSCURRENT")
    assert current["VersionId"] == rotation_id


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.serial
def test_postgres_restarting_mid_run_loses_and_duplicates_nothing(pg: Rotator) -> None:
    """PostgreSQL restarted under two busy replicas: every secret still rotated exactly once."""
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must be able to restart PostgreSQL (pg_ctlcluster, as root)")
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster and root")
    count = 120
    sm = client("secretsmanager")
    for i in range(count):
        sm.create_secret(Name=f"s{i:03d}", SecretString=f"initial-value-{i:04d}")
    pg.config.write_text(_policies(count))
    pg.env = {**pg.env, "ROTATOR_RATE_LIMITS": "secretsmanager.write=20"}  # keep it busy a while
    log = pg.workdir / "ha.log"
    services = [spawn(pg, log, "run", "--reconcile", "1", "--listen", "") for _ in range(2)]
    try:
        assert _promoted_soon(pg, 10, 120), log.read_text()[-3000:]
        subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True, timeout=120)
        assert _promoted_soon(pg, count, 240), _stalled(services, log)
    finally:
        codes = _stop(services)
    assert codes == [0, 0]
    rows = _query(pg.state, "SELECT secret, count(*) FROM rotations GROUP BY secret")
    assert len(rows) == count and {n for _, n in rows} == {1}
    for i in range(0, count, 11):
        assert len(sm.list_secret_version_ids(SecretId=f"s{i:03d}")["Versions"]) == 2


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_stuck_run_loses_its_lease_when_it_expires(pg: Rotator) -> None:
    """A run alive but stuck in a step: a replica takes the lease once it expires, and finishes."""
    sm = client("secretsmanager")
    sm.create_secret(Name="s000", SecretString="initial-value-0000")
    pg.config.write_text(_policies(1))
    # The real clock here: a lease expires only as time passes.
    pg.now = None
    pg.env["ROTATOR_LEASE_TTL"] = "5s"
    log = pg.workdir / "ha.log"
    stuck = spawn(pg, log, "rotate", "s000", fault="hang:store:written")
    try:
        hanging = eventually(lambda: "hanging at store:written" in log.read_text(), 60, every=0.2)
        assert hanging, log.read_text()
        [(rotation_id,)] = _query(pg.state, "SELECT id FROM rotations")
        survivor = spawn(pg, log, "run", "--reconcile", "1", "--listen", "")
        try:
            assert _promoted_soon(pg, 1, 60), log.read_text()[-3000:]
            assert stuck.poll() is None  # taken over from a live holder: by expiry alone
        finally:
            assert _stop([survivor]) == [0]
    finally:
        stuck.kill()
        stuck.wait(timeout=10)
    assert _query(pg.state, "SELECT id FROM rotations") == [(rotation_id,)]
    assert len(sm.list_secret_version_ids(SecretId="s000")["Versions"]) == 2
