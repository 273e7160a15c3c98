"""The Vault emulator, driven through the real hvac client and raw HTTP.

Every expectation is traced to Vault's API documentation, Vault's source, or
/work/shared/notes/vault-and-azure-protocols.md section 1 ("notes §1.x").
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
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests

from rotator.sandbox.vault import VaultEmulator
from tests.providers.vault.conftest import ManualClock

REPO = Path(__file__).resolve().parents[3]
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
ENVELOPE_KEYS = {
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
}
READ_APP_ONLY = 'path "secret/data/app/*" {\n  capabilities = ["read", "list"]\n}\n'


def raw(
    vault: VaultEmulator,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """Send one request straight to the emulator, with the root token unless told otherwise."""
    sent = {"X-Vault-Token": vault.root_token if token is None else token}
    sent.update(headers or {})
    return requests.request(method, f"{vault.url}{path}", headers=sent, json=body, timeout=10)


def client_with(vault: VaultEmulator, token: str, namespace: str | None = None) -> hvac.Client:
    """An hvac client holding another token."""
    return hvac.Client(url=vault.url, token=token, namespace=namespace)


def token_with_policy(client: hvac.Client, name: str, policy: str, **create: Any) -> str:
    """Store a policy and mint a token holding only it (plus default)."""
    client.sys.create_or_update_acl_policy(name=name, policy=policy)
    return str(client.auth.token.create(policies=[name], **create)["auth"]["client_token"])


def make_jwt(claims: dict[str, Any]) -> str:
    """A hand-made, unsigned JWT carrying the given claims."""

    def part(value: bytes) -> str:
        """Base64url without padding, as JWTs encode their parts."""
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{part(json.dumps(claims).encode())}.{part(b'not-a-real-signature')}"


def kv_write(client: hvac.Client, path: str, secret: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Write a KV v2 secret through hvac."""
    result: dict[str, Any] = client.secrets.kv.v2.create_or_update_secret(path, secret=secret, **kw)
    return result


def kv_read(client: hvac.Client, path: str, **kw: Any) -> dict[str, Any]:
    """Read a KV v2 secret through hvac, raising on deleted versions."""
    kw.setdefault("raise_on_deleted_version", True)
    result: dict[str, Any] = client.secrets.kv.v2.read_secret_version(path, **kw)
    return result


# --------------------------------------------------------------------------- HTTP envelope


def test_success_envelope_and_exact_content_type(vault: VaultEmulator) -> None:
    """Notes §1.1: a success carries the eight envelope keys with Content-Type application/json."""
    response = raw(vault, "GET", "/v1/auth/token/lookup-self")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json()) >= ENVELOPE_KEYS


