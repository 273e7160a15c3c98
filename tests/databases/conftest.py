"""The database servers the password tests run against: PostgreSQL (.ci/run's) and MariaDB."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

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
