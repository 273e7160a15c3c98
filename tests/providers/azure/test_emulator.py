"""The Key Vault emulator, driven through the real SecretClient, azure-identity and raw HTTPS.

Every expectation is traced to one of: /work/shared/notes/vault-and-azure-protocols.md
section 2 ("notes §2.x"); the Key Vault REST API 7.5 reference and its examples in
Azure/azure-rest-api-specs (specification/keyvault/data-plane/.../stable/7.5/examples,
"spec example X"); the Key Vault docs (about-secrets.md, about-keys-secrets-certificates.md,
soft-delete-overview.md); or responses of the real service recorded in public SDK test
recordings and issue reports ("real-service recordings").
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from rotator.sandbox.azure import KeyVaultEmulator
from tests.providers.azure.conftest import ManualClock, make_client

REPO = Path(__file__).resolve().parents[3]
SCOPE = "https://vault.azure.net/.default"
VERSION_ID = re.compile(r"^[0-9a-f]{32}$")
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000",'
    ' resource="https://vault.azure.net"'
)
MSI_ENV = ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT")


def token_for(kv: KeyVaultEmulator) -> str:
    """A bearer token from the emulator's own credential."""
    return kv.credential().get_token(SCOPE).token


def raw(
    kv: KeyVaultEmulator,
    method: str,
    path: str,
    *,
    token: str | None = "",
    api_version: str | None = "7.5",
    body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    base: str | None = None,
) -> requests.Response:
    """One HTTPS request to the vault; a fresh token unless ``token`` is given (None: no header)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token or token_for(kv)}"
    query = dict(params or {})
    if api_version is not None:
        query["api-version"] = api_version
    return requests.request(
        method,
        f"{base or kv.vault_url}{path}",
        params=query,
        headers=sent,
        json=body,
        verify=kv.ca_path,
        timeout=10,
    )


def error_of(response: requests.Response) -> dict[str, Any]:
    """The ``error`` object of Key Vault's error envelope."""
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    error: dict[str, Any] = response.json()["error"]
    return error


def service_error(error: HttpResponseError) -> tuple[int | None, dict[str, str], dict[str, Any]]:
    """The status, headers and JSON body of the response behind an SDK error."""
    response: Any = error.response
    assert response is not None
    return error.status_code, dict(response.headers), json.loads(response.text())


def epoch(moment: datetime) -> int:
    """Unix seconds."""
    return int(moment.timestamp())


# --------------------------------------------------------------------------- transport, auth


def test_challenge_then_bearer(keyvault: KeyVaultEmulator, secret_client: SecretClient) -> None:
    """Notes §2.2 steps 1-4: the SDK's first request carries no token and no body, gets the 401
    challenge, then resends with a bearer token."""
    secret_client.set_secret("app", "v1")
    first, second = list(keyvault.request_log)[:2]
    assert (first.method, first.authorization, first.body_length, first.status) == (
        "PUT",
        False,
        0,
        401,
    )
    assert (second.method, second.authorization, second.status) == ("PUT", True, 200)
    assert second.body_length > 0
    assert secret_client.get_secret("app").value == "v1"
    assert keyvault.request_log[-1].authorization


