"""The aws-iam-access-key issuer against in-process moto."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import boto3
import pytest

from providers.aws.clients import client
from providers.aws.iam import AccessKeyConfig, AccessKeyIssuer
from rotator.adapters import Issuer
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Runtime
from rotator.errors import LimitExceededError, NotFoundError, VerificationError
from rotator.testing import IssuerContract
from tests.providers.helpers import StepClock, new_rotation_id, outage

pytestmark = pytest.mark.usefixtures("aws")

USER = "deployer"


@pytest.fixture
def iam() -> Any:
    """Return a plain boto3 IAM client, with the user created."""
    client = boto3.client("iam", region_name="us-east-1")
    client.create_user(UserName=USER)
    return client


@pytest.fixture
def issuer(iam: Any, runtime: Runtime) -> AccessKeyIssuer:
    """Return the issuer for the test user."""
    return AccessKeyIssuer(AccessKeyConfig(user=USER), runtime, "deployer-key")


def keys(iam: Any) -> dict[str, str]:
    """Return the user's keys and their status."""
    listed = iam.list_access_keys(UserName=USER)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


def test_mint_returns_a_working_pair(iam: Any, issuer: AccessKeyIssuer) -> None:
    """mint() creates an Active key and returns its pair, with the key id as ref."""
    credential = issuer.mint(new_rotation_id())
    plain = credential.value.reveal()
    assert isinstance(plain, dict)
    assert set(plain) == {"AccessKeyId", "SecretAccessKey"}
    assert credential.ref == plain["AccessKeyId"]
    assert issuer.ref_of(credential.value) == credential.ref
    assert keys(iam) == {credential.ref: "Active"}


def test_ref_of_reads_json_strings_and_refuses_garbage(issuer: AccessKeyIssuer) -> None:
    """ref_of() accepts the pair as JSON text and returns None for anything else."""
    text = SecretValue('{"AccessKeyId": "AKIAEXAMPLE0001", "SecretAccessKey": "x-example-secret"}')
    assert issuer.ref_of(text) == "AKIAEXAMPLE0001"
    assert issuer.ref_of(SecretValue("not-a-key-pair-at-all")) is None
    assert issuer.ref_of(SecretValue({"user": "someone-else"})) is None


def test_verify_accepts_the_new_key(issuer: AccessKeyIssuer, step_clock: StepClock) -> None:
    """verify() passes at once for a freshly minted key, without sleeping."""
    issuer.verify(issuer.mint(new_rotation_id()))
    assert step_clock.sleeps == []


def test_verify_rejects_a_deleted_key_after_the_budget(
    iam: Any, issuer: AccessKeyIssuer, step_clock: StepClock
) -> None:
    """verify() of a deleted key retries with backoff on the fake clock, then raises."""
    credential = issuer.mint(new_rotation_id())
    iam.delete_access_key(UserName=USER, AccessKeyId=credential.ref)
    start = step_clock.now
    with pytest.raises(VerificationError) as caught:
        issuer.verify(credential)
    assert step_clock.now - start == timedelta(seconds=30)
    assert step_clock.sleeps[:4] == [1.0, 2.0, 4.0, 8.0]
    assert len(step_clock.sleeps) > 4
    secret = credential.value.reveal()
    assert isinstance(secret, dict)
    assert secret["SecretAccessKey"] not in str(caught.value)
    assert str(credential.ref) in str(caught.value)


def test_verify_budget_is_configurable(iam: Any, runtime: Runtime, step_clock: StepClock) -> None:
    """With verify_timeout 0s, verify() tries once and does not sleep."""
    issuer = AccessKeyIssuer(AccessKeyConfig(user=USER, verify_timeout="0s"), runtime, "k")
    credential = issuer.mint(new_rotation_id())
    issuer.delete(str(credential.ref))
    with pytest.raises(VerificationError):
        issuer.verify(credential)
    assert step_clock.sleeps == []


def test_verify_rejects_an_inactive_key(iam: Any, issuer: AccessKeyIssuer) -> None:
    """verify() raises for a key IAM reports Inactive (moto still lets it sign)."""
    credential = issuer.mint(new_rotation_id())
    issuer.revoke(str(credential.ref))
    with pytest.raises(VerificationError, match="inactive"):
        issuer.verify(credential)


