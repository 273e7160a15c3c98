"""The database servers the password tests run against, and the engine's in-process store.

PostgreSQL is .ci/run's (``ROTATOR_TEST_POSTGRES_URL``) or a throwaway one
(:mod:`rotator.sandbox.postgresql.server`, every statement in its log); MariaDB is a
throwaway one (:mod:`tests.databases.mariadb`), whose fixture is tests/conftest.py's: the
crash tests of tests/e2e share it. A throwaway server is skipped without its binaries, but
not under CI=true, where .ci/run installs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rotator.sandbox.postgresql.server import PostgreSqlServer, server_binaries
from tests.conftest import AWS_REGION, FakeClock, skip_without


@pytest.fixture(scope="session")
def postgresql_binaries() -> Path:
    """The installed PostgreSQL server's bin directory (skipped without one, but not in CI)."""
    found = server_binaries()
    if found is None:
        skip_without("no PostgreSQL server binaries (apt-get install postgresql)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def postgresql_server(postgresql_binaries: Path) -> Iterator[PostgreSqlServer]:
    """A throwaway PostgreSQL for the session, logging every statement."""
    with PostgreSqlServer(bindir=postgresql_binaries) as server:
        yield server


@pytest.fixture
def aws_sm(aws_in_process: None) -> Any:
    """An in-process Secrets Manager (moto)."""
    import boto3

    return boto3.client("secretsmanager", region_name=AWS_REGION)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock from the real now (moto stamps versions with the real time)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))
