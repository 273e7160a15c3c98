"""The emulator's API Management part: ARM's subscription-key calls and the gateway.

Driven through the real ``azure-mgmt-apimanagement`` client and raw HTTPS.
Expectations come from the SDK itself (the paths, verbs and statuses its
generated operations send and accept, api-version 2024-05-01), ARM's
documented error envelope and authentication failures
(``AuthenticationFailed``, ``InvalidAuthenticationToken...``,
``ExpiredAuthenticationToken``, ``ResourceGroupNotFound``...), and the
gateway's documented 401 texts for a missing or invalid subscription key.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.mgmt.apimanagement import ApiManagementClient

from rotator.sandbox.azure import KeyVaultEmulator
from tests.providers.azure.conftest import ManualClock, make_client

AZURE = "6c0d2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
GROUP = "rg-gateway"
SERVICE = "fabrikam-apim"
SID = "mobile-app"
ARM_SCOPE = "https://management.azure.com/.default"
KEY = re.compile(r"^[0-9a-f]{32}$")


def seed(kv: KeyVaultEmulator, **kwargs: Any) -> tuple[str, str]:
    """Create the test's subscription; return its keys."""
    return kv.apim.add_subscription(
        SERVICE, SID, azure_subscription=AZURE, resource_group=GROUP, **kwargs
    )


def client(kv: KeyVaultEmulator, credential: Any = None) -> ApiManagementClient:
    """A real management client for the emulator (no retries, its CA)."""
    return ApiManagementClient(
        credential or kv.credential(),
        AZURE,
        base_url=kv.url,
        connection_verify=kv.ca_path,
        retry_total=0,
    )