def test_challenge_header_and_body(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.2 step 2 and real-service recordings: a token-less request is 401 with the Bearer
    authorization/resource challenge and the AKV10000 envelope."""
    response = raw(keyvault, "GET", "/secrets", token=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert error_of(response) == {
        "code": "Unauthorized",
        "message": "AKV10000: Request is missing a Bearer or PoP token.",
    }


def test_plain_http_is_refused_by_the_sdk(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.2.8: the SDK refuses bearer auth over http:// before any network I/O, so nothing
    reaches the vault."""
    client = SecretClient(
        vault_url=f"http://127.0.0.1:{keyvault.port}",
        credential=keyvault.credential(),
        verify_challenge_resource=False,
        retry_total=0,
    )
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        client.get_secret("app")
    assert list(keyvault.request_log) == []


def test_vault_speaks_only_tls(keyvault: KeyVaultEmulator) -> None:
    """Notes §4 (HTTPS with a test CA): a plain-HTTP request to the vault port is dropped
    unanswered."""
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{keyvault.port}/secrets?api-version=7.5", timeout=10)
    assert list(keyvault.request_log) == []


def test_certificate_covers_localhost_and_ip_and_needs_the_ca(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.2.8: the server certificate (SAN localhost and 127.0.0.1) verifies with the CA
    bundle and fails default verification."""
    for base in (keyvault.vault_url, f"https://localhost:{keyvault.port}"):
        assert raw(keyvault, "GET", "/secrets", token=None, base=base).status_code == 401
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{keyvault.vault_url}/secrets", timeout=10)


def test_unknown_token_gets_the_challenge_again(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.2 step 6 and real-service recordings: a token the vault cannot validate is 401
    with the challenge (AKV10046)."""
    forged = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
        for part in ({"alg": "RS256"}, {"aud": "https://vault.azure.net"}, "sig")
    )
    response = raw(keyvault, "GET", "/secrets", token=forged)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert error_of(response)["message"].startswith("AKV10046:")


def test_expired_token_gets_the_challenge_again(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """Real-service recordings (azure-sdk-for-python#27266): an expired token is 401
    [TokenExpired] with the challenge, judged on the emulator clock."""
    token = token_for(clocked_keyvault)
    assert raw(clocked_keyvault, "GET", "/secrets", token=token).status_code == 200
    clock.advance(3600)
    response = raw(clocked_keyvault, "GET", "/secrets", token=token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert error_of(response)["message"] == "[TokenExpired] Error validating token: 'S2S12086'."


def test_sdk_recovers_from_an_expired_token_through_the_challenge(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """Notes §2.2 steps 4-6: a 401 challenge on a cached token makes the SDK fetch a new token
    and retry once."""
    client = make_client(clocked_keyvault)
    client.set_secret("app", "v1")
    clock.advance(2 * 3600)
    assert client.get_secret("app").value == "v1"
    statuses = [(r.method, r.status) for r in list(clocked_keyvault.request_log)[-2:]]
    assert statuses == [("GET", 401), ("GET", 200)]


def test_token_for_another_audience_or_tenant_is_refused(keyvault: KeyVaultEmulator) -> None:
    """Real-service errors AKV10022/AKV10032: Key Vault refuses tokens for another audience or
    issued in another tenant."""
    credential = keyvault.credential()
    management = credential.get_token("https://management.azure.com/.default").token
    response = raw(keyvault, "GET", "/secrets", token=management)
    assert response.status_code == 401
    assert error_of(response)["message"].startswith("AKV10022: Invalid audience.")
    foreign = credential.get_token(SCOPE, tenant_id="11111111-2222-3333-4444-555555555555").token
    response = raw(keyvault, "GET", "/secrets", token=foreign)
    assert response.status_code == 401
    assert error_of(response)["message"].startswith("AKV10032: Invalid issuer.")


def test_credential_issues_jwt_shaped_tokens_on_the_emulator_clock(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """Notes §2.2 step 4: the credential answers get_token and get_token_info (the SDK prefers
    the latter); expiry is one hour on the emulator clock."""
    credential = clocked_keyvault.credential()
    access = credential.get_token(SCOPE)
    info = credential.get_token_info(SCOPE, options={"tenant_id": clocked_keyvault.tenant_id})
    assert access.expires_on == info.expires_on == epoch(clock.now) + 3600
    assert info.token_type == "Bearer"
    payload = access.token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["tid"] == clocked_keyvault.tenant_id
    with pytest.raises(ValueError, match="scope"):
        credential.get_token()


def test_api_version_is_required_but_any_value_works(keyvault: KeyVaultEmulator) -> None:
    """Notes §4: every request must carry api-version (400 BadParameter without it) and any value
    is accepted."""
    response = raw(keyvault, "GET", "/secrets", api_version=None)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadParameter"
    assert raw(keyvault, "GET", "/secrets", api_version="1999-01-01").status_code == 200
    client = make_client(keyvault, api_version="7.5")
    client.set_secret("app", "v1")
    assert "api-version=7.5" in keyvault.request_log[-1].query


def test_response_headers_follow_key_vault(keyvault: KeyVaultEmulator) -> None:
    """Real-service recordings: JSON answers are application/json; charset=utf-8 with no-cache
    headers, a request id, and the echoed client request id."""
    response = raw(keyvault, "GET", "/secrets", headers={"x-ms-client-request-id": "abc-123"})
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["x-ms-client-request-id"] == "abc-123"
    assert response.headers["x-ms-request-id"]


# --------------------------------------------------------------------------- secrets


def test_set_get_latest_and_version(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """REST Set Secret / Get Secret (spec examples SetSecret, GetSecret): each set is a new
    32-hex version and get without version returns the latest."""
    first = secret_client.set_secret("app", "v1")
    second = secret_client.set_secret("app", "v1")
    assert first.properties.version != second.properties.version
    for secret in (first, second):
        assert VERSION_ID.match(secret.properties.version or "")
        assert secret.id == f"{keyvault.vault_url}/secrets/app/{secret.properties.version}"
    secret_client.set_secret("app", "v2")
    assert secret_client.get_secret("app").value == "v2"
    assert secret_client.get_secret("app", first.properties.version).value == "v1"


def test_latest_answers_with_and_without_trailing_slash(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.1: the SDK gets the latest version at /secrets/{name}/ (trailing slash);
    /secrets/{name} answers the same."""
    raw(keyvault, "PUT", "/secrets/app", body={"value": "v1"})
    for path in ("/secrets/app/", "/secrets/app"):
        response = raw(keyvault, "GET", path)
        assert response.status_code == 200
        assert response.json()["value"] == "v1"
    assert keyvault.request_log[-2].path == "/secrets/app/"


def test_bundle_shape_and_integer_timestamps(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """Spec example SetSecret and notes §2.1: a SecretBundle has value, id and attributes with
    integer Unix seconds from the clock, recoveryLevel and recoverableDays."""
    response = raw(
        clocked_keyvault,
        "PUT",
        "/secrets/app",
        body={"value": "v1", "contentType": "text/plain", "tags": {"k": "v"}},
    )
    body = response.json()
    assert response.status_code == 200
    assert body["value"] == "v1"
    assert body["contentType"] == "text/plain"
    assert body["tags"] == {"k": "v"}
    assert body["attributes"] == {
        "enabled": True,
        "created": epoch(clock.now),
        "updated": epoch(clock.now),
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    }


def test_recovery_level_follows_the_vault_configuration() -> None:
    """Real-service recordings and soft-delete docs: 90-day retention is Recoverable+Purgeable,
    shorter is CustomizedRecoverable+Purgeable, none is Purgeable."""
    expected = {
        (True, 90): ("Recoverable+Purgeable", 90),
        (True, 7): ("CustomizedRecoverable+Purgeable", 7),
        (False, 90): ("Purgeable", None),
    }
    for (soft_delete, days), (level, recoverable) in expected.items():
        with KeyVaultEmulator(soft_delete=soft_delete, recoverable_days=days) as kv:
            attributes = raw(kv, "PUT", "/secrets/app", body={"value": "v"}).json()["attributes"]
            assert attributes["recoveryLevel"] == level
            assert attributes.get("recoverableDays") == recoverable


def test_list_versions_pages_with_next_link(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Spec example GetSecretVersions and notes §2.1: versions list without values, page by
    maxresults, and nextLink is absolute with api-version and a $skiptoken."""
    created = {secret_client.set_secret("app", f"v{i}").properties.version for i in range(5)}
    listed = [
        p.version or ""
        for p in secret_client.list_properties_of_secret_versions("app", max_page_size=2)
    ]
    assert set(listed) == created
    assert listed == sorted(listed)
    pages = [r for r in keyvault.request_log if r.path == "/secrets/app/versions"]
    assert len(pages) == 3
    assert all("skiptoken" in r.query for r in pages[1:])
    first = raw(keyvault, "GET", "/secrets/app/versions", params={"maxresults": "2"}).json()
    assert all("value" not in item for item in first["value"])
    assert first["nextLink"].startswith(f"{keyvault.vault_url}/secrets/app/versions?")
    assert "api-version=7.5" in first["nextLink"]
    assert "$skiptoken=" in first["nextLink"]
    assert "maxresults=2" in first["nextLink"]


def test_versions_of_an_unknown_secret_are_an_empty_list(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Real-service recordings: listing versions of a secret that does not exist is 200 with an
    empty value and a null nextLink."""
    assert list(secret_client.list_properties_of_secret_versions("missing")) == []
    assert raw(keyvault, "GET", "/secrets/missing/versions").json() == {
        "value": [],
        "nextLink": None,
    }


def test_list_secrets_latest_without_values(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Spec example GetSecrets: the list holds each secret once, with an id without version and
    no value, paged by maxresults."""
    for name in ("beta", "alpha", "gamma"):
        secret_client.set_secret(name, "old")
        secret_client.set_secret(name, "new", content_type="text/plain")
    listed = list(secret_client.list_properties_of_secrets(max_page_size=1))
    assert [p.name for p in listed] == ["alpha", "beta", "gamma"]
    assert all(p.content_type == "text/plain" for p in listed)
    item = raw(keyvault, "GET", "/secrets", params={"maxresults": "1"}).json()["value"][0]
    assert item["id"] == f"{keyvault.vault_url}/secrets/alpha"
    assert "value" not in item


def test_disable_then_get_is_forbidden(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Notes §2.1 and real-service recordings: a disabled version answers 403 Forbidden,
    innererror SecretDisabled, for the version and as the latest."""
    secret = secret_client.set_secret("app", "v1")
    version = secret.properties.version
    updated = secret_client.update_secret_properties("app", version, enabled=False)
    assert updated.enabled is False
    client = make_client(keyvault, retry_total=0)
    for requested in (version, None):
        with pytest.raises(HttpResponseError) as caught:
            client.get_secret("app", requested)
        status, _, body = service_error(caught.value)
        assert status == 403
        error = body["error"]
        assert error["code"] == "Forbidden"
        assert error["message"] == "Operation get is not allowed on a disabled secret."
        assert error["innererror"] == {"code": "SecretDisabled"}
    secret_client.update_secret_properties("app", version, enabled=True)
    assert secret_client.get_secret("app").value == "v1"


def test_update_properties_round_trip(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """REST Update Secret (spec example UpdateSecret): PATCH sets tags, contentType, nbf and exp,
    moves updated, and answers without the value."""
    client = make_client(clocked_keyvault)
    secret = client.set_secret("app", "v1")
    clock.advance(60)
    not_before = clock.now + timedelta(days=1)
    expires_on = clock.now + timedelta(days=30)
    client.update_secret_properties(
        "app",
        secret.properties.version,
        tags={"CredentialId": "key1"},
        content_type="password",
        not_before=not_before,
        expires_on=expires_on,
    )
    got = client.get_secret("app").properties
    assert got.tags == {"CredentialId": "key1"}
    assert got.content_type == "password"
    assert got.not_before == not_before
    assert got.expires_on == expires_on
    assert got.updated_on == clock.now
    assert got.created_on == clock.now - timedelta(seconds=60)
    patched = raw(clocked_keyvault, "PATCH", "/secrets/app/", body={"tags": {"a": "b"}}).json()
    assert "value" not in patched
    assert patched["tags"] == {"a": "b"}


def test_expiry_attributes_round_trip_and_do_not_block_reads(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """about-secrets.md (Date-time controlled operations): nbf/exp round-trip as set, and a get
    still works outside the nbf/exp window."""
    client = make_client(clocked_keyvault)
    expires_on = clock.now + timedelta(days=1)
    not_before = clock.now + timedelta(hours=1)
    secret = client.set_secret("app", "v1", expires_on=expires_on, not_before=not_before)
    assert secret.properties.expires_on == expires_on
    assert secret.properties.not_before == not_before
    assert client.get_secret("app").value == "v1"
    clock.advance(2 * 86400)
    expired = client.get_secret("app")
    assert expired.value == "v1"
    assert expired.properties.expires_on == expires_on


def test_ids_use_the_request_host(keyvault: KeyVaultEmulator) -> None:
    """Notes §4: ids are built from the Host header, so a client on localhost sees localhost ids
    and the SDK parses them."""
    local = make_client(keyvault, vault_url=f"https://localhost:{keyvault.port}")
    secret = local.set_secret("app", "v1")
    assert (secret.id or "").startswith(f"https://localhost:{keyvault.port}/secrets/app/")
    assert secret.properties.vault_url == f"https://localhost:{keyvault.port}"
    by_ip = make_client(keyvault).get_secret("app")
    assert (by_ip.id or "").startswith(f"{keyvault.vault_url}/secrets/app/")
    named = raw(keyvault, "GET", "/secrets/app", headers={"Host": "myvault.vault.azure.net"})
    assert named.json()["id"].startswith("https://myvault.vault.azure.net/secrets/app/")


def test_missing_secret_is_404_secret_not_found(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Notes §2.1 and real-service recordings: a missing secret or version is 404 SecretNotFound
    "A secret with (name/id) X was not found in this key vault"."""
    with pytest.raises(ResourceNotFoundError):
        secret_client.get_secret("missing")
    error = error_of(raw(keyvault, "GET", "/secrets/missing/"))
    assert error["code"] == "SecretNotFound"
    assert error["message"].startswith(
        "A secret with (name/id) missing was not found in this key vault."
    )
    secret_client.set_secret("app", "v1")
    version = "0" * 32
    error = error_of(raw(keyvault, "GET", f"/secrets/app/{version}"))
    assert error["message"].startswith(f"A secret with (name/id) app/{version} was not found")


def test_invalid_names_are_bad_parameter(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """about-keys-secrets-certificates.md and real-service errors: names outside
    ^[0-9a-zA-Z-]{1,127}$ are 400 BadParameter "The request URI contains an invalid name"."""
    client = make_client(keyvault, retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        client.set_secret("bad_name", "v")
    assert caught.value.status_code == 400
    for name in ("bad_name", "x" * 128):
        response = raw(keyvault, "PUT", f"/secrets/{name}", body={"value": "v"})
        assert response.status_code == 400
        assert error_of(response) == {
            "code": "BadParameter",
            "message": f"The request URI contains an invalid name: {name}",
        }
    assert secret_client.set_secret("a-" + "x" * 125, "v").name == "a-" + "x" * 125


def test_names_are_case_insensitive(secret_client: SecretClient) -> None:
    """about-keys-secrets-certificates.md (object names are case-insensitive): a secret written
    as App is read as app."""
    secret_client.set_secret("App", "v1")
    got = secret_client.get_secret("app")
    assert got.value == "v1"
    assert got.name == "App"


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"value": "v", "tags": {f"t{i}": "x" for i in range(16)}}, {}),
        ({"value": "v", "contentType": "c" * 256}, {}),
        ({"value": "v" * (25 * 1024 + 1)}, {}),
        ({"tags": {}}, {}),
        ({"value": "v", "attributes": {"exp": "tomorrow"}}, {}),
    ],
)
def test_documented_limits_and_malformed_bodies_are_bad_parameter(
    keyvault: KeyVaultEmulator, body: dict[str, Any], params: dict[str, str]
) -> None:
    """about-secrets.md limits (15 tags, 255-character contentType, 25 KB values) and the REST
    schema (value required, IntDate exp) are enforced with 400 BadParameter."""
    response = raw(keyvault, "PUT", "/secrets/app", body=body, params=params)
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadParameter"


def test_maxresults_is_limited_to_25(keyvault: KeyVaultEmulator) -> None:
    """REST Get Secrets (maxresults minimum 1, maximum 25): other page sizes are 400
    BadParameter."""
    for size in ("0", "26", "many"):
        response = raw(keyvault, "GET", "/secrets", params={"maxresults": size})
        assert response.status_code == 400
    assert raw(keyvault, "GET", "/secrets", params={"maxresults": "25"}).status_code == 200


def test_unknown_routes_and_verbs(keyvault: KeyVaultEmulator) -> None:
    """Notes §4 and the REST reference's operation list: a path the API lacks is 404 and a verb a
    path lacks is 405 with Allow."""
    assert raw(keyvault, "GET", "/keys").status_code == 404
    response = raw(keyvault, "POST", "/secrets/app")
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET, PATCH, PUT"
    assert raw(keyvault, "DELETE", f"/secrets/app/{'0' * 32}").status_code == 405


# --------------------------------------------------------------------------- soft delete


def finish_delete(client: SecretClient, kv: KeyVaultEmulator, clock: ManualClock, name: str) -> Any:
    """Delete ``name`` through the SDK, move the clock past the delete, and wait for the poller."""
    poller = client.begin_delete_secret(name, _polling_interval=0.01)
    clock.advance(kv.delete_delay)
    poller.wait(timeout=30)
    assert poller.done()
    return poller.result()


def test_soft_delete_get_deleted_and_recover(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """REST Delete / Get Deleted / Recover Deleted Secret (spec examples) and notes §2.1 polling:
    delete keeps every version recoverable until scheduledPurgeDate."""
    client = make_client(clocked_keyvault)
    first = client.set_secret("app", "v1")
    client.set_secret("app", "v2")
    deleted_at = clock.now
    deleted = finish_delete(client, clocked_keyvault, clock, "app")
    assert deleted.recovery_id == f"{clocked_keyvault.vault_url}/deletedsecrets/app"
    assert deleted.deleted_date == deleted_at
    assert deleted.scheduled_purge_date == deleted_at + timedelta(days=90)
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("app")
    assert client.get_deleted_secret("app").name == "app"
    assert [d.name for d in client.list_deleted_secrets()] == ["app"]
    assert [p.name for p in client.list_properties_of_secrets()] == []
    recovery = client.begin_recover_deleted_secret("app", _polling_interval=0.01)
    clock.advance(clocked_keyvault.recover_delay)
    recovery.wait(timeout=30)
    assert recovery.done()
    assert recovery.result().name == "app"
    assert client.get_secret("app").value == "v2"
    assert client.get_secret("app", first.properties.version).value == "v1"
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("app")


def assert_busy(kv: KeyVaultEmulator, busy: dict[str, Any]) -> None:
    """A set, a purge and a recover of ``app`` each answer 409 with the error ``busy``."""
    for method, path, body in (
        ("PUT", "/secrets/app", {"value": "v2"}),
        ("DELETE", "/deletedsecrets/app", None),
        ("POST", "/deletedsecrets/app/recover", None),
    ):
        response = raw(kv, method, path, body=body)
        assert response.status_code == 409, (method, path)
        assert error_of(response) == busy


def test_a_delete_takes_time_and_answers_as_key_vault_meanwhile(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """The SDK's delete poller (notes §2.1) and real-service recordings: after DELETE the deleted
    secret is 404 until the delete completes (6 s of the clock by default), so the poller keeps
    waiting; meanwhile a set, a purge and a recover are 409 Conflict "Secret is currently being
    deleted.", innererror ObjectIsBeingDeleted."""
    kv = clocked_keyvault
    assert (kv.delete_delay, kv.recover_delay) == (6.0, 4.0)
    client = make_client(kv, retry_total=0)
    client.set_secret("app", "v1")
    poller = client.begin_delete_secret("app", _polling_interval=0.01)
    assert poller.result().recovery_id == f"{kv.vault_url}/deletedsecrets/app"
    assert error_of(raw(kv, "GET", "/deletedsecrets/app")) == {
        "code": "SecretNotFound",
        "message": "Deleted Secret not found: app",
    }
    assert error_of(raw(kv, "GET", "/secrets/app/"))["code"] == "SecretNotFound"
    assert raw(kv, "GET", "/deletedsecrets").json()["value"] == []
    assert raw(kv, "GET", "/secrets").json()["value"] == []
    busy = {
        "code": "Conflict",
        "message": "Secret is currently being deleted.",
        "innererror": {"code": "ObjectIsBeingDeleted"},
    }
    assert_busy(kv, busy)
    with pytest.raises(ResourceExistsError):
        client.set_secret("app", "v2")
    assert raw(kv, "DELETE", "/secrets/app").status_code == 404
    # The SDK's poller keeps polling GET /deletedsecrets/app while it is 404 (it stops on a
    # 200 or a 403): the raw 404s above and below show that it cannot be done yet.
    clock.advance(kv.delete_delay - 1)
    assert raw(kv, "GET", "/deletedsecrets/app").status_code == 404
    clock.advance(1)
    poller.wait(timeout=30)
    assert poller.done()
    assert client.get_deleted_secret("app").name == "app"
    after = error_of(raw(kv, "PUT", "/secrets/app", body={"value": "v2"}))
    assert after["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}


def test_a_recovery_takes_time_and_answers_as_key_vault_meanwhile(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """The SDK's recover poller (notes §2.1): after a recover the secret is 404 until the recovery
    completes (4 s of the clock by default) and the deleted entry stays until then; a set, a
    purge or another recover meanwhile is 409 Conflict, innererror ObjectIsBeingRecovered."""
    kv = clocked_keyvault
    client = make_client(kv, retry_total=0)
    client.set_secret("app", "v1")
    finish_delete(client, kv, clock, "app")
    recovery = client.begin_recover_deleted_secret("app", _polling_interval=0.01)
    assert recovery.result().name == "app"
    assert error_of(raw(kv, "GET", "/secrets/app/"))["code"] == "SecretNotFound"
    assert client.get_deleted_secret("app").name == "app"
    assert [d.name for d in client.list_deleted_secrets()] == ["app"]
    busy = {
        "code": "Conflict",
        "message": "Secret is currently being recovered.",
        "innererror": {"code": "ObjectIsBeingRecovered"},
    }
    assert_busy(kv, busy)
    # The SDK's poller keeps polling GET /secrets/app while it is 404 (it stops on a 200 or
    # a 403): the raw 404s above and below show that it cannot be done yet.
    clock.advance(kv.recover_delay - 1)
    assert raw(kv, "GET", "/secrets/app/").status_code == 404
    clock.advance(1)
    recovery.wait(timeout=30)
    assert recovery.done()
    assert client.get_secret("app").value == "v1"
    assert raw(kv, "GET", "/deletedsecrets/app").status_code == 404


def test_without_delays_deletes_and_recoveries_complete_at_once(keyvault: KeyVaultEmulator) -> None:
    """Emulator contract: with delete_delay=0 and recover_delay=0 (the wall-clock fixtures and
    the sandbox) the next request already sees a delete or a recover complete."""
    assert (keyvault.delete_delay, keyvault.recover_delay) == (0, 0)
    raw(keyvault, "PUT", "/secrets/app", body={"value": "v1"})
    assert raw(keyvault, "DELETE", "/secrets/app").status_code == 200
    assert raw(keyvault, "GET", "/deletedsecrets/app").status_code == 200
    assert raw(keyvault, "POST", "/deletedsecrets/app/recover").status_code == 200
    assert raw(keyvault, "GET", "/secrets/app/").json()["value"] == "v1"


def test_timing_and_purge_protection_arguments_are_checked() -> None:
    """Emulator contract: delays are seconds, zero or more; purge protection needs soft delete,
    as in Key Vault."""
    for delays in ({"delete_delay": -1.0}, {"recover_delay": float("nan")}):
        with pytest.raises(ValueError, match="seconds"):
            KeyVaultEmulator(**delays)
    with pytest.raises(ValueError, match="soft delete"):
        KeyVaultEmulator(soft_delete=False, purge_protection=True)


def test_purge_protection_refuses_purges_and_reports_the_recovery_level(
    clock: ManualClock,
) -> None:
    """Key Vault's DeletionRecoveryLevel and the real service's refusal (Terraform and az error
    output): with purge protection recoveryLevel has no "+Purgeable", a purge is 403 Forbidden
    'Operation "purge" is not allowed because purge protection is enabled for this vault. ...',
    and a deleted secret can only be recovered, or waits for the vault's own purge."""
    for days, level in ((90, "Recoverable"), (7, "CustomizedRecoverable")):
        with KeyVaultEmulator(purge_protection=True, recoverable_days=days) as kv:
            attributes = raw(kv, "PUT", "/secrets/app", body={"value": "v"}).json()["attributes"]
            assert (attributes["recoveryLevel"], attributes["recoverableDays"]) == (level, days)
    with KeyVaultEmulator(clock=clock, purge_protection=True) as kv:
        assert kv.purge_protection
        client = make_client(kv, retry_total=0)
        client.set_secret("app", "v1")
        finish_delete(client, kv, clock, "app")
        with pytest.raises(HttpResponseError) as caught:
            client.purge_deleted_secret("app")
        status, _, body = service_error(caught.value)
        assert status == 403
        assert body == {
            "error": {
                "code": "Forbidden",
                "message": 'Operation "purge" is not allowed because purge protection is enabled '
                "for this vault. Key Vault service will automatically purge it after the "
                "retention period has passed.",
            }
        }
        deleted = client.get_deleted_secret("app")
        assert deleted.properties.recovery_level == "Recoverable"
        recovery = client.begin_recover_deleted_secret("app", _polling_interval=0.01)
        clock.advance(kv.recover_delay)
        recovery.wait(timeout=30)
        assert client.get_secret("app").value == "v1"
        finish_delete(client, kv, clock, "app")
        clock.advance(90 * 86400)
        with pytest.raises(ResourceNotFoundError):
            client.get_deleted_secret("app")
        assert client.set_secret("app", "v2").value == "v2"


def test_deleted_bundle_shape(clocked_keyvault: KeyVaultEmulator, clock: ManualClock) -> None:
    """Spec examples DeleteSecret and GetDeletedSecrets: the bundle has recoveryId, deletedDate,
    scheduledPurgeDate and the version id, and no value; list ids have no version."""
    version = raw(clocked_keyvault, "PUT", "/secrets/app", body={"value": "v"}).json()["id"]
    body = raw(clocked_keyvault, "DELETE", "/secrets/app").json()
    assert body["id"] == version
    assert "value" not in body
    assert body["deletedDate"] == epoch(clock.now)
    assert body["scheduledPurgeDate"] == epoch(clock.now) + 90 * 86400
    clock.advance(clocked_keyvault.delete_delay)
    item = raw(clocked_keyvault, "GET", "/deletedsecrets").json()["value"][0]
    assert item["id"] == f"{clocked_keyvault.vault_url}/secrets/app"
    assert item["recoveryId"] == f"{clocked_keyvault.vault_url}/deletedsecrets/app"


def test_purge_answers_204_and_frees_the_name(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Notes §2.1 (purge is 204 only) and spec example PurgeDeletedSecret: purge empties the name
    for good."""
    secret_client.set_secret("app", "v1")
    secret_client.begin_delete_secret("app", _polling_interval=0.01).wait()
    response = raw(keyvault, "DELETE", "/deletedsecrets/app")
    assert response.status_code == 204
    assert response.content == b""
    with pytest.raises(ResourceNotFoundError):
        secret_client.get_deleted_secret("app")
    error = error_of(raw(keyvault, "GET", "/deletedsecrets/app"))
    assert error == {"code": "SecretNotFound", "message": "Deleted Secret not found: app"}
    secret_client.set_secret("app", "v2")
    secret_client.begin_delete_secret("app", _polling_interval=0.01).wait()
    secret_client.purge_deleted_secret("app")
    assert list(secret_client.list_deleted_secrets()) == []


def test_set_while_deleted_is_409_conflict(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Notes §2.1 and real-service errors: setting a deleted-but-recoverable name is 409
    Conflict, innererror ObjectIsDeletedButRecoverable."""
    secret_client.set_secret("app", "v1")
    secret_client.begin_delete_secret("app", _polling_interval=0.01).wait()
    with pytest.raises(ResourceExistsError):
        secret_client.set_secret("app", "v2")
    error = error_of(raw(keyvault, "PUT", "/secrets/app", body={"value": "v2"}))
    assert error["code"] == "Conflict"
    assert error["innererror"] == {"code": "ObjectIsDeletedButRecoverable"}
    assert error["message"].startswith("Secret app is currently in a deleted but recoverable state")


def test_delete_without_soft_delete_completes_at_once() -> None:
    """Notes §2.1 polling: a delete answer without recoveryId means no soft delete, so the poller
    is done at once and the name is free."""
    with KeyVaultEmulator(soft_delete=False) as kv:
        client = make_client(kv)
        client.set_secret("app", "v1")
        poller = client.begin_delete_secret("app")
        assert poller.status() == "finished"
        assert poller.result().recovery_id is None
        assert poller.result().name == "app"
        assert raw(kv, "GET", "/deletedsecrets/app").status_code == 404
        assert client.set_secret("app", "v2").value == "v2"


def test_deleted_secret_is_purged_at_its_scheduled_date(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """Soft-delete overview (retention period): once scheduledPurgeDate passes, the deleted
    secret is gone and the name is free."""
    client = make_client(clocked_keyvault)
    client.set_secret("app", "v1")
    finish_delete(client, clocked_keyvault, clock, "app")
    clock.advance(90 * 86400 - 1 - clocked_keyvault.delete_delay)
    assert client.get_deleted_secret("app").name == "app"
    clock.advance(1)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("app")
    assert client.set_secret("app", "v2").value == "v2"


def test_delete_recover_and_purge_of_unknown_names_are_404(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """REST Delete / Recover / Purge Deleted Secret: a name that is not there is 404
    SecretNotFound."""
    with pytest.raises(ResourceNotFoundError):
        secret_client.begin_delete_secret("missing")
    for method, path in (
        ("POST", "/deletedsecrets/missing/recover"),
        ("DELETE", "/deletedsecrets/missing"),
    ):
        response = raw(keyvault, method, path)
        assert response.status_code == 404
        assert error_of(response)["code"] == "SecretNotFound"


def test_list_deleted_secrets_pages(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Spec example GetDeletedSecrets: deleted secrets are listed with recovery fields and paged
    through nextLink."""
    for name in ("one", "two", "three"):
        secret_client.set_secret(name, "v")
        secret_client.begin_delete_secret(name, _polling_interval=0.01).wait()
    listed = list(secret_client.list_deleted_secrets(max_page_size=2))
    assert sorted(d.name or "" for d in listed) == ["one", "three", "two"]
    assert all(d.recovery_id and d.scheduled_purge_date for d in listed)


# --------------------------------------------------------------------------- faults


def test_fault_429_with_retry_after(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.2.10 and real-service 429 bodies: an injected 429 carries the Throttled envelope
    and Retry-After, once."""
    client = make_client(keyvault, retry_total=0)
    client.set_secret("app", "v1")
    keyvault.inject_fault("/secrets/app", status=429, retry_after=7)
    with pytest.raises(HttpResponseError) as caught:
        client.get_secret("app")
    status, headers, body = service_error(caught.value)
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body["error"]["code"] == "Throttled"
    assert client.get_secret("app").value == "v1"


def test_fault_503_fails_without_retries_and_is_retried_otherwise(
    keyvault: KeyVaultEmulator,
) -> None:
    """Notes §2.2.10: the default retry policy retries 5xx, so a single 503 is absorbed; with
    retry_total=0 it surfaces."""
    strict = make_client(keyvault, retry_total=0)
    strict.set_secret("app", "v1")
    keyvault.inject_fault("/secrets/app", status=503)
    with pytest.raises(HttpResponseError) as caught:
        strict.get_secret("app")
    assert caught.value.status_code == 503
    keyvault.inject_fault("/secrets/app", status=503)
    assert make_client(keyvault).get_secret("app").value == "v1"
    assert [r.status for r in list(keyvault.request_log)[-2:]] == [503, 200]


def test_fault_matches_method_and_counts(keyvault: KeyVaultEmulator) -> None:
    """Emulator contract (fault injection): only requests with the given verb and path prefix
    fail, exactly count times."""
    client = make_client(keyvault, retry_total=0)
    client.set_secret("app", "v1")
    keyvault.inject_fault("/secrets/app", status=500, count=2, method="PUT")
    assert client.get_secret("app").value == "v1"
    for _ in range(2):
        with pytest.raises(HttpResponseError) as caught:
            client.set_secret("app", "v2")
        assert caught.value.status_code == 500
    assert client.set_secret("app", "v2").value == "v2"


def test_fault_delay_only_serves_normally(keyvault: KeyVaultEmulator) -> None:
    """Emulator contract (fault injection): a fault without status only delays the matching
    request."""
    client = make_client(keyvault)
    client.set_secret("app", "v1")
    keyvault.inject_fault("/secrets/app", status=None, delay=0.05)
    started = time.monotonic()
    assert client.get_secret("app").value == "v1"
    assert time.monotonic() - started >= 0.05


def test_fault_never_replaces_the_challenge(keyvault: KeyVaultEmulator) -> None:
    """Notes §2.2 step 2: the 401 challenge comes first, so a pending fault waits for an
    authenticated request."""
    keyvault.inject_fault("/secrets", status=503)
    assert raw(keyvault, "GET", "/secrets", token=None).status_code == 401
    assert raw(keyvault, "GET", "/secrets").status_code == 503
    assert raw(keyvault, "GET", "/secrets").status_code == 200


def test_fault_arguments_are_checked(keyvault: KeyVaultEmulator) -> None:
    """Emulator contract (fault injection): nonsensical faults are refused up front."""
    for kwargs in ({"count": 0}, {"delay": -1.0}, {"status": 200}, {"retry_after": -1}):
        with pytest.raises(ValueError):
            keyvault.inject_fault("/secrets", **kwargs)


# --------------------------------------------------------------------------- managed identity


def test_managed_identity_credential_gets_a_token_and_works(
    keyvault: KeyVaultEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notes §2.2 (a real credential against a local stub): ManagedIdentityCredential uses
    IDENTITY_ENDPOINT/IDENTITY_HEADER and its token works with SecretClient."""
    for name in MSI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", keyvault.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", keyvault.identity_header)
    credential = ManagedIdentityCredential()
    assert credential.get_token(SCOPE).token.count(".") == 2
    client = make_client(keyvault, credential=credential)
    client.set_secret("app", "from-msi")
    assert client.get_secret("app").value == "from-msi"


def test_msi_endpoint_answers_app_service_shape(
    clocked_keyvault: KeyVaultEmulator, clock: ManualClock
) -> None:
    """Notes §2.2 and App Service 2019-08-01 protocol: the answer is access_token, expires_on as
    an epoch string, resource, token_type Bearer, client_id."""
    response = requests.get(
        clocked_keyvault.identity_endpoint,
        params={
            "api-version": "2019-08-01",
            "resource": "https://vault.azure.net",
            "client_id": "my-client",
        },
        headers={"X-IDENTITY-HEADER": clocked_keyvault.identity_header},
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["expires_on"] == str(epoch(clock.now) + 3600)
    assert body["resource"] == "https://vault.azure.net"
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == "my-client"
    assert raw(clocked_keyvault, "GET", "/secrets", token=body["access_token"]).status_code == 200


def test_msi_endpoint_checks_header_version_and_resource(keyvault: KeyVaultEmulator) -> None:
    """App Service managed identity protocol: a missing X-IDENTITY-HEADER is 400, a wrong one
    401, a missing resource or another api-version 400."""
    good = {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
    header = {"X-IDENTITY-HEADER": keyvault.identity_header}
    cases = [
        (good, {}, 400),
        (good, {"X-IDENTITY-HEADER": "wrong"}, 401),
        ({"api-version": "2019-08-01"}, header, 400),
        ({**good, "api-version": "2017-09-01"}, header, 400),
    ]
    for params, headers, status in cases:
        response = requests.get(
            keyvault.identity_endpoint, params=params, headers=headers, timeout=10
        )
        assert response.status_code == status
        assert response.json()["statusCode"] == status
        assert response.json()["message"]


def test_managed_identity_with_the_wrong_header_fails(
    keyvault: KeyVaultEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notes §3 (ManagedIdentityCredential uses IDENTITY_ENDPOINT/IDENTITY_HEADER): a wrong
    header makes get_token raise."""
    for name in MSI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", keyvault.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(SCOPE)


# --------------------------------------------------------------------------- concurrency, CLI


def test_concurrent_writers_lose_nothing(
    keyvault: KeyVaultEmulator, secret_client: SecretClient
) -> None:
    """Emulator contract (thread-safe): concurrent sets from several threads all become versions."""
    secret_client.set_secret("app", "seed")
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        """Write five versions."""
        try:
            for step in range(5):
                secret_client.set_secret("app", f"{index}-{step}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(list(secret_client.list_properties_of_secret_versions("app"))) == 41


def test_stop_removes_the_ca_and_refuses_connections() -> None:
    """Emulator contract: stop() closes the vault and deletes the temporary CA bundle."""
    kv = KeyVaultEmulator().start()
    ca_path, url = kv.ca_path, kv.vault_url
    assert Path(ca_path).is_file()
    kv.stop()
    assert not Path(ca_path).exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/secrets", timeout=5, verify=False)
    with pytest.raises(RuntimeError):
        _ = kv.ca_path


@contextmanager
def served_by_cli(*args: str) -> Iterator[dict[str, str]]:
    """Run ``python -m rotator.sandbox.azure --port 0 ARGS``; yield its exports, then SIGTERM it.

    After the block the process must have exited 0 and removed its CA bundle.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "rotator.sandbox.azure", "--port", "0", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout
        lines: queue.Queue[str] = queue.Queue()

        def read_lines() -> None:
            """Forward the subprocess's output lines to the queue."""
            for line in stdout:
                lines.put(line.strip())

        threading.Thread(target=read_lines, daemon=True).start()
        exports = dict(
            lines.get(timeout=30).removeprefix("export ").split("=", 1) for _ in range(4)
        )
        yield exports
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0
    assert not Path(exports["REQUESTS_CA_BUNDLE"]).exists()


def test_cli_prints_exports_and_serves() -> None:
    """Emulator contract (CLI): python -m rotator.sandbox.azure prints the four exports and
    serves HTTPS until SIGTERM."""
    with served_by_cli() as exports:
        assert set(exports) == {
            "AZURE_KEYVAULT_URL",
            "REQUESTS_CA_BUNDLE",
            "IDENTITY_ENDPOINT",
            "IDENTITY_HEADER",
        }
        assert exports["AZURE_KEYVAULT_URL"].startswith("https://127.0.0.1:")
        response = requests.get(
            f"{exports['AZURE_KEYVAULT_URL']}/secrets?api-version=7.5",
            verify=exports["REQUESTS_CA_BUNDLE"],
            timeout=10,
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer authorization=")


def test_cli_serves_a_purge_protected_vault_with_the_delays_asked_for() -> None:
    """Emulator contract (CLI): --purge-protection and --delete-delay reach the vault: a secret
    reports recoveryLevel Recoverable, is among the deleted at once with a zero delay, and its
    purge is refused with 403."""
    with served_by_cli("--purge-protection", "--delete-delay", "0") as exports:
        token = requests.get(
            exports["IDENTITY_ENDPOINT"],
            params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
            headers={"X-IDENTITY-HEADER": exports["IDENTITY_HEADER"]},
            timeout=10,
        ).json()["access_token"]

        def call(method: str, path: str, body: Any = None) -> requests.Response:
            return requests.request(
                method,
                f"{exports['AZURE_KEYVAULT_URL']}{path}",
                params={"api-version": "7.5"},
                headers={"Authorization": f"Bearer {token}"},
                json=body,
                verify=exports["REQUESTS_CA_BUNDLE"],
                timeout=10,
            )

        written = call("PUT", "/secrets/app", {"value": "v1"}).json()
        assert written["attributes"]["recoveryLevel"] == "Recoverable"
        assert call("DELETE", "/secrets/app").status_code == 200
        assert call("GET", "/deletedsecrets/app").status_code == 200
        assert call("DELETE", "/deletedsecrets/app").status_code == 403
