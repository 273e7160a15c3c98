"""The Issuer contract over ``mysql-password``, both strategies, on the real MariaDB.

The suite writes the issuer's own target after each mint, as the engine
does once the store holds the value as pending: that is when the server
learns the password. The issuer's secret has no store value here, so the
alternating pair's live user is whatever ``keep`` says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from providers.databases.mysql import MySqlPasswordConfig, MySqlPasswordIssuer
from rotator.adapters import Credential, Runtime, SecretValue
from rotator.sandbox.core.process import free_port
from rotator.testing import IssuerContract
from tests.conftest import FakeClock
from tests.databases.mariadb import MariaDb
from tests.databases.mysql_users import Users

IssuerT = Any


def _issuer(users: Users, strategy: str) -> MySqlPasswordIssuer:
    """Build the issuer for ``users.user``, its own secret holding no value yet."""
    clock = FakeClock()
    runtime = Runtime(clock=clock, sleep=clock.sleep, read_current=lambda name: None)
    config = MySqlPasswordConfig.model_validate(
        {
            "strategy": strategy,
            "host": users.host,
            "port": users.port,
            "database": users.database,
            "username": users.user,
            "admin": {"env": "APP_DB_ADMIN"},
        }
    )
    return MySqlPasswordIssuer(config, runtime, "app/db")


class _MySqlContract(IssuerContract):
    strategy: ClassVar[str]

    @pytest.fixture
    def users(self, mariadb: MariaDb, monkeypatch: pytest.MonkeyPatch) -> Iterator[Users]:
        monkeypatch.setenv("APP_DB_ADMIN", mariadb.admin_url())
        with Users(mariadb) as made:
            made.create(made.user)
            yield made

    @pytest.fixture
    def issuer(self, users: Users) -> IssuerT:
        self.made = users
        return _issuer(users, self.strategy)

    def usable(self, issuer: IssuerT, credential: Credential) -> bool:
        found = credential.value.fields("username", "password")
        assert found is not None
        return self.made.logs_in(*found)

    @contextmanager
    def unavailable(self, issuer: IssuerT) -> Iterator[None]:
        config = issuer.config
        issuer.config = config.model_copy(update={"port": free_port()})
        try:
            yield
        finally:
            issuer.config = config

    def foreign(self, issuer: IssuerT) -> SecretValue:
        return SecretValue(json.dumps({"username": self.made.user, "password": "never-minted-01"}))


class TestAlternatingUsers(_MySqlContract):
    """Two users take turns: at most two credentials live at once."""

    strategy = "alternating-users"
    limit = 2


class TestSingleUser(_MySqlContract):
    """One user: its credential has no ref, and the next password replaces the last."""

    strategy = "single-user"

    def test_revoke_stops_the_credential_letting_anyone_in(self, issuer: IssuerT) -> None:
        pytest.skip("one user: the engine revokes nothing, the next password replaces this one")

    def test_verify_refuses_a_revoked_credential(self, issuer: IssuerT) -> None:
        pytest.skip("one user: the engine revokes nothing, the next password replaces this one")

    def test_delete_removes_a_revoked_credential_for_good(self, issuer: IssuerT) -> None:
        pytest.skip("one user: the engine deletes nothing, the next password replaces this one")

    def test_inventory_lists_a_minted_credential(self, issuer: IssuerT) -> None:
        pytest.skip("one user: a credential without a ref is not listed (nothing to recover)")

    def test_recover_without_pending_leaves_no_orphan(self, issuer: IssuerT) -> None:
        pytest.skip(
            "one user: the server learns a password only once the store holds it as "
            "pending, so there is no password without a pending value to recover"
        )

    def test_recover_spares_what_existed_before_the_rotation(self, issuer: IssuerT) -> None:
        pytest.skip("one user: a second mint replaces the first password by design")

    def test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(
        self, issuer: IssuerT
    ) -> None:
        pytest.skip("one user: the engine writes the pending value again before verifying")
