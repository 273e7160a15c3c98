"""The aws-apigateway-api-key issuer against in-process moto."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import boto3
import pytest

from providers.aws.apigateway import ApiKeyConfig, ApiKeyIssuer
from providers.aws.clients import client
from rotator.adapters import Issuer
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Runtime
from rotator.errors import NotFoundError, VerificationError
from rotator.testing import IssuerContract
from tests.providers.helpers import count_calls, error_reply, inject, new_rotation_id, outage

pytestmark = pytest.mark.usefixtures("aws")

SECRET = "partner/api-key"


@pytest.fixture
def apigw() -> Any:
    """Return a plain boto3 API Gateway client."""
    return boto3.client("apigateway", region_name="us-east-1")


@pytest.fixture
def plans(apigw: Any) -> list[str]:
    """Create two usage plans and return their ids."""
    return [apigw.create_usage_plan(name=f"plan-{i}")["id"] for i in range(2)]


@pytest.fixture
def issuer(plans: list[str], runtime: Runtime) -> ApiKeyIssuer:
    """Return the issuer attached to both plans."""
    return ApiKeyIssuer(ApiKeyConfig(usage_plans=plans), runtime, SECRET)


def plan_key_ids(apigw: Any, plan: str) -> set[str]:
    """Return the ids of the keys attached to ``plan``."""
    return {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan)["items"]}


def all_key_ids(apigw: Any) -> set[str]:
    """Return the ids of every API key in the account."""
    return {k["id"] for k in apigw.get_api_keys()["items"]}


def test_mint_attaches_to_every_plan(apigw: Any, plans: list[str], issuer: ApiKeyIssuer) -> None:
    """mint() creates an enabled, named, tagged key attached to all plans, and verify() passes."""
    rid = new_rotation_id()
    credential = issuer.mint(rid)
    assert credential.ref is not None
    key = apigw.get_api_key(apiKey=credential.ref, includeValue=True)
    assert key["enabled"] is True
    assert key["value"] == credential.value.reveal()
    assert key["name"] == f"rotator-{SECRET}-{rid}"
    assert key["tags"] == {"rotator:rotation-id": rid, "rotator:secret": SECRET}
    for plan in plans:
        assert credential.ref in plan_key_ids(apigw, plan)
    issuer.verify(credential)


def test_key_name_stays_within_limits(plans: list[str], runtime: Runtime) -> None:
    """A long prefix and secret name are cut so the name ends with the whole rotation id."""
    config = ApiKeyConfig(usage_plans=plans, name_prefix="p" * 64)
    rid = new_rotation_id()
    name = ApiKeyIssuer(config, runtime, "s" * 128).key_name(rid)
    assert len(name) == 128 and name.endswith(f"-{rid}")


def test_mint_twice_reuses_the_key(apigw: Any, issuer: ApiKeyIssuer) -> None:
    """A replayed mint() for the same rotation returns the same key, not a second one."""
    rid = new_rotation_id()
    first = issuer.mint(rid)
    assert issuer.mint(rid) == first
    assert all_key_ids(apigw) == {first.ref}


def test_mint_deletes_the_key_if_a_plan_refuses_it(
    apigw: Any, issuer: ApiKeyIssuer, runtime: Runtime
) -> None:
    """When attaching fails, mint() deletes the key it created before raising."""
    sdk = client(runtime, "apigateway")
    refuse = inject(sdk, "CreateUsagePlanKey", lambda _: error_reply("NotFoundException", 404))
    with refuse, pytest.raises(NotFoundError):
        issuer.mint(new_rotation_id())
    assert all_key_ids(apigw) == set()


def test_ref_of_finds_the_key_and_caches_it(issuer: ApiKeyIssuer, runtime: Runtime) -> None:
    """ref_of() finds the key id by value through the plans, then answers from the cache."""
    credential = issuer.mint(new_rotation_id())
    runtime.cache.pop("aws:apigateway:refs")
    sdk = client(runtime, "apigateway")
    with count_calls(sdk, "GetUsagePlanKeys") as calls:
        assert issuer.ref_of(credential.value) == credential.ref
        assert len(calls) == 1
        assert issuer.ref_of(credential.value) == credential.ref
        assert len(calls) == 1
    assert issuer.ref_of(SecretValue("no-such-api-key-value-000000")) is None
    assert str(credential.value.reveal()) not in repr(runtime.cache)


def test_recover_adopts_by_name(apigw: Any, plans: list[str], issuer: ApiKeyIssuer) -> None:
    """recover() adopts the key named for the rotation and re-attaches it to every plan."""
    rid = new_rotation_id()
    minted = issuer.mint(rid)
    apigw.delete_usage_plan_key(usagePlanId=plans[1], keyId=minted.ref)
    adopted = issuer.recover(rid, known=[], pending=None)
    assert adopted == minted
    assert issuer.recover(rid, known=[], pending=adopted.value) == minted
    for plan in plans:
        assert minted.ref in plan_key_ids(apigw, plan)


def test_recover_adopts_when_pending_holds_it(issuer: ApiKeyIssuer) -> None:
    """recover() returns the named key when the store's pending value is that key."""
    rid = new_rotation_id()
    minted = issuer.mint(rid)
    assert issuer.recover(rid, known=[], pending=minted.value) == minted


