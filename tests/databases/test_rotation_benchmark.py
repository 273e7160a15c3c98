"""benchmarks/database_rotations.py, run once at a tiny size: it works, and its counts hold.

Its times are printed, never asserted; what is asserted is what
docs/performance.md states of it: every rotation ends ``ok`` with its grace
end revoking the other user, and each rotation opens six PostgreSQL
connections (inventory; the target's look and its password; the login; at
the grace end, the look and the revoking password).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.databases.postgres import admin_url

ROOT = Path(__file__).resolve().parents[2]


def test_the_database_rotations_benchmark_runs_at_a_tiny_size() -> None:
    """Two rotations through the benchmark script: exit 0, six connections each."""
    url = admin_url()
    done = subprocess.run(
        [sys.executable, "benchmarks/database_rotations.py", "--count", "2"],
        cwd=ROOT,
        env={**os.environ, "ROTATOR_TEST_POSTGRES_URL": url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rotations, each followed by its grace end:" in done.stdout
    assert (
        "PostgreSQL connections per rotation: median 6, min 6, max 6 (12 in all: "
        "create_clone 1, login_states 6, set_password 3, try_login 2)"
    ) in done.stdout, done.stdout
    assert "requests not ok: 0" in done.stdout