def test_verify_rejects_a_value_that_is_no_pair(issuer: AccessKeyIssuer) -> None:
    """verify() raises VerificationError for a value without a key pair."""
    with pytest.raises(VerificationError):
        issuer.verify(Credential(SecretValue("just-a-password-0001")))


def test_prepare_with_a_free_slot_does_nothing(iam: Any, issuer: AccessKeyIssuer) -> None:
    """prepare() deletes nothing while the user has fewer than two keys."""
    current = issuer.mint(new_rotation_id())
    assert issuer.prepare([str(current.ref)]) == []
    assert len(keys(iam)) == 1


def test_prepare_deletes_a_stale_inactive_key(iam: Any, issuer: AccessKeyIssuer) -> None:
    """prepare() deletes an Inactive key not in keep to make room."""
    stale = iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName=USER, AccessKeyId=stale, Status="Inactive")
    current = issuer.mint(new_rotation_id())
    assert issuer.prepare([str(current.ref)]) == [stale]
    assert issuer.prepare([str(current.ref)]) == []
    assert keys(iam) == {current.ref: "Active"}


def test_prepare_refuses_a_foreign_active_key(iam: Any, issuer: AccessKeyIssuer) -> None:
    """prepare() raises LimitExceededError naming an Active key rotator does not manage."""
    foreign = iam.create_access_key(UserName=USER)["AccessKey"]["AccessKeyId"]
    current = issuer.mint(new_rotation_id())
    with pytest.raises(LimitExceededError) as caught:
        issuer.prepare([str(current.ref)])
    assert foreign in str(caught.value) and USER in str(caught.value)
    assert len(keys(iam)) == 2


def test_prepare_refuses_when_both_keys_are_kept(iam: Any, issuer: AccessKeyIssuer) -> None:
    """prepare() raises LimitExceededError when both keys are current or in grace."""
    a = issuer.mint(new_rotation_id())
    b = issuer.mint(new_rotation_id())
    issuer.revoke(str(a.ref))
    with pytest.raises(LimitExceededError):
        issuer.prepare([str(a.ref), str(b.ref)])
    assert len(keys(iam)) == 2


def test_mint_with_both_slots_taken_is_limit_exceeded(iam: Any, issuer: AccessKeyIssuer) -> None:
    """mint() raises LimitExceededError rather than a third key."""
    issuer.mint(new_rotation_id())
    issuer.mint(new_rotation_id())
    with pytest.raises(LimitExceededError):
        issuer.mint(new_rotation_id())
    assert len(keys(iam)) == 2


def test_repeated_rotations_never_exceed_two_keys(iam: Any, issuer: AccessKeyIssuer) -> None:
    """Five full rotations (prepare, mint, verify, revoke) keep at most two keys at every step."""
    current = issuer.mint(new_rotation_id())
    previous: Credential | None = None
    for _ in range(5):
        keep = [str(current.ref)]
        issuer.prepare(keep)
        assert len(keys(iam)) <= 1
        new = issuer.mint(new_rotation_id())
        assert len(keys(iam)) == 2
        issuer.verify(new)
        issuer.revoke(str(current.ref))
        previous, current = current, new
        assert len(keys(iam)) <= 2
    assert previous is not None
    assert keys(iam) == {current.ref: "Active", previous.ref: "Inactive"}


def test_recover_deletes_an_orphan(iam: Any, issuer: AccessKeyIssuer) -> None:
    """recover() deletes a key minted but never stored and returns None."""
    current = issuer.mint(new_rotation_id())
    orphan = issuer.mint(new_rotation_id())
    rid = new_rotation_id()
    assert issuer.recover(rid, known=[str(current.ref)], pending=None) is None
    assert issuer.recover(rid, known=[str(current.ref)], pending=None) is None
    assert keys(iam) == {current.ref: "Active"}
    assert orphan.ref not in keys(iam)


