"""Overlapping one-shot runs (two CronJobs at once) rotate each secret once.

Invariant 4 of docs/design.md: one rotation of a secret at a time.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import Rotator, client

COUNT = 6


@pytest.mark.e2e
def test_two_simultaneous_runs_rotate_each_secret_once(rotator_cli: Rotator) -> None:
    """Two run --once processes started together: every due secret is rotated exactly once."""
    lines = ["defaults: {schedule: {every: 30d}, grace: 0s}", "secrets:"]
    for i in range(COUNT):
        client("secretsmanager").create_secret(Name=f"s{i}", SecretString="initial-value-" * 2)
        lines.append(
            f"  - {{name: s{i}, store: {{provider: aws-secretsmanager, secret_id: s{i}}}}}"
        )
    rotator_cli.config.write_text("\n".join(lines) + "\n")
    assert rotator_cli("validate").code == 0

    command, env = rotator_cli.command(
        *("run", "--once", "--log-format", "json"), now=datetime.now(UTC) + timedelta(days=31)
    )
    procs = [
        subprocess.Popen(
            command,
            env=env,
            cwd=rotator_cli.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[:600] + err[-600:] for _, err in results]

    for i in range(COUNT):
        history = rotator_cli("history", f"s{i}", "--json").json()
        assert [r["state"] for r in history] == ["done"], (i, history)
        versions = client("secretsmanager").list_secret_version_ids(
            SecretId=f"s{i}", IncludeDeprecated=True
        )["Versions"]
        assert len(versions) == 2, f"s{i} was written {len(versions) - 1} times"
