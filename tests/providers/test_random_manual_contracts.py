"""The Issuer contract over the two issuers with no system behind them: random and manual.

A random value lives only in the store, and a manual key only where a person
changes it: nothing at an issuer can let a consumer in or turn one away, so
the promises about that are skipped here, each with its reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.manual import ManualConfig, ManualIssuer
from providers.random import RandomConfig, RandomIssuer
from rotator.adapters import Issuer, Runtime, SecretValue
from rotator.testing import IssuerContract, fresh_value
from tests.conftest import FakeClock

#: Why a random value cannot be seen letting a consumer in.
ONLY_IN_THE_STORE = (
    "a random value exists only in the store: no system lets a consumer in with it or not, "
    "so revoking it at an issuer means nothing (its store version is retired instead)"
)
#: Why a manual key cannot be seen letting a consumer in.
ONLY_A_PERSON = (
    "rotator neither mints nor revokes a manual key, nor can it try one: a person does, "
    "by the policy's instructions"
)


@pytest.fixture
def runtime(clock: FakeClock) -> Runtime:
    """A runtime on the test's clock."""
    return Runtime(clock=clock, sleep=clock.sleep)


class TestRandomContract(IssuerContract):
    """The Issuer contract over random: what it promises is the value's shape."""

    @pytest.fixture
    def issuer(self, runtime: Runtime) -> Issuer[Any]:
        return RandomIssuer(RandomConfig(length=40, alphabet="hex"), runtime, "app")

    def foreign(self, issuer: Issuer[Any]) -> SecretValue:
        return SecretValue("not-hex-and-not-forty-characters")

    @pytest.mark.skip(reason=ONLY_IN_THE_STORE)
    def test_a_minted_credential_lets_its_consumer_in(self, issuer: Issuer[Any]) -> None:
        super().test_a_minted_credential_lets_its_consumer_in(issuer)

    @pytest.mark.skip(reason=ONLY_IN_THE_STORE)
    def test_revoke_stops_the_credential_letting_anyone_in(self, issuer: Issuer[Any]) -> None:
        super().test_revoke_stops_the_credential_letting_anyone_in(issuer)

    @pytest.mark.skip(reason=ONLY_IN_THE_STORE)
    def test_verify_refuses_a_revoked_credential(self, issuer: Issuer[Any]) -> None:
        super().test_verify_refuses_a_revoked_credential(issuer)

    @pytest.mark.skip(reason=ONLY_IN_THE_STORE)
    def test_delete_removes_a_revoked_credential_for_good(self, issuer: Issuer[Any]) -> None:
        super().test_delete_removes_a_revoked_credential_for_good(issuer)

    @pytest.mark.skip(reason=f"{ONLY_IN_THE_STORE}; it has no ref to list")
    def test_inventory_lists_a_minted_credential(self, issuer: Issuer[Any]) -> None:
        super().test_inventory_lists_a_minted_credential(issuer)

    @pytest.mark.skip(reason=f"{ONLY_IN_THE_STORE}; a value never stored is simply gone")
    def test_recover_without_pending_leaves_no_orphan(self, issuer: Issuer[Any]) -> None:
        super().test_recover_without_pending_leaves_no_orphan(issuer)

    @pytest.mark.skip(reason=ONLY_IN_THE_STORE)
    def test_recover_spares_what_existed_before_the_rotation(self, issuer: Issuer[Any]) -> None:
        super().test_recover_spares_what_existed_before_the_rotation(issuer)

    @pytest.mark.skip(reason=ONLY_IN_THE_STORE)
    def test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(
        self, issuer: Issuer[Any]
    ) -> None:
        super().test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(issuer)

    @pytest.mark.skip(reason="a random value is drawn in process: no system can be down")
    def test_an_unavailable_issuer_fails_with_a_retryable_error(self, issuer: Issuer[Any]) -> None:
        super().test_an_unavailable_issuer_fails_with_a_retryable_error(issuer)


class TestManualContract(IssuerContract):
    """The Issuer contract over manual: it refuses to mint and adopts what a person supplies."""

    @pytest.fixture
    def issuer(self, runtime: Runtime) -> Issuer[Any]:
        config = ManualConfig(instructions="https://partner.example/keys")
        return ManualIssuer(config, runtime, "partner-key")

    def supplied(self, issuer: Issuer[Any]) -> SecretValue:
        return fresh_value("typed-in")

    @pytest.mark.skip(reason=ONLY_A_PERSON)
    def test_a_minted_credential_lets_its_consumer_in(self, issuer: Issuer[Any]) -> None:
        super().test_a_minted_credential_lets_its_consumer_in(issuer)

    @pytest.mark.skip(reason=f"{ONLY_A_PERSON}: verify() proves nothing (the default)")
    def test_verify_refuses_a_value_it_never_minted(self, issuer: Issuer[Any]) -> None:
        super().test_verify_refuses_a_value_it_never_minted(issuer)

    @pytest.mark.skip(reason=ONLY_A_PERSON)
    def test_revoke_stops_the_credential_letting_anyone_in(self, issuer: Issuer[Any]) -> None:
        super().test_revoke_stops_the_credential_letting_anyone_in(issuer)

    @pytest.mark.skip(reason=ONLY_A_PERSON)
    def test_verify_refuses_a_revoked_credential(self, issuer: Issuer[Any]) -> None:
        super().test_verify_refuses_a_revoked_credential(issuer)

    @pytest.mark.skip(reason=ONLY_A_PERSON)
    def test_delete_removes_a_revoked_credential_for_good(self, issuer: Issuer[Any]) -> None:
        super().test_delete_removes_a_revoked_credential_for_good(issuer)

    @pytest.mark.skip(reason=f"{ONLY_A_PERSON}; it has no ref to list")
    def test_inventory_lists_a_minted_credential(self, issuer: Issuer[Any]) -> None:
        super().test_inventory_lists_a_minted_credential(issuer)

    @pytest.mark.skip(reason=f"{ONLY_A_PERSON}; a value never stored was never rotator's")
    def test_recover_without_pending_leaves_no_orphan(self, issuer: Issuer[Any]) -> None:
        super().test_recover_without_pending_leaves_no_orphan(issuer)

    @pytest.mark.skip(reason=ONLY_A_PERSON)
    def test_recover_spares_what_existed_before_the_rotation(self, issuer: Issuer[Any]) -> None:
        super().test_recover_spares_what_existed_before_the_rotation(issuer)

    @pytest.mark.skip(reason=ONLY_A_PERSON)
    def test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(
        self, issuer: Issuer[Any]
    ) -> None:
        super().test_recover_keeps_only_the_pending_one_of_the_rotations_credentials(issuer)

    @pytest.mark.skip(reason="manual calls no system: nothing can be down")
    def test_an_unavailable_issuer_fails_with_a_retryable_error(self, issuer: Issuer[Any]) -> None:
        super().test_an_unavailable_issuer_fails_with_a_retryable_error(issuer)