def test_error_envelope_is_parsed_by_hvac(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Notes §1.1: errors are {"errors":[...]} as exactly application/json; hvac fills e.errors."""
    kv_write(hvac_client, "app/db", {"a": 1})
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        kv_write(hvac_client, "app/db", {"a": 2}, cas=7)
    assert caught.value.errors == ["check-and-set parameter did not match the current version"]
    response = raw(
        vault, "POST", "/v1/secret/data/app/db", body={"options": {"cas": 7}, "data": {}}
    )
    assert response.headers["Content-Type"] == "application/json"


def test_missing_secret_is_404_with_empty_errors(vault: VaultEmulator) -> None:
    """Notes §1.1: a plain not-found is 404 {"errors":[]}."""
    response = raw(vault, "GET", "/v1/secret/data/nothing/here")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"errors": []}


def test_unknown_token_is_403_permission_denied(vault: VaultEmulator) -> None:
    """Notes §1.1: a bad token gets 403 {"errors":["permission denied"]}; hvac raises Forbidden."""
    response = raw(vault, "GET", "/v1/secret/data/app/db", token="hvs.not-a-token")
    assert response.status_code == 403
    assert response.json() == {"errors": ["permission denied"]}
    with pytest.raises(hvac.exceptions.Forbidden):
        kv_read(client_with(vault, "hvs.not-a-token"), "app/db")


def test_missing_token_is_403(vault: VaultEmulator) -> None:
    """Vault token auth docs: requests to authenticated paths without X-Vault-Token are denied."""
    response = requests.get(f"{vault.url}/v1/secret/data/app/db", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"errors": ["permission denied"]}


def test_is_authenticated_uses_lookup_self(vault: VaultEmulator) -> None:
    """Notes §1.1: Client.is_authenticated() is True for a live token and False on 403."""
    assert client_with(vault, vault.root_token).is_authenticated()
    assert not client_with(vault, "hvs.garbage").is_authenticated()


def test_bearer_authorization_header_is_accepted(vault: VaultEmulator) -> None:
    """Vault API auth docs: the token may also come as Authorization: Bearer <token>."""
    response = requests.get(
        f"{vault.url}/v1/auth/token/lookup-self",
        headers={"Authorization": f"Bearer {vault.root_token}"},
        timeout=10,
    )
    assert response.status_code == 200


def test_metadata_write_is_204_with_no_body(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """KV v2 docs and notes §1.2: POST metadata answers 204 with an empty body."""
    response = raw(vault, "POST", "/v1/secret/metadata/app/x", body={"max_versions": 3})
    assert response.status_code == 204
    assert response.content == b""
    # Vault's respondOk sets the content type before it knows there is no body.
    assert response.headers["Content-Type"] == "application/json"
    via_hvac = hvac_client.secrets.kv.v2.update_metadata("app/x", max_versions=4)
    assert isinstance(via_hvac, requests.Response)
    assert via_hvac.status_code == 204


def test_list_verb_and_get_list_true_are_equivalent(vault: VaultEmulator) -> None:
    """Notes §1.1: hvac uses LIST by default and GET ?list=true with strict_http; both work."""
    client = client_with(vault, vault.root_token)
    kv_write(client, "app/a", {"x": 1})
    kv_write(client, "app/b/c", {"x": 1})
    strict = hvac.Client(url=vault.url, token=vault.root_token, strict_http=True)
    default_keys = client.secrets.kv.v2.list_secrets("app")["data"]["keys"]
    strict_keys = strict.secrets.kv.v2.list_secrets("app")["data"]["keys"]
    assert default_keys == strict_keys == ["a", "b/"]


def test_double_slashes_are_collapsed(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Notes §1.1: paths with // are treated like single slashes."""
    kv_write(hvac_client, "app/db", {"a": 1})
    response = raw(vault, "GET", "/v1//secret//data/app//db")
    assert response.status_code == 200
    assert response.json()["data"]["data"] == {"a": 1}


def test_unknown_mount_is_no_handler_404(vault: VaultEmulator) -> None:
    """Vault router: a path under no mount is 404 'no handler for route ... entry not found.'"""
    response = raw(vault, "GET", "/v1/nowhere/thing")
    assert response.status_code == 404
    assert response.json() == {
        "errors": ['no handler for route "nowhere/thing". route entry not found.']
    }


def test_unknown_path_in_a_mount_is_unsupported_path(vault: VaultEmulator) -> None:
    """Vault framework: an unknown path inside a backend is 404 'unsupported path' (multierror)."""
    response = raw(vault, "GET", "/v1/auth/token/no-such-endpoint")
    assert response.status_code == 404
    assert response.json() == {"errors": ["1 error occurred:\n\t* unsupported path\n\n"]}


def test_unsupported_operation_is_405(vault: VaultEmulator) -> None:
    """Vault framework: a known path without the requested operation is 405."""
    response = raw(vault, "DELETE", "/v1/auth/token/lookup-self")
    assert response.status_code == 405
    assert response.json() == {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}


def test_response_wrapping_is_refused(vault: VaultEmulator) -> None:
    """Emulator divergence (documented): X-Vault-Wrap-TTL is refused rather than ignored."""
    response = raw(vault, "GET", "/v1/auth/token/lookup-self", headers={"X-Vault-Wrap-TTL": "60"})
    assert response.status_code == 400


# --------------------------------------------------------------------------- KV v2


def test_write_then_read_latest(clocked_client: hvac.Client) -> None:
    """KV v2 docs: a write returns the version metadata; a read returns data and metadata."""
    written = kv_write(clocked_client, "app/db", {"password": "one"})["data"]
    assert written == {
        "version": 1,
        "created_time": "2026-01-01T00:00:00Z",
        "deletion_time": "",
        "destroyed": False,
        "custom_metadata": None,
    }
    kv_write(clocked_client, "app/db", {"password": "two"})
    read = kv_read(clocked_client, "app/db")["data"]
    assert read["data"] == {"password": "two"}
    assert read["metadata"]["version"] == 2


def test_read_a_specific_version(hvac_client: hvac.Client) -> None:
    """KV v2 docs: ?version=N reads that version; a version never written is a 404."""
    kv_write(hvac_client, "app/db", {"v": 1})
    kv_write(hvac_client, "app/db", {"v": 2})
    assert kv_read(hvac_client, "app/db", version=1)["data"]["data"] == {"v": 1}
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(hvac_client, "app/db", version=9)


def test_write_without_data_is_400(vault: VaultEmulator) -> None:
    """vault-plugin-secrets-kv path_data.go: a write without "data" is 400 'no data provided'."""
    response = raw(vault, "POST", "/v1/secret/data/app/db", body={"options": {}})
    assert response.status_code == 400
    assert response.json() == {"errors": ["no data provided"]}


def test_cas_zero_only_creates(hvac_client: hvac.Client) -> None:
    """KV v2 docs: cas=0 only writes if the key does not exist."""
    kv_write(hvac_client, "app/new", {"a": 1}, cas=0)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        kv_write(hvac_client, "app/new", {"a": 2}, cas=0)
    assert caught.value.errors == ["check-and-set parameter did not match the current version"]


def test_cas_must_match_current_version(hvac_client: hvac.Client) -> None:
    """KV v2 docs: a non-zero cas writes only if it equals the current version."""
    kv_write(hvac_client, "app/db", {"a": 1})
    assert kv_write(hvac_client, "app/db", {"a": 2}, cas=1)["data"]["version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv_write(hvac_client, "app/db", {"a": 3}, cas=1)


def test_cas_required_on_engine_config(hvac_client: hvac.Client) -> None:
    """Notes §1.3: cas_required on the engine config and no cas is 400 'parameter required'."""
    hvac_client.secrets.kv.v2.configure(cas_required=True)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        kv_write(hvac_client, "app/db", {"a": 1})
    assert caught.value.errors == ["check-and-set parameter required for this call"]
    kv_write(hvac_client, "app/db", {"a": 1}, cas=0)


def test_cas_required_on_key_metadata(hvac_client: hvac.Client) -> None:
    """Notes §1.3: cas_required on the key's metadata also makes cas mandatory."""
    hvac_client.secrets.kv.v2.update_metadata("app/db", cas_required=True)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        kv_write(hvac_client, "app/db", {"a": 1})
    assert caught.value.errors == ["check-and-set parameter required for this call"]
    kv_write(hvac_client, "app/other", {"a": 1})


def test_unparseable_cas_is_400(vault: VaultEmulator) -> None:
    """Notes §1.3: a cas that does not parse is 400 'error parsing check-and-set parameter'."""
    response = raw(
        vault, "POST", "/v1/secret/data/app/db", body={"options": {"cas": "abc"}, "data": {}}
    )
    assert response.status_code == 400
    assert response.json() == {"errors": ["error parsing check-and-set parameter"]}


def test_key_max_versions_prunes_oldest(hvac_client: hvac.Client) -> None:
    """Notes §1.3: past max_versions the oldest versions are pruned and oldest_version advances."""
    hvac_client.secrets.kv.v2.update_metadata("app/db", max_versions=3)
    for value in range(5):
        kv_write(hvac_client, "app/db", {"v": value})
    metadata = hvac_client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert sorted(metadata["versions"]) == ["3", "4", "5"]
    assert metadata["oldest_version"] == 3
    assert metadata["current_version"] == 5
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(hvac_client, "app/db", version=1)


def test_max_versions_zero_means_ten(hvac_client: hvac.Client) -> None:
    """Notes §1.3: max_versions 0 means 10 (vault-plugin-secrets-kv defaultMaxVersions)."""
    for value in range(12):
        kv_write(hvac_client, "app/db", {"v": value})
    metadata = hvac_client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert len(metadata["versions"]) == 10
    assert metadata["oldest_version"] == 3
    assert min(int(k) for k in metadata["versions"]) == 3


def test_engine_max_versions_applies_to_keys(hvac_client: hvac.Client) -> None:
    """KV v2 AddVersion: the larger of the engine's and the key's max_versions is kept."""
    hvac_client.secrets.kv.v2.configure(max_versions=2)
    for value in range(4):
        kv_write(hvac_client, "app/db", {"v": value})
    metadata = hvac_client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert sorted(metadata["versions"]) == ["3", "4"]


def test_delete_version_after_reads_until_deadline(
    clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """Notes §1.3: delete_version_after sets a future deletion_time; reads work until it passes."""
    clocked_client.secrets.kv.v2.configure(delete_version_after="1h")
    written = kv_write(clocked_client, "app/db", {"a": 1})["data"]
    assert written["deletion_time"] == "2026-01-01T01:00:00Z"
    clock.advance(3599)
    assert kv_read(clocked_client, "app/db")["data"]["data"] == {"a": 1}
    clock.advance(2)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(clocked_client, "app/db")
    body = kv_read(clocked_client, "app/db", raise_on_deleted_version=False)
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["deletion_time"] == "2026-01-01T01:00:00Z"


def test_key_delete_version_after_smaller_than_engine_wins(
    clocked_client: hvac.Client,
) -> None:
    """vault-plugin-secrets-kv deletionTime: the smaller non-zero of engine and key values wins."""
    clocked_client.secrets.kv.v2.configure(delete_version_after="2h")
    clocked_client.secrets.kv.v2.update_metadata("app/db", delete_version_after="30m")
    written = kv_write(clocked_client, "app/db", {"a": 1})["data"]
    assert written["deletion_time"] == "2026-01-01T00:30:00Z"


def test_deleted_latest_version_is_full_envelope_404(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Notes §1.3: a deleted version reads as 404 with data.data null, metadata, and no errors."""
    kv_write(hvac_client, "app/db", {"a": 1})
    response = raw(vault, "DELETE", "/v1/secret/data/app/db")
    assert response.status_code == 204
    response = raw(vault, "GET", "/v1/secret/data/app/db")
    assert response.status_code == 404
    body = response.json()
    assert "errors" not in body
    assert body["data"]["data"] is None
    assert RFC3339_NANO.match(body["data"]["metadata"]["deletion_time"])
    assert body["data"]["metadata"]["version"] == 1


def test_soft_delete_takes_effect_under_a_frozen_clock(clocked_client: hvac.Client) -> None:
    """KV v2 docs: a deleted version no longer reads, even if the test clock has not moved."""
    kv_write(clocked_client, "app/db", {"a": 1})
    clocked_client.secrets.kv.v2.delete_latest_version_of_secret("app/db")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(clocked_client, "app/db")


def test_hvac_raise_on_deleted_version(hvac_client: hvac.Client) -> None:
    """Notes §1.3: raise_on_deleted_version=True raises InvalidPath; False returns the body."""
    kv_write(hvac_client, "app/db", {"a": 1})
    hvac_client.secrets.kv.v2.delete_latest_version_of_secret("app/db")
    with pytest.raises(hvac.exceptions.InvalidPath) as caught:
        kv_read(hvac_client, "app/db", raise_on_deleted_version=True)
    assert caught.value.json["data"]["metadata"]["version"] == 1
    body = kv_read(hvac_client, "app/db", raise_on_deleted_version=False)
    assert body["data"]["data"] is None


def test_delete_and_undelete_versions(hvac_client: hvac.Client) -> None:
    """KV v2 docs: delete/ soft-deletes listed versions; undelete/ restores them."""
    kv_write(hvac_client, "app/db", {"v": 1})
    kv_write(hvac_client, "app/db", {"v": 2})
    hvac_client.secrets.kv.v2.delete_secret_versions("app/db", versions=[1])
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(hvac_client, "app/db", version=1)
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"v": 2}
    hvac_client.secrets.kv.v2.undelete_secret_versions("app/db", versions=[1])
    read = kv_read(hvac_client, "app/db", version=1)["data"]
    assert read["data"] == {"v": 1}
    assert read["metadata"]["deletion_time"] == ""


def test_destroy_is_permanent(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """KV v2 docs: destroy/ removes the data for good; undelete cannot bring it back."""
    kv_write(hvac_client, "app/db", {"v": 1})
    hvac_client.secrets.kv.v2.destroy_secret_versions("app/db", versions=[1])
    response = raw(vault, "GET", "/v1/secret/data/app/db")
    assert response.status_code == 404
    assert response.json()["data"]["data"] is None
    assert response.json()["data"]["metadata"]["destroyed"] is True
    hvac_client.secrets.kv.v2.undelete_secret_versions("app/db", versions=[1])
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(hvac_client, "app/db")


def test_versions_parameter_is_required(vault: VaultEmulator) -> None:
    """vault-plugin-secrets-kv path_delete.go: delete/ without versions is 400."""
    response = raw(vault, "POST", "/v1/secret/delete/app/db", body={})
    assert response.status_code == 400
    assert response.json() == {"errors": ["No version number provided"]}


def test_metadata_read_fields(clocked_client: hvac.Client, clock: ManualClock) -> None:
    """Notes §1.2: metadata has versions keyed by string and the key's settings, times RFC 3339."""
    kv_write(clocked_client, "app/db", {"v": 1})
    clock.advance(1.5)
    kv_write(clocked_client, "app/db", {"v": 2})
    metadata = clocked_client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert set(metadata) >= {
        "versions",
        "current_version",
        "oldest_version",
        "created_time",
        "updated_time",
        "max_versions",
        "cas_required",
        "delete_version_after",
        "custom_metadata",
    }
    assert metadata["versions"]["1"] == {
        "created_time": "2026-01-01T00:00:00Z",
        "deletion_time": "",
        "destroyed": False,
    }
    assert metadata["created_time"] == "2026-01-01T00:00:00Z"
    assert metadata["updated_time"] == "2026-01-01T00:00:01.5Z"
    assert metadata["delete_version_after"] == "0s"
    assert metadata["max_versions"] == 0
    assert metadata["cas_required"] is False
    assert metadata["custom_metadata"] is None


def test_custom_metadata_round_trip(hvac_client: hvac.Client) -> None:
    """KV v2 docs: custom_metadata written on metadata/ shows in metadata and data reads."""
    kv_write(hvac_client, "app/db", {"v": 1})
    hvac_client.secrets.kv.v2.update_metadata("app/db", custom_metadata={"owner": "team-a"})
    metadata = hvac_client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert metadata["custom_metadata"] == {"owner": "team-a"}
    read = kv_read(hvac_client, "app/db")["data"]
    assert read["metadata"]["custom_metadata"] == {"owner": "team-a"}


def test_hvac_update_metadata_resets_delete_version_after(hvac_client: hvac.Client) -> None:
    """Notes §1.3 pitfall: hvac's update_metadata always sends delete_version_after "0s"."""
    hvac_client.secrets.kv.v2.update_metadata("app/db", delete_version_after="1h")
    hvac_client.secrets.kv.v2.update_metadata("app/db", max_versions=5)
    metadata = hvac_client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert metadata["delete_version_after"] == "0s"


def test_metadata_delete_removes_everything(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """KV v2 docs: DELETE metadata/ removes the key and all versions; reads become 404."""
    kv_write(hvac_client, "app/db", {"v": 1})
    hvac_client.secrets.kv.v2.delete_metadata_and_all_versions("app/db")
    response = raw(vault, "GET", "/v1/secret/data/app/db")
    assert response.status_code == 404
    assert response.json() == {"errors": []}
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.read_secret_metadata("app/db")


def test_list_keys_and_folders(hvac_client: hvac.Client) -> None:
    """KV v2 docs: LIST metadata/ gives the next segment, folders with a trailing slash."""
    for path in ("app/a", "app/b", "app/sub/c", "other/x"):
        kv_write(hvac_client, path, {"v": 1})
    assert hvac_client.secrets.kv.v2.list_secrets("")["data"]["keys"] == ["app/", "other/"]
    assert hvac_client.secrets.kv.v2.list_secrets("app")["data"]["keys"] == ["a", "b", "sub/"]


def test_empty_list_is_404(hvac_client: hvac.Client) -> None:
    """Notes §1.2: an empty list result is a 404."""
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.secrets.kv.v2.list_secrets("nothing")


def test_engine_config_round_trip(hvac_client: hvac.Client) -> None:
    """Notes §1.2: config write is 204; read shows max_versions, cas_required, Go durations."""
    response = hvac_client.secrets.kv.v2.configure(
        max_versions=7, cas_required=True, delete_version_after="90m"
    )
    assert response.status_code == 204
    config = hvac_client.secrets.kv.v2.read_configuration()["data"]
    assert config == {"cas_required": True, "delete_version_after": "1h30m0s", "max_versions": 7}


# hvac's patch() calls read_secret_version without raise_on_deleted_version internally.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_hvac_patch_reads_then_writes_with_cas(hvac_client: hvac.Client) -> None:
    """Notes §1.2: hvac's patch reads, merges client-side and writes with cas=current version."""
    kv_write(hvac_client, "app/db", {"user": "app", "password": "one"})
    hvac_client.secrets.kv.v2.patch("app/db", {"password": "two"})
    read = kv_read(hvac_client, "app/db")["data"]
    assert read["data"] == {"user": "app", "password": "two"}
    assert read["metadata"]["version"] == 2


def test_http_patch_is_a_merge_patch(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """KV v2 docs: PATCH data/ with application/merge-patch+json merges; other types get 415."""
    kv_write(hvac_client, "app/db", {"user": "app", "password": "one", "drop": "me"})
    patch = {"data": {"password": "two", "drop": None}}
    merge = {"Content-Type": "application/merge-patch+json"}
    response = requests.patch(
        f"{vault.url}/v1/secret/data/app/db",
        headers={"X-Vault-Token": vault.root_token, **merge},
        data=json.dumps(patch),
        timeout=10,
    )
    assert response.status_code == 200
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"user": "app", "password": "two"}
    wrong = raw(vault, "PATCH", "/v1/secret/data/app/db", body=patch)
    assert wrong.status_code == 415


def test_timestamps_keep_sub_second_precision(
    clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """Notes §1.3: timestamps are RFC 3339 with nanoseconds and Z (Go trims trailing zeros)."""
    clock.now = clock.now.replace(microsecond=123456)
    written = kv_write(clocked_client, "app/db", {"v": 1})["data"]
    assert written["created_time"] == "2026-01-01T00:00:00.123456Z"
    assert RFC3339_NANO.match(written["created_time"])


def test_concurrent_writes_are_serialised(hvac_client: hvac.Client, vault: VaultEmulator) -> None:
    """Thread safety: concurrent writes to one key each get a distinct version."""
    versions: list[int] = []
    lock = threading.Lock()

    def write() -> None:
        """Write once from a thread of its own and record the version it got."""
        client = client_with(vault, vault.root_token)
        version = kv_write(client, "app/db", {"v": 1})["data"]["version"]
        with lock:
            versions.append(version)

    threads = [threading.Thread(target=write) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 13))


# --------------------------------------------------------------------------- tokens


def test_root_token_lookup(hvac_client: hvac.Client, vault: VaultEmulator) -> None:
    """Token auth docs: the root token has policy root, no expiry and is not renewable."""
    data = hvac_client.auth.token.lookup_self()["data"]
    assert data["id"] == vault.root_token
    assert data["policies"] == ["root"]
    assert data["expire_time"] is None
    assert data["ttl"] == 0
    assert data["renewable"] is False
    assert data["display_name"] == "root"
    assert data["path"] == "auth/token/root"


def test_child_token_defaults(clocked_client: hvac.Client) -> None:
    """Token auth docs: a child gets "default", the 768h system TTL; hvac names it token-token."""
    auth = clocked_client.auth.token.create(policies=["app"])["auth"]
    assert auth["policies"] == ["app", "default"]
    assert auth["lease_duration"] == 768 * 3600
    assert auth["renewable"] is True
    assert auth["orphan"] is False
    assert auth["token_type"] == "service"
    assert auth["client_token"].startswith("hvs.")
    data = clocked_client.auth.token.lookup(auth["client_token"])["data"]
    # hvac sends display_name="token" by default, which Vault prefixes with "token-".
    assert data["display_name"] == "token-token"
    assert data["path"] == "auth/token/create"
    assert data["expire_time"] == "2026-02-02T00:00:00Z"


def test_lookup_self_fields(clocked_vault: VaultEmulator, clocked_client: hvac.Client) -> None:
    """Token auth docs: lookup returns the documented fields (accessor ... type "service")."""
    token = clocked_client.auth.token.create(
        policies=["app"], ttl="1h", meta={"team": "a"}, display_name="my app"
    )["auth"]["client_token"]
    data = client_with(clocked_vault, token).auth.token.lookup_self()["data"]
    assert set(data) >= {
        "accessor",
        "creation_time",
        "creation_ttl",
        "display_name",
        "entity_id",
        "expire_time",
        "explicit_max_ttl",
        "id",
        "issue_time",
        "meta",
        "num_uses",
        "orphan",
        "path",
        "policies",
        "renewable",
        "ttl",
        "type",
    }
    assert data["display_name"] == "token-my-app"
    assert data["meta"] == {"team": "a"}
    assert data["creation_ttl"] == 3600
    assert data["ttl"] == 3600
    assert data["creation_time"] == 1767225600
    assert data["issue_time"] == "2026-01-01T00:00:00Z"
    assert data["type"] == "service"


def test_no_default_policy(hvac_client: hvac.Client) -> None:
    """Token auth docs: no_default_policy leaves "default" out."""
    auth = hvac_client.auth.token.create(policies=["app"], no_default_policy=True)["auth"]
    assert auth["policies"] == ["app"]


def test_create_without_policies_from_root_is_root(hvac_client: hvac.Client) -> None:
    """Token auth docs: without policies a child inherits its parent's; root ones never expire."""
    auth = hvac_client.auth.token.create()["auth"]
    assert auth["policies"] == ["root"]
    assert auth["lease_duration"] == 0
    assert auth["renewable"] is False


def test_lookup_unknown_token_is_bad_token(hvac_client: hvac.Client) -> None:
    """vault/token_store.go handleLookup: an unknown token is 403 'bad token'."""
    with pytest.raises(hvac.exceptions.Forbidden) as caught:
        hvac_client.auth.token.lookup("hvs.nope")
    assert caught.value.errors == ["bad token"]


def test_lookup_and_revoke_by_accessor(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Token auth docs: lookup-accessor hides the id; revoke-accessor kills the token (204)."""
    auth = hvac_client.auth.token.create(policies=["app"])["auth"]
    data = hvac_client.auth.token.lookup_accessor(auth["accessor"])["data"]
    assert data["id"] == ""
    assert data["accessor"] == auth["accessor"]
    response = hvac_client.auth.token.revoke_accessor(auth["accessor"])
    assert response.status_code == 204
    with pytest.raises(hvac.exceptions.Forbidden):
        client_with(vault, auth["client_token"]).auth.token.lookup_self()


def test_unknown_accessor_is_invalid_accessor(hvac_client: hvac.Client) -> None:
    """vault/token_store.go lookupByAccessor: an unknown accessor is 400 'invalid accessor'."""
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.auth.token.lookup_accessor("nope")
    assert caught.value.errors == ["1 error occurred:\n\t* invalid accessor\n\n"]


def test_revoking_an_unknown_accessor_is_a_warning(vault: VaultEmulator) -> None:
    """vault/token_store.go handleUpdateRevokeAccessor (OpenBao answers the same): an unknown
    accessor is no error, a 200 carrying a warning."""
    response = raw(vault, "POST", "/v1/auth/token/revoke-accessor", body={"accessor": "nope"})
    assert response.status_code == 200
    assert response.json()["warnings"] == ["No token found with this accessor"]
    assert response.json()["data"] is None


def test_children_die_with_parent_orphans_survive(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Token auth docs: revoking a token revokes its children, but not orphan tokens."""
    parent = token_with_policy(
        hvac_client, "creator", 'path "auth/token/create" { capabilities = ["update"] }'
    )
    parent_client = client_with(vault, parent)
    child = parent_client.auth.token.create(policies=["creator"])["auth"]
    orphan = hvac_client.auth.token.create_orphan(policies=["app"])["auth"]
    assert child["orphan"] is False
    assert orphan["orphan"] is True
    hvac_client.auth.token.revoke(parent)
    assert not client_with(vault, child["client_token"]).is_authenticated()
    assert client_with(vault, orphan["client_token"]).is_authenticated()


def test_create_orphan_needs_no_sudo(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Token auth docs: create-orphan needs no sudo, but no_parent on create does."""
    policy = 'path "auth/token/create*" { capabilities = ["update"] }'
    token = token_with_policy(hvac_client, "creator", policy)
    creator = client_with(vault, token)
    assert creator.auth.token.create_orphan(policies=["creator"])["auth"]["orphan"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        creator.auth.token.create(policies=["creator"], no_parent=True)
    assert caught.value.errors == ["root or sudo privileges required to create orphan token"]


def test_child_policies_must_be_subset(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """vault/token_store.go: without sudo a child's policies must be a subset of its parent's."""
    policy = 'path "auth/token/create" { capabilities = ["update"] }'
    token = token_with_policy(hvac_client, "creator", policy)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        client_with(vault, token).auth.token.create(policies=["admin"])
    assert caught.value.errors == ["child policies must be subset of parent"]


def test_renew_self_with_increment(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """Notes §1.4: renew-self {"increment"} sets the new TTL from now."""
    token = clocked_client.auth.token.create(policies=["app"], ttl="10m")["auth"]["client_token"]
    owner = client_with(clocked_vault, token)
    clock.advance(300)
    auth = owner.auth.token.renew_self(increment="1h")["auth"]
    assert auth["lease_duration"] == 3600
    data = owner.auth.token.lookup_self()["data"]
    assert data["ttl"] == 3600
    assert data["creation_ttl"] == 600
    assert data["last_renewal"] == "2026-01-01T00:05:00Z"


def test_renew_capped_by_explicit_max_ttl(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """Token auth docs: explicit_max_ttl caps every renewal, with a warning."""
    token = clocked_client.auth.token.create(policies=["app"], ttl="10m", explicit_max_ttl="30m")[
        "auth"
    ]["client_token"]
    clock.advance(300)
    renewed = client_with(clocked_vault, token).auth.token.renew_self(increment="1h")
    assert renewed["auth"]["lease_duration"] == 1500
    assert renewed["warnings"] and "capped" in renewed["warnings"][0]


def test_periodic_token_renews_to_its_period(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """Token auth docs: a periodic token's renewal resets the TTL to the period."""
    auth = clocked_client.auth.token.create(policies=["app"], period="15m")["auth"]
    assert auth["lease_duration"] == 900
    clock.advance(800)
    renewed = client_with(clocked_vault, auth["client_token"]).auth.token.renew_self(increment="2h")
    assert renewed["auth"]["lease_duration"] == 900


def test_non_renewable_token_cannot_renew(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault expiration manager: renewing a non-renewable lease is 400 'lease is not renewable'."""
    token = hvac_client.auth.token.create(policies=["app"], renewable=False)["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        client_with(vault, token).auth.token.renew_self()
    assert caught.value.errors == ["lease is not renewable"]


def test_token_expires_on_the_clock(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """Token auth docs: a token past its TTL is revoked; using it is 403 (hvac Forbidden)."""
    token = clocked_client.auth.token.create(policies=["app"], ttl="60s")["auth"]["client_token"]
    owner = client_with(clocked_vault, token)
    clock.advance(59)
    assert owner.auth.token.lookup_self()["data"]["ttl"] == 1
    clock.advance(1)
    with pytest.raises(hvac.exceptions.Forbidden):
        owner.auth.token.lookup_self()


def test_revoke_self(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Token auth docs: revoke-self revokes the calling token (204)."""
    token = hvac_client.auth.token.create(policies=["app"])["auth"]["client_token"]
    owner = client_with(vault, token)
    assert owner.auth.token.revoke_self().status_code == 204
    with pytest.raises(hvac.exceptions.Forbidden):
        owner.auth.token.lookup_self()


def test_num_uses_limits_a_token(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Token auth docs: num_uses limits how many requests a token can make."""
    token = hvac_client.auth.token.create(policies=["app"], num_uses=2)["auth"]["client_token"]
    owner = client_with(vault, token)
    assert owner.auth.token.lookup_self()["data"]["num_uses"] == 1
    owner.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.Forbidden):
        owner.auth.token.lookup_self()


def test_list_accessors_requires_sudo(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Token auth docs: LIST auth/token/accessors requires sudo (root qualifies)."""
    auth = hvac_client.auth.token.create(policies=["app"])["auth"]
    assert auth["accessor"] in hvac_client.auth.token.list_accessors()["data"]["keys"]
    without = token_with_policy(
        hvac_client, "lister", 'path "auth/token/accessors" { capabilities = ["list"] }'
    )
    with pytest.raises(hvac.exceptions.Forbidden):
        client_with(vault, without).auth.token.list_accessors()
    with_sudo = token_with_policy(
        hvac_client, "sudoer", 'path "auth/token/accessors" { capabilities = ["list", "sudo"] }'
    )
    assert client_with(vault, with_sudo).auth.token.list_accessors()["data"]["keys"]


def test_renew_another_token(clocked_client: hvac.Client, clock: ManualClock) -> None:
    """Token auth docs: POST auth/token/renew {token, increment} renews another token."""
    token = clocked_client.auth.token.create(policies=["app"], ttl="10m")["auth"]["client_token"]
    clock.advance(60)
    assert clocked_client.auth.token.renew(token, increment="20m")["auth"]["lease_duration"] == 1200
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        clocked_client.auth.token.renew("hvs.unknown")
    assert caught.value.errors == ["token not found"]


def test_revoke_orphan_keeps_children(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Token auth docs: revoke-orphan revokes a token and makes its children orphans."""
    parent = token_with_policy(
        hvac_client, "creator", 'path "auth/token/create" { capabilities = ["update"] }'
    )
    child = client_with(vault, parent).auth.token.create(policies=["creator"])["auth"]
    response = hvac_client.auth.token.revoke_and_orphan_children(parent)
    assert response.status_code == 204
    assert not client_with(vault, parent).is_authenticated()
    survivor = client_with(vault, child["client_token"]).auth.token.lookup_self()["data"]
    assert survivor["orphan"] is True


# --------------------------------------------------------------------------- AppRole


def make_role(client: hvac.Client, name: str = "app", **options: Any) -> tuple[str, str]:
    """Create an AppRole role and one secret id; return (role_id, secret_id)."""
    options.setdefault("token_policies", ["app"])
    mount = options.get("mount_point", "approle")
    client.auth.approle.create_or_update_approle(name, **options)
    role_id = client.auth.approle.read_role_id(name, mount_point=mount)["data"]["role_id"]
    generated = client.auth.approle.generate_secret_id(name, mount_point=mount)
    secret_id = generated["data"]["secret_id"]
    return role_id, secret_id


def test_approle_role_crud(hvac_client: hvac.Client) -> None:
    """AppRole API docs: create (204), read, list and delete a role."""
    response = hvac_client.auth.approle.create_or_update_approle(
        "app", token_policies=["app"], token_ttl="20m", token_max_ttl="30m", secret_id_ttl="10m"
    )
    assert response.status_code == 204
    data = hvac_client.auth.approle.read_role("app")["data"]
    assert data["token_ttl"] == 1200
    assert data["token_max_ttl"] == 1800
    assert data["secret_id_ttl"] == 600
    assert data["token_policies"] == ["app"]
    assert data["bind_secret_id"] is True
    assert hvac_client.auth.approle.list_roles()["data"]["keys"] == ["app"]
    hvac_client.auth.approle.delete_role("app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.auth.approle.read_role("app")


def test_approle_needs_a_constraint(hvac_client: hvac.Client) -> None:
    """AppRole API docs: a role needs at least one constraint (bind_secret_id or CIDRs)."""
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.auth.approle.create_or_update_approle("open", bind_secret_id=False)
    assert caught.value.errors == ["at least one constraint should be enabled on the role"]


def test_role_id_read_and_custom(hvac_client: hvac.Client) -> None:
    """AppRole API docs: role-id is readable and can be set to a custom value."""
    hvac_client.auth.approle.create_or_update_approle("app", token_policies=["app"])
    generated = hvac_client.auth.approle.read_role_id("app")["data"]["role_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", generated)
    hvac_client.auth.approle.update_role_id("app", "custom-role-id")
    assert hvac_client.auth.approle.read_role_id("app")["data"]["role_id"] == "custom-role-id"


def test_secret_id_generate_and_lookup(clocked_client: hvac.Client) -> None:
    """AppRole API docs: generate returns secret_id, accessor, ttl, num_uses; lookups agree."""
    clocked_client.auth.approle.create_or_update_approle(
        "app", token_policies=["app"], secret_id_ttl="10m", secret_id_num_uses=5
    )
    generated = clocked_client.auth.approle.generate_secret_id(
        "app", metadata={"tag": "prod"}, cidr_list=["127.0.0.0/8"]
    )["data"]
    assert set(generated) == {
        "secret_id",
        "secret_id_accessor",
        "secret_id_ttl",
        "secret_id_num_uses",
    }
    assert generated["secret_id_ttl"] == 600
    assert generated["secret_id_num_uses"] == 5
    looked_up = clocked_client.auth.approle.read_secret_id("app", generated["secret_id"])["data"]
    assert looked_up["metadata"] == {"tag": "prod"}
    assert looked_up["cidr_list"] == ["127.0.0.0/8"]
    assert looked_up["secret_id_accessor"] == generated["secret_id_accessor"]
    assert looked_up["expiration_time"] == "2026-01-01T00:10:00Z"
    by_accessor = clocked_client.auth.approle.read_secret_id_accessor(
        "app", generated["secret_id_accessor"]
    )["data"]
    assert by_accessor == looked_up


def test_approle_login(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Notes §1.4: login returns auth.client_token and hvac adopts it; metadata has role_name."""
    hvac_client.auth.approle.create_or_update_approle(
        "app", token_policies=["app"], token_ttl="20m"
    )
    role_id = hvac_client.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = hvac_client.auth.approle.generate_secret_id("app")["data"]["secret_id"]
    fresh = hvac.Client(url=vault.url)
    auth = fresh.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]
    assert fresh.token == auth["client_token"]
    assert auth["policies"] == ["app", "default"]
    assert auth["lease_duration"] == 1200
    assert auth["metadata"] == {"role_name": "app"}
    assert auth["renewable"] is True
    assert auth["orphan"] is True
    assert auth["entity_id"]
    data = fresh.auth.token.lookup_self()["data"]
    assert data["display_name"] == "approle"
    assert data["path"] == "auth/approle/login"


def test_custom_secret_id(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """AppRole API docs: custom-secret-id registers a caller-chosen secret id; a duplicate fails."""
    hvac_client.auth.approle.create_or_update_approle("app", token_policies=["app"])
    role_id = hvac_client.auth.approle.read_role_id("app")["data"]["role_id"]
    hvac_client.auth.approle.create_custom_secret_id("app", "my-secret-id")
    hvac.Client(url=vault.url).auth.approle.login(role_id=role_id, secret_id="my-secret-id")
    with pytest.raises(hvac.exceptions.InternalServerError):
        hvac_client.auth.approle.create_custom_secret_id("app", "my-secret-id")


def test_wrong_role_id_is_invalid(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """vault approle path_login.go: an unknown role_id is 400 'invalid role or secret ID'."""
    _, secret_id = make_role(hvac_client)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac.Client(url=vault.url).auth.approle.login(role_id="nope", secret_id=secret_id)
    assert caught.value.errors == ["invalid role or secret ID"]


def test_destroyed_secret_id_cannot_log_in(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Notes §1.4: after destroy_secret_id_accessor the secret id no longer logs in."""
    role_id, secret_id = make_role(hvac_client)
    accessor = hvac_client.auth.approle.read_secret_id("app", secret_id)["data"][
        "secret_id_accessor"
    ]
    response = hvac_client.auth.approle.destroy_secret_id_accessor("app", accessor)
    assert response.status_code == 204
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac.Client(url=vault.url).auth.approle.login(role_id=role_id, secret_id=secret_id)
    assert caught.value.errors == ["invalid role or secret ID"]


def test_destroy_by_secret_id(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """AppRole API docs: secret-id/destroy removes it; a lookup of a missing one is a 204."""
    role_id, secret_id = make_role(hvac_client)
    hvac_client.auth.approle.destroy_secret_id("app", secret_id)
    response = hvac_client.auth.approle.read_secret_id("app", secret_id)
    assert isinstance(response, requests.Response)
    assert response.status_code == 204
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=vault.url).auth.approle.login(role_id=role_id, secret_id=secret_id)


def test_secret_id_num_uses_enforced(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """AppRole API docs: secret_id_num_uses limits how many logins one secret id allows."""
    role_id, secret_id = make_role(hvac_client, secret_id_num_uses=1)
    login = hvac.Client(url=vault.url).auth.approle.login
    login(role_id=role_id, secret_id=secret_id)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        login(role_id=role_id, secret_id=secret_id)


def test_secret_id_expires(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """AppRole API docs: a secret id older than secret_id_ttl no longer logs in."""
    role_id, secret_id = make_role(clocked_client, secret_id_ttl="10m")
    clock.advance(600)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=clocked_vault.url).auth.approle.login(role_id=role_id, secret_id=secret_id)


def test_expired_secret_ids_stay_listed_until_the_tidy(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """AppRole backend.go: expired secret ids are removed by the periodic function (once a
    minute); until then they are listed, and (as OpenBao answers) their lookups are 204."""
    approle = clocked_client.auth.approle
    _, expiring = make_role(clocked_client, secret_id_ttl="10m")
    accessor = approle.read_secret_id("app", expiring)["data"]["secret_id_accessor"]
    other = approle.generate_secret_id("app")["data"]
    clock.advance(600)
    assert set(approle.list_secret_id_accessors("app")["data"]["keys"]) == {
        accessor,
        other["secret_id_accessor"],
    }
    assert approle.read_secret_id("app", expiring).status_code == 204
    assert approle.read_secret_id_accessor("app", accessor).status_code == 204
    assert approle.destroy_secret_id_accessor("app", other["secret_id_accessor"]).status_code == 204
    clock.advance(59)
    assert approle.list_secret_id_accessors("app")["data"]["keys"] == [accessor]
    clock.advance(1)
    with pytest.raises(hvac.exceptions.InvalidPath):
        approle.list_secret_id_accessors("app")


def test_destroying_an_expired_secret_id_is_204(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """An expired secret id not yet tidied is still stored: destroying it is a plain 204."""
    _, expiring = make_role(clocked_client, secret_id_ttl="10m")
    approle = clocked_client.auth.approle
    accessor = approle.read_secret_id("app", expiring)["data"]["secret_id_accessor"]
    clock.advance(600)
    assert approle.destroy_secret_id_accessor("app", accessor).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        approle.list_secret_id_accessors("app")


@pytest.mark.parametrize("body", [{}, {"role_id": ""}, {"role_id": "  ", "secret_id": "x"}])
def test_login_without_role_id_is_500(vault: VaultEmulator, body: dict[str, str]) -> None:
    """AppRole path_login.go: the alias lookahead Vault runs before the login fails with a Go
    error on a missing role_id, so the answer is a 500 (OpenBao answers the same)."""
    response = raw(vault, "POST", "/v1/auth/approle/login", token="", body=body)
    assert response.status_code == 500
    assert response.json() == {"errors": ["missing role_id"]}
    with pytest.raises(hvac.exceptions.InternalServerError):
        hvac.Client(url=vault.url).auth.approle.login(role_id="", secret_id="x")


def test_list_secret_id_accessors(hvac_client: hvac.Client) -> None:
    """AppRole API docs: LIST role/:name/secret-id returns the accessors."""
    hvac_client.auth.approle.create_or_update_approle("app", token_policies=["app"])
    accessors = {
        hvac_client.auth.approle.generate_secret_id("app")["data"]["secret_id_accessor"]
        for _ in range(3)
    }
    listed = hvac_client.auth.approle.list_secret_id_accessors("app")["data"]["keys"]
    assert set(listed) == accessors


def test_unknown_accessor_lookup_is_404_envelope(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """vault approle (PR #12788): an unknown secret_id_accessor lookup is 404, error in data."""
    make_role(hvac_client)
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.auth.approle.read_secret_id_accessor("app", "nope")
    response = raw(
        vault,
        "POST",
        "/v1/auth/approle/role/app/secret-id-accessor/lookup",
        body={"secret_id_accessor": "nope"},
    )
    assert response.status_code == 404
    assert response.json()["data"] == {
        "error": 'failed to find accessor entry for secret_id_accessor: "nope"'
    }


def test_cidr_list_restricts_login(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """AppRole API docs: cidr_list limits the addresses a secret id can log in from."""
    hvac_client.auth.approle.create_or_update_approle("app", token_policies=["app"])
    role_id = hvac_client.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = hvac_client.auth.approle.generate_secret_id("app", cidr_list=["10.0.0.0/8"])[
        "data"
    ]["secret_id"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac.Client(url=vault.url).auth.approle.login(role_id=role_id, secret_id=secret_id)
    assert "unauthorized through CIDR restrictions on the secret ID" in caught.value.errors[0]


def test_approle_token_renewal_follows_role_max_ttl(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client, clock: ManualClock
) -> None:
    """AppRole API docs: token_max_ttl caps renewals of login tokens."""
    role_id, secret_id = make_role(clocked_client, token_ttl="10m", token_max_ttl="15m")
    fresh = hvac.Client(url=clocked_vault.url)
    fresh.auth.approle.login(role_id=role_id, secret_id=secret_id)
    clock.advance(300)
    assert fresh.auth.token.renew_self()["auth"]["lease_duration"] == 600
    clock.advance(300)
    assert fresh.auth.token.renew_self()["auth"]["lease_duration"] == 300


# --------------------------------------------------------------------------- Kubernetes


def legacy_claims(namespace: str = "apps", name: str = "rotator") -> dict[str, Any]:
    """Claims of a pre-1.21 service-account token secret."""
    return {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token-abcde",
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": "1b1c5c4e-0000-4000-8000-000000000001",
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }


def setup_kubernetes(client: hvac.Client) -> None:
    """Configure the Kubernetes method and a role bound to apps/rotator."""
    client.auth.kubernetes.configure(kubernetes_host="https://kubernetes.default.svc")
    client.auth.kubernetes.create_role(
        "rotator",
        bound_service_account_names=["rotator"],
        bound_service_account_namespaces=["apps"],
        policies=["app"],
        ttl="1h",
    )


def test_kubernetes_login_with_legacy_claims(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Kubernetes auth docs: login {role, jwt} returns a token for a bound service account."""
    setup_kubernetes(hvac_client)
    fresh = hvac.Client(url=vault.url)
    auth = fresh.auth.kubernetes.login("rotator", make_jwt(legacy_claims()))["auth"]
    assert auth["policies"] == ["app", "default"]
    assert auth["lease_duration"] == 3600
    assert auth["metadata"]["service_account_name"] == "rotator"
    assert auth["metadata"]["service_account_namespace"] == "apps"
    assert auth["metadata"]["role"] == "rotator"
    assert fresh.auth.token.lookup_self()["data"]["display_name"] == "kubernetes-apps-rotator"


def test_kubernetes_login_with_projected_claims(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """vault-plugin-auth-kubernetes: projected tokens carry the nested "kubernetes.io" claim."""
    setup_kubernetes(hvac_client)
    claims = {
        "aud": ["https://kubernetes.default.svc"],
        "iss": "https://kubernetes.default.svc",
        "kubernetes.io": {
            "namespace": "apps",
            "pod": {"name": "rotator-0", "uid": "p-1"},
            "serviceaccount": {"name": "rotator", "uid": "sa-uid-1"},
        },
        "sub": "system:serviceaccount:apps:rotator",
    }
    auth = hvac.Client(url=vault.url).auth.kubernetes.login("rotator", make_jwt(claims))["auth"]
    assert auth["metadata"]["service_account_uid"] == "sa-uid-1"


def test_kubernetes_wrong_namespace_is_forbidden(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """vault-plugin-auth-kubernetes: a namespace outside the role's bindings is 403."""
    setup_kubernetes(hvac_client)
    with pytest.raises(hvac.exceptions.Forbidden) as caught:
        hvac.Client(url=vault.url).auth.kubernetes.login(
            "rotator", make_jwt(legacy_claims(namespace="other"))
        )
    assert caught.value.errors == ["1 error occurred:\n\t* namespace not authorized\n\n"]


def test_kubernetes_wrong_service_account_is_forbidden(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """vault-plugin-auth-kubernetes: a service account name outside the bindings is 403."""
    setup_kubernetes(hvac_client)
    with pytest.raises(hvac.exceptions.Forbidden) as caught:
        hvac.Client(url=vault.url).auth.kubernetes.login(
            "rotator", make_jwt(legacy_claims(name="intruder"))
        )
    assert caught.value.errors == ["1 error occurred:\n\t* service account name not authorized\n\n"]


def test_kubernetes_expired_jwt_is_forbidden(
    clocked_vault: VaultEmulator, clocked_client: hvac.Client
) -> None:
    """vault-plugin-auth-kubernetes validates exp: an expired JWT cannot log in."""
    setup_kubernetes(clocked_client)
    claims = legacy_claims() | {"exp": 1767225600 - 1}
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=clocked_vault.url).auth.kubernetes.login("rotator", make_jwt(claims))


def test_kubernetes_unknown_role_and_missing_config(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """vault-plugin-auth-kubernetes path_login.go: unknown role is 400; no config is a 500."""
    fresh = hvac.Client(url=vault.url)
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        fresh.auth.kubernetes.login("ghost", make_jwt(legacy_claims()))
    assert caught.value.errors == ['invalid role name "ghost"']
    hvac_client.auth.kubernetes.create_role(
        "rotator", bound_service_account_names=["rotator"], bound_service_account_namespaces=["*"]
    )
    with pytest.raises(hvac.exceptions.InternalServerError):
        fresh.auth.kubernetes.login("rotator", make_jwt(legacy_claims()))


def test_kubernetes_role_read_and_list(hvac_client: hvac.Client) -> None:
    """Kubernetes auth API docs: roles can be read and listed."""
    setup_kubernetes(hvac_client)
    # hvac's Kubernetes helpers return the response's "data" already.
    role = hvac_client.auth.kubernetes.read_role("rotator")
    assert role["bound_service_account_names"] == ["rotator"]
    assert role["bound_service_account_namespaces"] == ["apps"]
    assert role["token_ttl"] == 3600
    assert hvac_client.auth.kubernetes.list_roles()["keys"] == ["rotator"]
    config = hvac_client.auth.kubernetes.read_config()
    assert config["kubernetes_host"] == "https://kubernetes.default.svc"


# --------------------------------------------------------------------------- sys


def test_random_bytes_defaults_to_32_base64(hvac_client: hvac.Client) -> None:
    """Notes §1.4 (api-docs/system/tools): sys/tools/random returns 32 base64 bytes by default."""
    data = hvac_client.write("sys/tools/random", format="base64")["data"]
    assert len(base64.b64decode(data["random_bytes"])) == 32


def test_random_bytes_count_in_url_and_hex(hvac_client: hvac.Client) -> None:
    """api-docs/system/tools: the byte count may be in the URL, after an optional source."""
    assert len(hvac_client.write("sys/tools/random/16", format="hex")["data"]["random_bytes"]) == 32
    platform = hvac_client.write("sys/tools/random/platform/8", format="hex")["data"]
    assert len(platform["random_bytes"]) == 16
    assert (
        len(
            base64.b64decode(hvac_client.write("sys/tools/random", bytes=5)["data"]["random_bytes"])
        )
        == 5
    )


def test_random_bytes_rejects_unknown_format(hvac_client: hvac.Client) -> None:
    """Vault random API: a format other than hex or base64 is 400."""
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.write("sys/tools/random", format="base32")
    assert caught.value.errors == [
        'unsupported encoding format "base32"; must be "hex" or "base64"'
    ]


def test_mounts_list_and_enable_kv_v2(hvac_client: hvac.Client) -> None:
    """api-docs/system/mounts: secret/ is KV v2; a new kv v2 mount works; a used path is 400."""
    mounts = hvac_client.sys.list_mounted_secrets_engines()["data"]
    assert mounts["secret/"]["type"] == "kv"
    assert mounts["secret/"]["options"] == {"version": "2"}
    response = hvac_client.sys.enable_secrets_engine("kv", path="team", options={"version": "2"})
    assert response.status_code == 204
    kv_write(hvac_client, "db", {"a": 1}, mount_point="team")
    assert kv_read(hvac_client, "db", mount_point="team")["data"]["data"] == {"a": 1}
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.sys.enable_secrets_engine("kv", path="team", options={"version": "2"})
    assert caught.value.errors == ["path is already in use at team/"]


def test_sys_responses_repeat_data_at_top_level(vault: VaultEmulator) -> None:
    """api-docs/system/mounts sample: sys/ responses also carry their data at the top level."""
    mount = raw(vault, "GET", "/v1/sys/mounts/secret").json()
    assert mount["type"] == "kv"
    assert mount["data"]["type"] == "kv"


@pytest.mark.parametrize(
    ("method", "path", "body", "injected"),
    [
        ("GET", "/v1/sys/mounts", None, True),
        ("GET", "/v1/sys/auth/approle", None, True),
        ("GET", "/v1/sys/mounts/secret/tune", None, True),
        ("GET", "/v1/sys/policy/default", None, True),
        ("POST", "/v1/sys/capabilities-self", {"paths": ["secret/data/x"]}, True),
        ("GET", "/v1/sys/policies/acl/default", None, False),
        ("POST", "/v1/sys/tools/random", {"bytes": 8}, False),
        ("POST", "/v1/sys/namespaces/team-a", {}, False),
        ("GET", "/v1/team-a/sys/mounts", None, False),
    ],
)
def test_only_vaults_listed_sys_routes_repeat_their_data(
    vault: VaultEmulator, method: str, path: str, body: Any, injected: bool
) -> None:
    """Vault http/handler.go injectDataIntoTopRoutes: a fixed list of sys/ routes (matched on the
    URL path, so not under a namespace prefix) repeat their data at the top level; no others."""
    raw(vault, "POST", "/v1/sys/namespaces/team-a", body={})
    answer = raw(vault, method, path, body=body).json()
    first_key = next(iter(answer["data"]))
    assert (first_key in answer) is injected


def test_mount_tune_reports_system_ttls(hvac_client: hvac.Client) -> None:
    """api-docs/system/mounts: GET sys/mounts/:path/tune gives the effective lease TTLs."""
    tune = hvac_client.sys.read_mount_configuration("secret")["data"]
    assert tune["default_lease_ttl"] == 768 * 3600
    assert tune["max_lease_ttl"] == 768 * 3600
    assert tune["options"] == {"version": "2"}
    auth_tune = hvac_client.sys.read_auth_method_tuning("approle")["data"]
    assert auth_tune["token_type"] == "default-service"
    assert "options" not in auth_tune


def test_mount_entries_as_vaults_mount_info_writes_them(hvac_client: hvac.Client) -> None:
    """vault/logical_system.go mountInfo: builtin plugins have a deprecation status, auth methods
    a token type, and sys/ passes the Accept header through."""
    mounts = hvac_client.sys.list_mounted_secrets_engines()["data"]
    assert mounts["secret/"]["deprecation_status"] == "supported"
    assert "deprecation_status" not in mounts["sys/"]
    assert mounts["sys/"]["config"]["passthrough_request_headers"] == ["Accept"]
    methods = hvac_client.sys.list_auth_methods()["data"]
    assert methods["approle/"]["deprecation_status"] == "supported"
    assert methods["token/"]["config"]["token_type"] == "default-service"
    assert "token_type" not in mounts["secret/"]["config"]


def test_auth_methods_list_and_enable(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """api-docs/system/auth: token/, approle/ and kubernetes/ are enabled; more can be added."""
    methods = hvac_client.sys.list_auth_methods()["data"]
    assert {"token/", "approle/", "kubernetes/"} <= set(methods)
    hvac_client.sys.enable_auth_method("approle", path="ci")
    role_id, secret_id = make_role(hvac_client, mount_point="ci")
    fresh = hvac.Client(url=vault.url)
    fresh.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point="ci")
    assert fresh.auth.token.lookup_self()["data"]["path"] == "auth/ci/login"
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.sys.enable_auth_method("approle", path="ci")
    assert caught.value.errors == ["path is already in use at ci/"]


def test_disabling_mounts(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """api-docs/system/mounts and auth: DELETE disables; tokens an auth method issued die."""
    hvac_client.sys.enable_secrets_engine("kv", path="team", options={"version": "2"})
    assert hvac_client.sys.disable_secrets_engine("team").status_code == 204
    assert "team/" not in hvac_client.sys.list_mounted_secrets_engines()["data"]
    role_id, secret_id = make_role(hvac_client)
    fresh = hvac.Client(url=vault.url)
    fresh.auth.approle.login(role_id=role_id, secret_id=secret_id)
    hvac_client.sys.disable_auth_method("approle")
    assert not fresh.is_authenticated()


def test_enabling_auth_needs_sudo(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault's system backend marks auth/* as a root path: enabling auth needs sudo."""
    plain = token_with_policy(hvac_client, "ops", 'path "sys/auth/*" { capabilities = ["update"] }')
    with pytest.raises(hvac.exceptions.Forbidden):
        client_with(vault, plain).sys.enable_auth_method("approle", path="ops")
    sudo = token_with_policy(
        hvac_client, "ops-sudo", 'path "sys/auth/*" { capabilities = ["update", "sudo"] }'
    )
    assert client_with(vault, sudo).sys.enable_auth_method("approle", path="ops").status_code == 204


def test_acl_policy_crud(hvac_client: hvac.Client) -> None:
    """api-docs/system/policies: ACL policies are written (204), read, listed and deleted."""
    response = hvac_client.sys.create_or_update_acl_policy(name="app", policy=READ_APP_ONLY)
    assert response.status_code == 204
    assert hvac_client.sys.read_acl_policy("app")["data"] == {
        "name": "app",
        "policy": READ_APP_ONLY,
    }
    assert hvac_client.sys.list_acl_policies()["data"]["keys"] == ["app", "default", "root"]
    hvac_client.sys.delete_acl_policy("app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.sys.read_acl_policy("app")


def test_builtin_policies_are_protected(hvac_client: hvac.Client) -> None:
    """vault/policy_store.go: root cannot be updated or deleted; default cannot be deleted."""
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.sys.delete_acl_policy("default")
    assert caught.value.errors == ["cannot delete default policy"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.sys.create_or_update_acl_policy(name="root", policy=READ_APP_ONLY)
    assert caught.value.errors == ['cannot update "root" policy']


def test_invalid_policy_is_rejected(hvac_client: hvac.Client) -> None:
    """api-docs/system/policies: a policy that does not parse is refused with 400."""
    with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        hvac_client.sys.create_or_update_acl_policy(
            name="bad", policy='path "x" { capabilities = ["fly"] }'
        )
    assert caught.value.errors[0].startswith("failed to parse policy")


def test_legacy_policy_endpoint_returns_rules(hvac_client: hvac.Client) -> None:
    """api-docs/system/policy: sys/policy/:name reads back as {name, rules}."""
    hvac_client.sys.create_or_update_policy(name="legacy", policy=READ_APP_ONLY)
    assert hvac_client.sys.read_policy("legacy")["data"]["rules"] == READ_APP_ONLY
    assert "legacy" in hvac_client.sys.list_policies()["data"]["policies"]


def test_health_is_unauthenticated(vault: VaultEmulator) -> None:
    """api-docs/system/health: GET sys/health needs no token and reports the node's state."""
    response = requests.get(f"{vault.url}/v1/sys/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["initialized"] is True
    assert body["sealed"] is False
    assert body["standby"] is False
    assert "version" in body
    assert hvac.Client(url=vault.url).sys.read_health_status(method="HEAD").status_code == 200


def test_capabilities_self(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """api-docs/system/capabilities-self: lists the caller's capabilities on each path."""
    token = token_with_policy(hvac_client, "app", READ_APP_ONLY)
    data = client_with(vault, token).sys.get_capabilities(["secret/data/app/db", "secret/data/x"])
    assert data["data"]["secret/data/app/db"] == ["list", "read"]
    assert data["data"]["secret/data/x"] == ["deny"]


# --------------------------------------------------------------------------- ACL


def test_read_only_policy_is_enforced(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault policies docs: a token that may read secret/data/app/* reads only there; no writes."""
    kv_write(hvac_client, "app/db", {"a": 1})
    kv_write(hvac_client, "other/db", {"a": 1})
    reader = client_with(vault, token_with_policy(hvac_client, "app", READ_APP_ONLY))
    assert kv_read(reader, "app/db")["data"]["data"] == {"a": 1}
    with pytest.raises(hvac.exceptions.Forbidden):
        kv_read(reader, "other/db")
    with pytest.raises(hvac.exceptions.Forbidden):
        kv_write(reader, "app/db", {"a": 2})


def test_acl_denial_message(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """vault/request_handling.go: an ACL denial is 403 with the go-multierror permission denied."""
    token = token_with_policy(hvac_client, "app", READ_APP_ONLY)
    response = raw(vault, "GET", "/v1/secret/data/other/db", token=token)
    assert response.status_code == 403
    assert response.json() == {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}


def test_most_specific_rule_wins(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault policies docs (priority matching): exact beats glob; + segments match one segment."""
    policy = """
path "secret/data/app/*" { capabilities = ["read"] }
path "secret/data/app/locked" { capabilities = ["deny"] }
path "secret/data/+/shared" { capabilities = ["read"] }
"""
    for path in ("app/db", "app/locked", "team/shared", "team/private"):
        kv_write(hvac_client, path, {"a": 1})
    reader = client_with(vault, token_with_policy(hvac_client, "mixed", policy))
    assert kv_read(reader, "app/db")
    assert kv_read(reader, "team/shared")
    for path in ("app/locked", "team/private"):
        with pytest.raises(hvac.exceptions.Forbidden):
            kv_read(reader, path)


def test_create_and_update_are_distinct(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault policies docs: KV v2 writes need create for a new key, update for an existing one."""
    kv_write(hvac_client, "app/existing", {"a": 1})
    writer = client_with(
        vault,
        token_with_policy(
            hvac_client, "creator", 'path "secret/data/app/*" { capabilities = ["create"] }'
        ),
    )
    kv_write(writer, "app/new", {"a": 1})
    with pytest.raises(hvac.exceptions.Forbidden):
        kv_write(writer, "app/existing", {"a": 2})


def test_deny_overrides_other_policies(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault policies docs: deny on a path wins over capabilities another policy grants there."""
    hvac_client.sys.create_or_update_acl_policy(name="grant", policy=READ_APP_ONLY)
    hvac_client.sys.create_or_update_acl_policy(
        name="block", policy='path "secret/data/app/*" { capabilities = ["deny"] }'
    )
    token = hvac_client.auth.token.create(policies=["grant", "block"])["auth"]["client_token"]
    kv_write(hvac_client, "app/db", {"a": 1})
    with pytest.raises(hvac.exceptions.Forbidden):
        kv_read(client_with(vault, token), "app/db")


def test_default_policy_paths(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault's default policy: lookup-self, renew-self and capabilities-self; not sys/mounts."""
    token = hvac_client.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    holder = client_with(vault, token)
    assert holder.auth.token.lookup_self()["data"]["policies"] == ["default"]
    assert holder.auth.token.renew_self()["auth"]["lease_duration"] == 3600
    assert holder.sys.get_capabilities(["sys/mounts"])["data"]["capabilities"] == ["deny"]
    with pytest.raises(hvac.exceptions.Forbidden):
        holder.sys.list_mounted_secrets_engines()


def test_json_policy_form(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault policies docs: policies may be written in JSON as well as HCL."""
    policy = {"path": {"secret/data/app/*": {"capabilities": ["read"]}}}
    hvac_client.sys.create_or_update_acl_policy(name="json", policy=policy)
    token = hvac_client.auth.token.create(policies=["json"])["auth"]["client_token"]
    kv_write(hvac_client, "app/db", {"a": 1})
    assert kv_read(client_with(vault, token), "app/db")["data"]["data"] == {"a": 1}


def test_list_needs_list_capability_on_metadata(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """KV v2 docs: listing checks list on secret/metadata/<prefix>/, not the data path."""
    kv_write(hvac_client, "app/db", {"a": 1})
    reader = client_with(vault, token_with_policy(hvac_client, "app", READ_APP_ONLY))
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.secrets.kv.v2.list_secrets("app")
    lister = client_with(
        vault,
        token_with_policy(
            hvac_client, "lister", 'path "secret/metadata/app/*" { capabilities = ["list"] }'
        ),
    )
    assert lister.secrets.kv.v2.list_secrets("app")["data"]["keys"] == ["db"]


# --------------------------------------------------------------------------- namespaces


def test_namespaces_are_isolated(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault namespaces docs: each namespace has its own mounts, policies and tokens."""
    created = hvac_client.sys.create_namespace("team-a")["data"]
    assert created["path"] == "team-a/"
    kv_write(hvac_client, "app/db", {"root": True})
    team = client_with(vault, vault.root_token, namespace="team-a")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv_read(team, "app/db")
    team.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    kv_write(team, "app/db", {"team": True})
    assert kv_read(team, "app/db")["data"]["data"] == {"team": True}
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"root": True}
    team_token = team.auth.token.create(policies=["default"])["auth"]["client_token"]
    data = client_with(vault, team_token, namespace="team-a").auth.token.lookup_self()["data"]
    assert data["namespace_path"] == "team-a/"
    response = raw(vault, "GET", "/v1/sys/mounts", token=team_token)
    assert response.status_code == 403
    assert response.json() == {"errors": ["permission denied"]}


def test_token_self_paths_go_to_the_tokens_namespace(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Vault http/logical.go: lookup-self, renew-self and revoke-self are served in the token's
    namespace, whatever namespace the request names (OpenBao answers the same)."""
    hvac_client.sys.create_namespace("team-a")
    team = client_with(vault, vault.root_token, namespace="team-a")
    team_token = team.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    outside = client_with(vault, team_token)
    assert outside.auth.token.lookup_self()["data"]["namespace_path"] == "team-a/"
    assert outside.auth.token.renew_self(increment="2h")["auth"]["lease_duration"] == 7200
    assert outside.auth.token.revoke_self().status_code == 204
    assert not client_with(vault, team_token, namespace="team-a").is_authenticated()


def test_namespace_in_the_path(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Vault namespaces docs: the namespace may be a path prefix instead of the header."""
    hvac_client.sys.create_namespace("team-a")
    team = client_with(vault, vault.root_token, namespace="team-a")
    team.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    kv_write(team, "db", {"a": 1})
    response = raw(vault, "GET", "/v1/team-a/secret/data/db")
    assert response.status_code == 200
    assert response.json()["data"]["data"] == {"a": 1}


def test_namespaces_list_and_delete(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """api-docs/system/namespaces: LIST shows children with key_info; DELETE removes one (204)."""
    hvac_client.sys.create_namespace("team-a")
    client_with(vault, vault.root_token, namespace="team-a").sys.create_namespace("child")
    listed = hvac_client.sys.list_namespaces()["data"]
    assert listed["keys"] == ["team-a/"]
    assert listed["key_info"]["team-a/"]["path"] == "team-a/"
    nested = client_with(vault, vault.root_token, namespace="team-a/child")
    assert nested.auth.token.lookup_self()["data"]["id"] == vault.root_token
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac_client.sys.delete_namespace("team-a")
    client_with(vault, vault.root_token, namespace="team-a").sys.delete_namespace("child")
    assert hvac_client.sys.delete_namespace("team-a").status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        hvac_client.sys.list_namespaces()


@pytest.mark.parametrize(
    ("namespace", "path", "token"),
    [
        ("ghost", "/v1/secret/data/db", None),
        ("team-a/ghost", "/v1/secret/metadata/db", None),
        ("ghost", "/v1/auth/token/lookup-self", "hvs.not-a-token"),
        ("ghost", "/v1/auth/approle/login", ""),
    ],
)
def test_unknown_namespace_is_404_namespace_not_found(
    vault: VaultEmulator, namespace: str, path: str, token: str | None
) -> None:
    """OpenBao (and Vault Enterprise): a namespace header naming no namespace is 404
    "namespace not found", before any token check or routing."""
    raw(vault, "POST", "/v1/sys/namespaces/team-a", body={})
    method = "POST" if path.endswith("login") else "GET"
    response = raw(vault, method, path, token=token, headers={"X-Vault-Namespace": namespace})
    assert response.status_code == 404
    assert response.json() == {"errors": ["namespace not found"]}


def test_unknown_namespace_in_the_path_is_no_handler(vault: VaultEmulator) -> None:
    """A path prefix that names no namespace stays part of the path: no handler for it (404)."""
    response = raw(vault, "GET", "/v1/ghost/secret/data/db")
    assert response.status_code == 404
    assert response.json() == {
        "errors": ['no handler for route "ghost/secret/data/db". route entry not found.']
    }


# --------------------------------------------------------------------------- faults


def test_injected_status_applies_count_times(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Emulator API: inject_fault fails the next `count` matching requests with Vault's envelope."""
    kv_write(hvac_client, "app/db", {"a": 1})
    vault.inject_fault(path_prefix="/v1/secret/data/app", status=503, count=2)
    for _ in range(2):
        with pytest.raises(hvac.exceptions.VaultDown) as caught:
            kv_read(hvac_client, "app/db")
        assert caught.value.errors == ["Vault is sealed"]
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"a": 1}


def test_injected_fault_respects_method_and_prefix(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Emulator API: a fault limited to a method and prefix leaves other requests alone."""
    kv_write(hvac_client, "app/db", {"a": 1})
    vault.inject_fault(path_prefix="/v1/secret/data/app", status=500, method="POST")
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"a": 1}
    kv_read(hvac_client, "app/db")
    with pytest.raises(hvac.exceptions.InternalServerError):
        kv_write(hvac_client, "app/db", {"a": 2})
    kv_write(hvac_client, "app/db", {"a": 3})


def test_delay_only_fault_is_served(vault: VaultEmulator, hvac_client: hvac.Client) -> None:
    """Emulator API: with status None the request is only delayed, then served normally."""
    kv_write(hvac_client, "app/db", {"a": 1})
    vault.inject_fault(path_prefix="/v1/secret/data/app/db", status=None, delay=0.05)
    started = time.monotonic()
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"a": 1}
    assert time.monotonic() - started >= 0.05


def test_injected_429_is_a_rate_limit_quota_answer(vault: VaultEmulator) -> None:
    """Emulator API: a 429 fault names the request path like Vault's quota, with its Retry-After."""
    vault.inject_fault(path_prefix="/v1/secret/data/app", status=429, retry_after=3)
    answer = requests.get(
        f"{vault.url}/v1/secret/data/app/db",
        headers={"X-Vault-Token": vault.root_token},
        timeout=10,
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.json() == {
        "errors": ['request path "secret/data/app/db": rate limit quota exceeded']
    }
    again = requests.get(
        f"{vault.url}/v1/secret/data/app/db",
        headers={"X-Vault-Token": vault.root_token},
        timeout=10,
    )
    assert again.status_code == 404 and "Retry-After" not in again.headers


def test_clear_faults_drops_the_faults_still_waiting(
    vault: VaultEmulator, hvac_client: hvac.Client
) -> None:
    """Emulator API: after clear_faults, requests a fault still counted are served normally."""
    kv_write(hvac_client, "app/db", {"a": 1})
    vault.inject_fault(path_prefix="/v1/", status=503, count=1000)
    vault.inject_fault(path_prefix="/v1/secret/", status=500, count=1000)
    with pytest.raises(hvac.exceptions.VaultDown):
        kv_read(hvac_client, "app/db")
    vault.clear_faults()
    assert kv_read(hvac_client, "app/db")["data"]["data"] == {"a": 1}
    kv_write(hvac_client, "app/db", {"a": 2})


def test_inject_fault_validates_arguments(vault: VaultEmulator) -> None:
    """Emulator API: nonsensical faults are refused up front."""
    with pytest.raises(ValueError):
        vault.inject_fault(count=0)
    with pytest.raises(ValueError):
        vault.inject_fault(status=200)
    with pytest.raises(ValueError):
        vault.inject_fault(delay=-1)


# --------------------------------------------------------------------------- CLI


def test_command_line_serves_and_prints_exports() -> None:
    """Emulator CLI: `python -m rotator.sandbox.vault` prints VAULT_ADDR/VAULT_TOKEN, serves."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rotator.sandbox.vault",
            "--port",
            "0",
            "--root-token",
            "hvs.cli",
        ],
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

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        first = lines.get(timeout=20)
        second = lines.get(timeout=20)
        assert first.startswith("export VAULT_ADDR=http://127.0.0.1:")
        assert second == "export VAULT_TOKEN=hvs.cli"
        address = first.split("=", 1)[1]
        assert hvac.Client(url=address, token="hvs.cli").is_authenticated()
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
