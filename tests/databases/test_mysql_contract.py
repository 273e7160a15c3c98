"""The Issuer contract over ``mysql-password``, both strategies, on the real MariaDB.

The hooks and the single user's documented skips are tests/databases/contract.py's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.databases.mysql import MySqlPasswordIssuer
from tests.databases.contract import DatabaseContract, SingleUserSkips
from tests.databases.mariadb import MariaDb
from tests.databases.mysql_users import Users


class _MySqlContract(DatabaseContract):
    issuer_class = MySqlPasswordIssuer

    @pytest.fixture
    def accounts(self, mariadb: MariaDb, monkeypatch: pytest.MonkeyPatch) -> Iterator[Users]:
        monkeypatch.setenv("APP_DB_ADMIN", mariadb.admin_url())
        with Users(mariadb) as made:
            made.create(made.user)
            yield made


class TestAlternatingUsers(_MySqlContract):
    """Two users take turns: at most two credentials live at once."""

    strategy = "alternating-users"
    limit = 2


class TestSingleUser(SingleUserSkips, _MySqlContract):
    """One user: its credential has no ref, and the next password replaces the last."""

    strategy = "single-user"
