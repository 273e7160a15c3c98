"""The real daemon (`rotator run`) as a subprocess against moto_server."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Rotator, client, eventually, spawn

POLICY = """
secrets:
  - name: app
    store: {provider: aws-secretsmanager, secret_id: app}
    schedule: {every: 3s}
    grace: 1s
"""


def _finished_rotations(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM rotations WHERE state = 'done'").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


@pytest.mark.e2e
def test_daemon_rotates_reloads_safely_and_stops_cleanly(rotator_cli: Rotator) -> None:
    """It rotates on schedule, survives a broken SIGHUP reload, and exits 0 on SIGTERM.

    Its stdout stays empty: a service writes log lines (on stderr) only, since
    systemd, Docker and Kubernetes merge the streams into one log.
    """
    client("secretsmanager").create_secret(Name="app", SecretString="initial-value-long")
    rotator_cli.config.write_text(POLICY)
    log = rotator_cli.workdir / "daemon.log"
    daemon = spawn(
        rotator_cli, log, "run", "--reconcile", "1", "--listen", "127.0.0.1:0", capture=True
    )
    try:
        db = rotator_cli.workdir / "rotator.db"
        assert eventually(lambda: _finished_rotations(db) >= 1, 40), log.read_text()[-3000:]

        url = next(e["url"] for e in _events(log) if e["event"] == "health endpoint listening")
        with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(url + "/readyz", timeout=5) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
        assert (
            'rotator_rotations_total{outcome="succeeded",provider="aws-secretsmanager",secret="app"}'
            in metrics
        )
        assert 'rotator_secret_age_seconds{secret="app"}' in metrics
        assert (
            'rotator_provider_requests_total{operation="PutSecretValue",outcome="ok",'
            'provider="aws-secretsmanager"}' in metrics
        )

        rotator_cli.config.write_text("secrets:\n  - name: Not A Valid Name\n")
        daemon.send_signal(signal.SIGHUP)
        assert eventually(lambda: "reload refused" in log.read_text(), 20)
        done = _finished_rotations(db)
        assert eventually(lambda: _finished_rotations(db) > done, 40), "old set stopped"

        daemon.send_signal(signal.SIGTERM)
        stdout, _ = daemon.communicate(timeout=25)
        assert daemon.returncode == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert stdout == b"", stdout[:500]
    events = _events(log)
    assert any(e["event"] == "service stopped" for e in events)
    passes = [e for e in events if e["event"] == "pass finished"]
    assert passes and all(e["handled"] >= 1 and e["failed"] == 0 for e in passes), passes


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _daemon(
    rotator_cli: Rotator, log: Path, *extra: str, fault: str = ""
) -> subprocess.Popen[bytes]:
    return spawn(rotator_cli, log, "run", "--listen", "", *extra, fault=fault)


def _states(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT state FROM rotations ORDER BY created_at")]
        except sqlite3.OperationalError:
            return []


@pytest.mark.e2e
def test_sigterm_mid_step_exits_0_by_the_deadline_and_a_restart_finishes(
    rotator_cli: Rotator,
) -> None:
    """A step that never returns is abandoned at the shutdown deadline; a restart completes it."""
    sm = client("secretsmanager")
    sm.create_secret(Name="app", SecretString="initial-value-long")
    rotator_cli.config.write_text(POLICY.replace("every: 3s", "every: 1h").replace("1s", "1m"))
    log = rotator_cli.workdir / "daemon.log"
    db = rotator_cli.workdir / "rotator.db"
    # Never rotated: the store's creation date makes it due an hour from now; pin "now" later.
    rotator_cli.now = "2099-01-01T00:00:00Z"
    daemon = _daemon(rotator_cli, log, "--shutdown-deadline", "2", fault="hang:mint:issued")
    try:
        assert eventually(lambda: "hanging at mint:issued" in log.read_text(), 40), log.read_text()
        assert _states(db) == ["planned"]  # minted at the issuer, not yet recorded
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    events = _events(log)
    assert any(e["event"] == "interrupted by shutdown" for e in events)
    assert any(e["event"] == "service stopped" for e in events)

    restarted = _daemon(rotator_cli, log, "--reconcile", "1")
    try:
        assert eventually(lambda: _states(db) in (["grace"], ["done"]), 40), log.read_text()
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=25) == 0
    current = sm.get_secret_value(SecretId="app", VersionStage="AWSCURRENT")["SecretString"]
    assert current != "initial-value-long"


@pytest.mark.e2e
def test_sigterm_stops_a_one_shot_run_at_the_deadline(rotator_cli: Rotator) -> None:
    """`run --once` told to stop mid-step exits by its deadline and reports the rotation waiting."""
    client("secretsmanager").create_secret(Name="app", SecretString="initial-value-long")
    rotator_cli.config.write_text(POLICY.replace("every: 3s", "every: 1h"))
    log = rotator_cli.workdir / "once.log"
    rotator_cli.now = "2099-01-01T00:00:00Z"
    once = spawn(
        rotator_cli,
        log,
        *("run", "--once", "--json", "--shutdown-deadline", "1"),
        fault="hang:mint:issued",
        capture=True,
    )
    try:
        assert eventually(lambda: log.exists() and "hanging at mint:issued" in log.read_text(), 40)
        once.send_signal(signal.SIGTERM)
        out, _ = once.communicate(timeout=15)
    finally:
        if once.poll() is None:
            once.kill()
    assert once.returncode == 0
    summary = json.loads(out)
    [outcome] = summary
    assert outcome["secret"] == "app" and outcome["result"] == "waiting"
    assert "shutdown" in outcome["message"]