def test_recover_deletes_a_key_pending_does_not_hold(apigw: Any, issuer: ApiKeyIssuer) -> None:
    """recover() deletes the named key when pending holds another value."""
    current = issuer.mint(new_rotation_id())
    rid = new_rotation_id()
    stray = issuer.mint(rid)
    assert (
        issuer.recover(
            rid, known=[str(current.ref)], pending=SecretValue("some-other-value-0000000001")
        )
        is None
    )
    assert all_key_ids(apigw) == {current.ref}
    assert stray.ref not in all_key_ids(apigw)


def test_recover_with_nothing_left_behind(apigw: Any, issuer: ApiKeyIssuer) -> None:
    """recover() of a rotation that minted nothing returns None and deletes nothing."""
    current = issuer.mint(new_rotation_id())
    assert issuer.recover(new_rotation_id(), known=[str(current.ref)], pending=None) is None
    assert all_key_ids(apigw) == {current.ref}


def test_verify_rejects_a_detached_key(apigw: Any, plans: list[str], issuer: ApiKeyIssuer) -> None:
    """verify() raises when the key is missing from a usage plan, naming the plan."""
    credential = issuer.mint(new_rotation_id())
    apigw.delete_usage_plan_key(usagePlanId=plans[0], keyId=credential.ref)
    with pytest.raises(VerificationError, match=plans[0]):
        issuer.verify(credential)


def test_verify_rejects_a_disabled_key(issuer: ApiKeyIssuer) -> None:
    """verify() raises for a disabled key."""
    credential = issuer.mint(new_rotation_id())
    issuer.revoke(str(credential.ref))
    with pytest.raises(VerificationError, match="disabled"):
        issuer.verify(credential)


def test_verify_rejects_a_deleted_key(issuer: ApiKeyIssuer) -> None:
    """verify() raises for a deleted key, without the value in the message."""
    credential = issuer.mint(new_rotation_id())
    issuer.delete(str(credential.ref))
    with pytest.raises(VerificationError) as caught:
        issuer.verify(credential)
    assert str(credential.value.reveal()) not in str(caught.value)


def test_verify_rejects_a_wrong_value(issuer: ApiKeyIssuer) -> None:
    """verify() raises when the key holds another value than the credential."""
    credential = issuer.mint(new_rotation_id())
    with pytest.raises(VerificationError):
        issuer.verify(Credential(SecretValue("another-value-00000000000001"), credential.ref))


def test_revoke_disables_twice(apigw: Any, issuer: ApiKeyIssuer) -> None:
    """revoke() disables the key; again, or on a missing key, is a no-op."""
    credential = issuer.mint(new_rotation_id())
    issuer.revoke(str(credential.ref))
    issuer.revoke(str(credential.ref))
    assert apigw.get_api_key(apiKey=credential.ref)["enabled"] is False
    issuer.revoke("doesnotexist")


def test_delete_removes_twice(apigw: Any, plans: list[str], issuer: ApiKeyIssuer) -> None:
    """delete() detaches the key from every plan and deletes it; again is a no-op."""
    credential = issuer.mint(new_rotation_id())
    issuer.revoke(str(credential.ref))
    issuer.delete(str(credential.ref))
    issuer.delete(str(credential.ref))
    assert all_key_ids(apigw) == set()
    for plan in plans:
        assert credential.ref not in plan_key_ids(apigw, plan)
    assert issuer.ref_of(credential.value) is None


# -- the Issuer contract ----------------------------------------------------------


class TestApiKeyContract(IssuerContract):
    """The Issuer contract over aws-apigateway-api-key, against in-process moto."""

    apigw: Any
    runtime: Runtime

    @pytest.fixture
    def issuer(self, apigw: Any, plans: list[str], runtime: Runtime) -> Issuer[Any]:
        self.apigw, self.runtime = apigw, runtime
        return ApiKeyIssuer(ApiKeyConfig(usage_plans=plans), runtime, SECRET)

    def usable(self, issuer: Issuer[Any], credential: Credential) -> bool:
        try:
            key = self.apigw.get_api_key(apiKey=str(credential.ref), includeValue=True)
        except self.apigw.exceptions.NotFoundException:
            return False
        return bool(key["enabled"]) and key["value"] == credential.value.text()

    def unavailable(self, issuer: Issuer[Any]) -> AbstractContextManager[None]:
        return outage(client(self.runtime, "apigateway"))

    @pytest.mark.skip(
        reason="a key is found again by the name it was minted under (recover), so inventory() "
        "lists nothing: the default"
    )
    def test_inventory_lists_a_minted_credential(self, issuer: Issuer[Any]) -> None:
        super().test_inventory_lists_a_minted_credential(issuer)