def arm(
    kv: KeyVaultEmulator,
    method: str,
    suffix: str = "",
    *,
    token: str | None = "",
    api_version: str | None = "2024-05-01",
) -> requests.Response:
    """One raw ARM request on the subscription; an ARM token unless ``token`` (None: none)."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or kv.credential().get_token(ARM_SCOPE).token}"
    params = {"api-version": api_version} if api_version else {}
    path = kv.apim.resource_path(SERVICE, SID, azure_subscription=AZURE, resource_group=GROUP)
    return requests.request(
        method,
        f"{kv.url}{path}{suffix}",
        headers=headers,
        params=params,
        verify=kv.ca_path,
        timeout=10,
    )


def gateway(kv: KeyVaultEmulator, key: str | None, service: str = SERVICE) -> requests.Response:
    """One call to the emulated gateway with ``key`` in Ocp-Apim-Subscription-Key."""
    headers = {"Ocp-Apim-Subscription-Key": key} if key is not None else {}
    return requests.get(
        kv.apim.gateway_url(service), headers=headers, verify=kv.ca_path, timeout=10
    )


# -- ARM through the SDK -------------------------------------------------------------------


def test_the_sdk_reads_the_subscription_contract(keyvault: KeyVaultEmulator) -> None:
    """get() parses id, name, display name, state and dates; the answer carries an ETag."""
    seed(keyvault, display_name="Mobile app", scope="/products/starter")
    headers: dict[str, Any] = {}
    contract = client(keyvault).subscription.get(
        GROUP, SERVICE, SID, cls=lambda _r, body, h: headers.update(h) or body
    )
    assert contract.name == SID
    assert contract.display_name == "Mobile app"
    assert contract.state == "active"
    assert contract.id.endswith(f"/service/{SERVICE}/subscriptions/{SID}")
    assert contract.scope.endswith(f"/service/{SERVICE}/products/starter")
    assert isinstance(contract.created_date, datetime)
    assert contract.primary_key is None and contract.secondary_key is None
    assert headers["ETag"]


def test_regenerating_a_key_changes_that_slot_only(keyvault: KeyVaultEmulator) -> None:
    """regenerate_primary_key answers 204; listSecrets then shows a new primary, same secondary."""
    primary, secondary = seed(keyvault)
    subscriptions = client(keyvault).subscription
    before = subscriptions.list_secrets(GROUP, SERVICE, SID)
    assert (before.primary_key, before.secondary_key) == (primary, secondary)
    etag = arm(keyvault, "GET").headers["ETag"]
    subscriptions.regenerate_primary_key(GROUP, SERVICE, SID)
    after = subscriptions.list_secrets(GROUP, SERVICE, SID)
    assert after.primary_key != primary and KEY.match(after.primary_key or "")
    assert after.secondary_key == secondary
    assert arm(keyvault, "GET").headers["ETag"] != etag
    subscriptions.regenerate_secondary_key(GROUP, SERVICE, SID)
    assert keyvault.apim.keys(SERVICE, SID)[1] != secondary
    statuses = [(r.method, r.status) for r in keyvault.request_log if "regenerate" in r.path]
    assert statuses == [("POST", 204), ("POST", 204)]
    assert all("api-version=2024-05-01" in r.query for r in keyvault.request_log)


@pytest.mark.parametrize(
    ("coordinates", "code", "named"),
    [
        ((AZURE, GROUP, SERVICE, "nobody"), "ResourceNotFound", "Subscription not found."),
        ((AZURE, GROUP, "ghost-apim", SID), "ResourceNotFound", "service/ghost-apim"),
        ((AZURE, "rg-ghost", SERVICE, SID), "ResourceGroupNotFound", "rg-ghost"),
        (
            ("00000000-0000-0000-0000-00000000beef", GROUP, SERVICE, SID),
            "SubscriptionNotFound",
            "00000000-0000-0000-0000-00000000beef",
        ),
    ],
)
def test_what_is_missing_is_a_404_in_arms_envelope(
    keyvault: KeyVaultEmulator, coordinates: tuple[str, str, str, str], code: str, named: str
) -> None:
    """An unknown sid, service, resource group or Azure subscription: 404 with ARM's code."""
    seed(keyvault)
    azure, group, service, sid = coordinates
    management = ApiManagementClient(
        keyvault.credential(),
        azure,
        base_url=keyvault.url,
        connection_verify=keyvault.ca_path,
        retry_total=0,
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        management.subscription.list_secrets(group, service, sid)
    assert caught.value.error is not None and caught.value.error.code == code
    assert named in str(caught.value.error.message)


def test_the_sdk_gets_a_401_for_a_foreign_audience_once(keyvault: KeyVaultEmulator) -> None:
    """A Key Vault token is refused once (no retry loop): ClientAuthenticationError."""
    seed(keyvault)

    class VaultTokens:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            return keyvault.credential().get_token("https://vault.azure.net/.default")

    with pytest.raises(ClientAuthenticationError) as caught:
        client(keyvault, VaultTokens()).subscription.get(GROUP, SERVICE, SID)
    assert caught.value.status_code == 401
    assert [r.status for r in keyvault.request_log] == [401]


# -- ARM authentication and request checks, raw ----------------------------------------------


def test_no_token_is_401_with_arms_challenge(keyvault: KeyVaultEmulator) -> None:
    """Without Authorization: 401 AuthenticationFailed and a non-claims Bearer challenge."""
    seed(keyvault)
    answer = arm(keyvault, "POST", "/listSecrets", token=None)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "AuthenticationFailed"
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization_uri="https://login.windows.net/"')
    assert 'error="invalid_token"' in challenge


def test_a_token_it_never_issued_is_refused(keyvault: KeyVaultEmulator) -> None:
    """A made-up bearer token is 401 InvalidAuthenticationToken."""
    seed(keyvault)
    answer = arm(keyvault, "GET", token="eyJhbGciOiJub25lIn0.e30.")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_a_vault_token_is_the_wrong_audience_and_an_arm_token_is_refused_by_the_vault(
    keyvault: KeyVaultEmulator,
) -> None:
    """Each audience opens only its own API: ARM refuses a vault token and vice versa."""
    seed(keyvault)
    vault_token = keyvault.credential().get_token("https://vault.azure.net/.default").token
    answer = arm(keyvault, "GET", token=vault_token)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    arm_token = keyvault.credential().get_token(ARM_SCOPE).token
    vault = requests.get(
        f"{keyvault.vault_url}/secrets/app/",
        headers={"Authorization": f"Bearer {arm_token}"},
        params={"api-version": "7.5"},
        verify=keyvault.ca_path,
        timeout=10,
    )
    assert vault.status_code == 401
    assert "AKV10022" in vault.json()["error"]["message"]
    assert arm(keyvault, "GET", token=arm_token).status_code == 200


def test_a_token_of_another_tenant_is_refused(keyvault: KeyVaultEmulator) -> None:
    """A token issued for another tenant is 401 InvalidAuthenticationTokenTenant."""
    seed(keyvault)
    token = keyvault.credential().get_token(ARM_SCOPE, tenant_id="other-tenant").token
    answer = arm(keyvault, "GET", token=token)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationTokenTenant"


def test_an_expired_token_is_refused_on_the_emulator_clock(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """A token past its hour (on the emulator's clock) is 401 ExpiredAuthenticationToken."""
    seed(clocked_keyvault)
    token = clocked_keyvault.credential().get_token(ARM_SCOPE).token
    assert arm(clocked_keyvault, "GET", token=token).status_code == 200
    clock.advance(3601)
    answer = arm(clocked_keyvault, "GET", token=token)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_api_version_is_required(keyvault: KeyVaultEmulator) -> None:
    """Without api-version: 400 MissingApiVersionParameter."""
    seed(keyvault)
    answer = arm(keyvault, "GET", api_version=None)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "MissingApiVersionParameter"


def test_unknown_verbs_and_paths(keyvault: KeyVaultEmulator) -> None:
    """DELETE on a subscription is 405 with Allow; an action it does not serve is 404."""
    seed(keyvault)
    deleted = arm(keyvault, "DELETE")
    assert deleted.status_code == 405 and deleted.headers["Allow"] == "GET, HEAD"
    listed = arm(keyvault, "GET", "/listSecrets")
    assert listed.status_code == 405 and listed.headers["Allow"] == "POST"
    assert arm(keyvault, "POST", "/activate").status_code == 404


def test_injected_faults_answer_in_arms_envelope(keyvault: KeyVaultEmulator) -> None:
    """inject_fault on an ARM path: the next matching call gets it, with Retry-After; then 200."""
    seed(keyvault)
    path = keyvault.apim.resource_path(SERVICE, SID, azure_subscription=AZURE, resource_group=GROUP)
    keyvault.inject_fault(path + "/listSecrets", status=429, retry_after=3)
    throttled = arm(keyvault, "POST", "/listSecrets")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert arm(keyvault, "POST", "/listSecrets").status_code == 200


def test_seeding_refuses_a_duplicate_or_an_unknown_state(keyvault: KeyVaultEmulator) -> None:
    """A sid is unique within its service, and states are APIM's."""
    seed(keyvault)
    with pytest.raises(ValueError, match="exists already"):
        seed(keyvault)
    with pytest.raises(ValueError, match="state"):
        keyvault.apim.add_subscription("other-apim", "x", state="paused")
    assert keyvault.apim.every_key() == list(keyvault.apim.keys(SERVICE, SID))


# -- the gateway ------------------------------------------------------------------------------


def test_the_gateway_accepts_either_current_key(keyvault: KeyVaultEmulator) -> None:
    """Both keys of an active subscription open the gateway; the answer names the slot."""
    primary, secondary = seed(keyvault)
    assert gateway(keyvault, primary).json() == {"subscription": SID, "key": "primary"}
    assert gateway(keyvault, secondary).json() == {"subscription": SID, "key": "secondary"}
    by_query = requests.get(
        keyvault.apim.gateway_url(SERVICE),
        params={"subscription-key": primary},
        verify=keyvault.ca_path,
        timeout=10,
    )
    assert by_query.status_code == 200


def test_the_gateway_refuses_missing_invalid_and_regenerated_keys(
    keyvault: KeyVaultEmulator,
) -> None:
    """401 with the gateway's texts for no key and a wrong key; a regenerated key is wrong."""
    primary, _ = seed(keyvault)
    missing = gateway(keyvault, None)
    assert missing.status_code == 401
    assert missing.json()["message"].startswith("Access denied due to missing subscription key")
    invalid = gateway(keyvault, "0" * 32)
    assert invalid.status_code == 401
    assert invalid.json()["message"].startswith("Access denied due to invalid subscription key")
    client(keyvault).subscription.regenerate_primary_key(GROUP, SERVICE, SID)
    assert gateway(keyvault, primary).status_code == 401


def test_the_gateway_refuses_a_suspended_subscription_and_unknown_services(
    keyvault: KeyVaultEmulator,
) -> None:
    """Only active subscriptions' keys work; a service the emulator does not hold is 404."""
    primary, _ = seed(keyvault)
    keyvault.apim.set_state(SERVICE, SID, "suspended")
    assert gateway(keyvault, primary).status_code == 401
    keyvault.apim.set_state(SERVICE, SID, "active")
    assert gateway(keyvault, primary).status_code == 200
    assert gateway(keyvault, primary, service="nowhere-apim").status_code == 404


def test_gateway_faults_and_the_vault_still_answering(keyvault: KeyVaultEmulator) -> None:
    """A gateway fault is served once; the vault on the same port is unaffected."""
    primary, _ = seed(keyvault)
    keyvault.inject_fault(f"/apim/{SERVICE}/", status=503)
    assert gateway(keyvault, primary).status_code == 503
    assert gateway(keyvault, primary).status_code == 200
    make_client(keyvault).set_secret("app", "value-next-to-apim")
    assert make_client(keyvault).get_secret("app").value == "value-next-to-apim"


def test_clear_faults_drops_the_gateways_and_the_vaults(keyvault: KeyVaultEmulator) -> None:
    """One clear_faults drops the faults still waiting on the gateway, ARM and the vault alike."""
    primary, _ = seed(keyvault)
    path = keyvault.apim.resource_path(SERVICE, SID, azure_subscription=AZURE, resource_group=GROUP)
    keyvault.inject_fault(f"/apim/{SERVICE}/", status=503, count=1000)
    keyvault.inject_fault(path, status=503, count=1000)
    keyvault.inject_fault("/secrets", status=503, count=1000)
    assert gateway(keyvault, primary).status_code == 503
    keyvault.clear_faults()
    assert gateway(keyvault, primary).status_code == 200
    assert arm(keyvault, "POST", "/listSecrets").status_code == 200
    make_client(keyvault).set_secret("app", "value-after-the-faults")
    assert make_client(keyvault).get_secret("app").value == "value-after-the-faults"
