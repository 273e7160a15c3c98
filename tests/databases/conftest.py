"""The database servers the password tests run against (PostgreSQL, .ci/run's, and MariaDB).

Also the store and clock the rotation tests run the engine with.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import AWS_REGION, FakeClock
from tests.databases.mariadb import MariaDb, binaries


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDb]:
    """A throwaway MariaDB for the session (skipped without the binaries, but not in CI)."""
    if binaries() is None:
        why = "no mariadbd (apt-get install mariadb-server): the MySQL/MariaDB tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)
    server = MariaDb()
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def aws_sm(aws_in_process: None) -> Any:
    """A Secrets Manager client of the in-process moto."""
    import boto3

    return boto3.client("secretsmanager", region_name=AWS_REGION)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock from the real now (moto stamps versions with the real time)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))
