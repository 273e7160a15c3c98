"""The service watches: alerts once per failure across passes, and finds a tampered audit trail."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Rotator, client, eventually, spawn

POLICY = """
notifiers:
  ops:
    kind: exec
    command: [{python}, -c, "import sys; open({alerts!r}, 'a').write(sys.stdin.read() + '\\\\n')"]
secrets:
  - name: app
    store: {{provider: aws-secretsmanager, secret_id: app}}
    schedule: {{every: 2s}}
    grace: 0s
    alerts: [ops]
    verify:
      - kind: exec
        command: [{python}, -c, "import sys; sys.exit(1)"]
"""


def _alerts(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rolled_back(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM rotations WHERE state = 'rolled_back'")
            return int(row.fetchone()[0])
        except sqlite3.OperationalError:
            return 0


@pytest.mark.e2e
def test_the_service_alerts_each_failure_once_and_a_broken_trail(rotator_cli: Rotator) -> None:
    """One alert per failed rotation, not per pass; a tampered trail: alerted once, nothing done."""
    client("secretsmanager").create_secret(Name="app", SecretString="initial-value-long")
    alerts = rotator_cli.workdir / "alerts.jsonl"
    rotator_cli.config.write_text(POLICY.format(python=sys.executable, alerts=str(alerts)))
    db = rotator_cli.workdir / "rotator.db"
    first = rotator_cli("rotate", "app")
    assert first.code == 1
    assert [a["event"] for a in _alerts(alerts)] == ["rotation-failed"]

    log = rotator_cli.workdir / "daemon.log"
    daemon = spawn(rotator_cli, log, "run", "--reconcile", "1", "--listen", "")
    try:
        # Every 2s, after a short backoff, another rotation fails: each is
        # alerted once, while passes (once a second) keep seeing the last one.
        assert eventually(lambda: _rolled_back(db) >= 3, 40), log.read_text()[-3000:]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    assert daemon.returncode == 0
    events = [a["event"] for a in _alerts(alerts)]
    assert events.count("rotation-failed") == _rolled_back(db), events
    failed = [a["rotation_id"] for a in _alerts(alerts) if a["event"] == "rotation-failed"]
    assert len(set(failed)) == len(failed)

    assert rotator_cli("audit", "verify").code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET detail = 'rewritten' WHERE seq = 3")
        rotations = conn.execute("SELECT count(*) FROM rotations").fetchone()[0]
    assert rotator_cli("audit", "verify").code == 1
    log = rotator_cli.workdir / "tampered.log"
    daemon = spawn(rotator_cli, log, "run", "--reconcile", "1", "--listen", "")
    try:
        assert eventually(
            lambda: any(a["event"] == "audit-chain-broken" for a in _alerts(alerts)), 40
        ), log.read_text()[-3000:]
        # A whole pass, and the watch pass after it: the secret is due every 2s.
        assert eventually(lambda: '"watch pass done"' in log.read_text(), 40)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    assert daemon.returncode == 0
    with sqlite3.connect(db) as conn:  # nothing was done on the strength of the journal
        assert conn.execute("SELECT count(*) FROM rotations").fetchone()[0] == rotations
    events = [a["event"] for a in _alerts(alerts)]
    assert events.count("audit-chain-broken") == 1, events
    broken = next(a for a in _alerts(alerts) if a["event"] == "audit-chain-broken")
    assert broken["secret"] is None and "record 3" in str(broken["summary"])