def test_recover_adopts_the_pending_key(iam: Any, issuer: AccessKeyIssuer) -> None:
    """recover() returns the key the store's pending value holds and keeps it."""
    current = issuer.mint(new_rotation_id())
    minted = issuer.mint(new_rotation_id())
    rid = new_rotation_id()
    adopted = issuer.recover(rid, known=[str(current.ref)], pending=minted.value)
    assert adopted == minted
    assert issuer.recover(rid, known=[str(current.ref)], pending=minted.value) == minted
    assert set(keys(iam)) == {current.ref, minted.ref}


def test_recover_deletes_a_key_pending_does_not_hold(iam: Any, issuer: AccessKeyIssuer) -> None:
    """recover() deletes an unknown key when pending holds another (gone) key."""
    current = issuer.mint(new_rotation_id())
    stray = issuer.mint(new_rotation_id())
    gone = SecretValue({"AccessKeyId": "AKIAGONE00000001", "SecretAccessKey": "gone-secret-0001"})
    assert issuer.recover(new_rotation_id(), known=[str(current.ref)], pending=gone) is None
    assert stray.ref not in keys(iam)


def test_recover_with_nothing_left_behind(iam: Any, issuer: AccessKeyIssuer) -> None:
    """recover() with no unknown key changes nothing and returns None."""
    current = issuer.mint(new_rotation_id())
    assert issuer.recover(new_rotation_id(), known=[str(current.ref)], pending=None) is None
    assert keys(iam) == {current.ref: "Active"}


def test_last_used(issuer: AccessKeyIssuer) -> None:
    """last_used() is None before the key signs anything and a date after."""
    credential = issuer.mint(new_rotation_id())
    assert issuer.last_used(str(credential.ref)) is None
    issuer.verify(credential)
    assert issuer.last_used(str(credential.ref)) is not None


def test_last_used_of_missing_key(issuer: AccessKeyIssuer) -> None:
    """last_used() of a key that does not exist raises NotFoundError."""
    with pytest.raises(NotFoundError):
        issuer.last_used("AKIADOESNOTEXIST01")


def test_revoke_twice(iam: Any, issuer: AccessKeyIssuer) -> None:
    """revoke() deactivates the key; again, or on a missing key, is a no-op."""
    credential = issuer.mint(new_rotation_id())
    issuer.revoke(str(credential.ref))
    issuer.revoke(str(credential.ref))
    assert keys(iam) == {credential.ref: "Inactive"}
    issuer.revoke("AKIADOESNOTEXIST01")


def test_delete_twice(iam: Any, issuer: AccessKeyIssuer) -> None:
    """delete() removes the key; again is a no-op."""
    credential = issuer.mint(new_rotation_id())
    issuer.revoke(str(credential.ref))
    issuer.delete(str(credential.ref))
    issuer.delete(str(credential.ref))
    assert keys(iam) == {}


def test_missing_user(runtime: Runtime) -> None:
    """Minting for a user that does not exist raises NotFoundError."""
    issuer = AccessKeyIssuer(AccessKeyConfig(user="nobody"), runtime, "k")
    with pytest.raises(NotFoundError):
        issuer.mint(new_rotation_id())


# -- the Issuer contract ----------------------------------------------------------


class TestAccessKeyContract(IssuerContract):
    """The Issuer contract over aws-iam-access-key, against in-process moto: two keys at most."""

    limit = 2
    iam: Any
    runtime: Runtime

    @pytest.fixture
    def issuer(self, iam: Any, runtime: Runtime) -> Issuer[Any]:
        self.iam, self.runtime = iam, runtime
        return AccessKeyIssuer(AccessKeyConfig(user=USER), runtime, "deployer-key")

    def usable(self, issuer: Issuer[Any], credential: Credential) -> bool:
        return keys(self.iam).get(str(credential.ref)) == "Active"

    def unavailable(self, issuer: Issuer[Any]) -> AbstractContextManager[None]:
        return outage(client(self.runtime, "iam"))

    def foreign(self, issuer: Issuer[Any]) -> SecretValue:
        key_id = "AKIA" + new_rotation_id()[:16].upper()
        return SecretValue({"AccessKeyId": key_id, "SecretAccessKey": new_rotation_id()})
