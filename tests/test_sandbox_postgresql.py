"""The sandbox's PostgreSQL part when it cannot run: one warning saying why, and nothing else.

Its demo needs more than a server: psycopg to seed it and to rotate (the
``postgres`` extra), boto3 and the AWS sandbox's Secrets Manager
(``AWS_ENDPOINT_URL``) to keep its secrets. Missing any of them, it starts
no server, offers no policy, and seeding does nothing. A module that does not
import is made so by a ``None`` in ``sys.modules``, as Python's own import
system reads it; no server is started by these tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from rotator.sandbox.postgresql.sandbox import PostgreSqlSandbox
from rotator.sandbox.postgresql.server import PostgreSqlServer


def _started(sandbox: PostgreSqlSandbox, workdir: Path) -> list[dict[str, Any]]:
    """Start ``sandbox`` and seed it as ``rotator sandbox`` does; return its warnings."""
    try:
        with structlog.testing.capture_logs() as logs:
            env = sandbox.start(workdir)
            sandbox.seed(env)
    finally:
        sandbox.stop()
    assert env == {}
    return [entry for entry in logs if entry["log_level"] == "warning"]


@pytest.mark.parametrize(
    ("module", "extra"), [("psycopg", "postgres"), ("boto3", "aws")], ids=["psycopg", "boto3"]
)
def test_a_driver_that_does_not_import_starts_no_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, extra: str
) -> None:
    """Without psycopg (or boto3) nothing could seed or rotate: it says which, and the extra."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setitem(sys.modules, module, None)
    server = PostgreSqlServer()
    sandbox = PostgreSqlSandbox(server)

    [warning] = _started(sandbox, tmp_path)

    assert warning["event"] == "no PostgreSQL rotation in this sandbox"
    assert warning["reason"] == sandbox.unavailable
    assert f"{module} does not import" in warning["reason"]
    assert f"pip install 'rotator-keys[{extra}]'" in warning["reason"]
    assert server.directory is None  # initdb never ran
    assert sandbox.demo_policies() is None


def test_without_the_aws_sandbox_no_server_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo's secrets live in the AWS sandbox's Secrets Manager: without it, nothing runs."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    server = PostgreSqlServer()
    sandbox = PostgreSqlSandbox(server)

    [warning] = _started(sandbox, tmp_path)

    assert "AWS_ENDPOINT_URL is not set" in warning["reason"]
    assert server.directory is None
    assert sandbox.demo_policies() is None


def test_a_server_that_cannot_start_is_said_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Everything else there but the server's binaries: one warning, naming where it looked."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    empty = tmp_path / "bin"
    empty.mkdir()
    sandbox = PostgreSqlSandbox(PostgreSqlServer(bindir=empty))

    [warning] = _started(sandbox, tmp_path)

    assert warning["event"] == "no PostgreSQL rotation in this sandbox"
    reason = warning["reason"]
    assert f"no PostgreSQL server binaries (initdb, postgres, pg_isready) in {empty}" in reason
    assert sandbox.demo_policies() is None
