"""The Issuer contract over ``postgresql-password``, both strategies, on the real PostgreSQL.

The hooks and the single user's documented skips are tests/databases/contract.py's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.databases.postgresql import PostgreSqlPasswordIssuer
from tests.databases.contract import DatabaseContract, SingleUserSkips
from tests.databases.postgres import Roles, admin_url


class _PostgreSqlContract(DatabaseContract):
    issuer_class = PostgreSqlPasswordIssuer

    @pytest.fixture
    def accounts(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
        url = admin_url()
        monkeypatch.setenv("APP_DB_ADMIN", url)
        with Roles(url) as made:
            made.create(made.user)
            yield made


class TestAlternatingUsers(_PostgreSqlContract):
    """Two users take turns: at most two credentials live at once."""

    strategy = "alternating-users"
    limit = 2


class TestSingleUser(SingleUserSkips, _PostgreSqlContract):
    """One user: its credential has no ref, and the next password replaces the last."""

    strategy = "single-user"
