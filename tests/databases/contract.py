"""The Issuer contract over a database password issuer: what each engine's contract test shares.

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

from providers.databases.issuer import DatabasePasswordIssuer
from rotator.adapters import Credential, Runtime, SecretValue
from rotator.sandbox.core.process import free_port
from rotator.testing import IssuerContract
from tests.conftest import FakeClock
from tests.databases.rotation import ServerAccounts

IssuerT = Any


def database_issuer(
    issuer_class: type[DatabasePasswordIssuer], accounts: ServerAccounts, strategy: str
) -> DatabasePasswordIssuer:
    """Build the issuer for ``accounts.user``, its own secret holding no value yet."""
    clock = FakeClock()
    runtime = Runtime(clock=clock, sleep=clock.sleep, read_current=lambda name: None)
    config = issuer_class.Config.model_validate(
        {
            "strategy": strategy,
            "host": accounts.host,
            "port": accounts.port,
            "database": accounts.database,
            "username": accounts.user,
            "admin": {"env": "APP_DB_ADMIN"},
        }
    )
    return issuer_class(config, runtime, "app/db")


class DatabaseContract(IssuerContract):
    """The contract's hooks for a database password issuer; a subclass gives ``accounts``."""

    issuer_class: ClassVar[type[DatabasePasswordIssuer]]
    strategy: ClassVar[str]

    @pytest.fixture
    def issuer(self, accounts: ServerAccounts) -> IssuerT:
        self.made = accounts
        return database_issuer(self.issuer_class, accounts, self.strategy)

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


class SingleUserSkips:
    """What the contract asks of an issuer with refs that one user, without any, cannot give."""

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
