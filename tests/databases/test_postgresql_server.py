"""The throwaway PostgreSQL server (rotator.sandbox.postgresql.server): its login, log and end.

The servers here are real (the installed binaries, as the ``postgresql_server``
fixture finds them); the failures are driven by stand-in programs, since a
real initdb or postgres cannot be made to fail on purpose.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rotator.sandbox.postgresql.server import PostgreSqlServer, PostgreSqlUnavailable


def _refuses(host: str, port: int) -> bool:
    """Tell whether nothing listens on ``host:port`` any more."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary directory the ``postgres`` OS user may enter (pytest's are root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="rotator-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _stand_ins(bindir: Path, *, initdb: str, postgres: str) -> Path:
    """Write shell scripts in place of initdb, postgres and pg_isready (which never says yes)."""
    bindir.mkdir(mode=0o755)
    for name, body in (("initdb", initdb), ("postgres", postgres), ("pg_isready", "exit 2")):
        script = bindir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    return bindir


def test_the_superuser_logs_in_over_tcp_with_its_password_only(
    postgresql_server: PostgreSqlServer,
) -> None:
    """scram-sha-256 on 127.0.0.1: the random password logs in, a wrong one is refused."""
    with psycopg.connect(postgresql_server.url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolsuper, current_setting('password_encryption'), pg_backend_pid()"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row is not None and row[:2] == (True, "scram-sha-256")
        if os.geteuid() == 0:  # initdb and postgres refuse root: the server runs as postgres
            # Read while connected: the backend process ends with its connection.
            status = Path(f"/proc/{row[2]}/status").read_text()
            [uid] = [line.split()[1] for line in status.splitlines() if line.startswith("Uid:")]
            assert int(uid) == pwd.getpwnam("postgres").pw_uid
    wrong = postgresql_server.url().replace(postgresql_server.password.text(), "not-it")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()


def test_every_statement_is_in_the_log(postgresql_server: PostgreSqlServer) -> None:
    """log_statement=all, on stderr into the log file: a statement's text is there."""
    marker = f"marker-{secrets.token_hex(8)}"
    with psycopg.connect(postgresql_server.url(), autocommit=True) as conn:
        conn.execute(f"SELECT '{marker}'")
    assert f"statement: SELECT '{marker}'" in postgresql_server.log_text()
    assert postgresql_server.password.text() not in postgresql_server.log_text()


def test_stop_ends_open_sessions_and_removes_the_directory(postgresql_binaries: Path) -> None:
    """A session left open does not hold the stop up; nothing listens or stays on disk after."""
    server = PostgreSqlServer(bindir=postgresql_binaries).start()
    directory = server.directory
    assert directory is not None and (directory / "data" / "PG_VERSION").is_file()
    session = psycopg.connect(server.url(), autocommit=True)
    try:
        server.stop()
        assert not server.running
        assert not directory.exists()
        assert _refuses(server.host, server.port)
        # A fast shutdown (SIGINT) ended the session: a smart one (SIGTERM) would have waited.
        with pytest.raises(psycopg.OperationalError, match="administrator command"):
            session.execute("SELECT 1")
    finally:
        session.close()
        server.stop()


def test_without_binaries_it_says_what_to_install(shared_tmp: Path) -> None:
    """No initdb where it looks: the error says where and what to install; nothing is made."""
    empty = shared_tmp / "bin"
    empty.mkdir()
    server = PostgreSqlServer(bindir=empty, parent=shared_tmp)
    with pytest.raises(PostgreSqlUnavailable) as refused:
        server.start()
    assert f"no PostgreSQL server binaries (initdb, postgres, pg_isready) in {empty}" in str(
        refused.value
    )
    assert "apt-get install postgresql" in str(refused.value)
    assert list(shared_tmp.iterdir()) == [empty]


@pytest.mark.parametrize(
    ("initdb", "postgres", "said"),
    [
        (
            'echo "initdb: error: no space left on device" >&2; exit 1',
            "exit 0",
            "initdb failed with status 1: initdb: error: no space left on device",
        ),
        (
            "exit 0",
            'echo "FATAL:  could not create lock file" >&2; exit 1',
            "postgres exited with status 1 before answering: FATAL:  could not create lock file",
        ),
    ],
    ids=["initdb fails", "postgres exits"],
)
def test_a_failed_start_is_quoted_and_leaves_nothing(
    shared_tmp: Path, initdb: str, postgres: str, said: str
) -> None:
    """initdb's words, or the end of the server's log, are in the error; nothing stays behind."""
    bindir = _stand_ins(shared_tmp / "bin", initdb=initdb, postgres=postgres)
    parent = shared_tmp / "servers"
    parent.mkdir(mode=0o755)
    server = PostgreSqlServer(bindir=bindir, parent=parent)
    with pytest.raises(PostgreSqlUnavailable) as refused:
        server.start()
    assert said in str(refused.value)
    assert not server.running
    assert list(parent.iterdir()) == []
