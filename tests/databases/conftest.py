"""The database servers the password tests run against, and the engine's in-process store.

PostgreSQL is .ci/run's (``ROTATOR_TEST_POSTGRES_URL``) or a throwaway one
(:mod:`rotator.sandbox.postgresql.server`, every statement in its log); MariaDB is a
throwaway one (:mod:`tests.databases.mariadb`). A throwaway server is skipped
without its binaries, but not under CI=true, where .ci/run installs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rotator.sandbox.postgresql.server import PostgreSqlServer, server_binaries
from tests.conftest import FakeClock
from tests.databases.mariadb import MariaDb, binaries


def _skip_without(why: str) -> None:
    """Skip the test for ``why``; under CI=true, fail it (CI installs every server)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDb]:
    """A throwaway MariaDB for the session (skipped without the binaries, but not in CI)."""
    if binaries() is None:
        _skip_without(
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


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgreSqlServer]:
    """A throwaway PostgreSQL for the session, logging every statement (skipped without it)."""
    if server_binaries() is None:
        _skip_without("no PostgreSQL server binaries (apt-get install postgresql)")
    with PostgreSqlServer() as server:
        yield server


@pytest.fixture
def aws_sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An in-process Secrets Manager (moto)."""
    import boto3
    from moto import mock_aws

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock from the real now (moto stamps versions with the real time)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))
