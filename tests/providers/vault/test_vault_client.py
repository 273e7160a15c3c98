"""The Vault session: connection and auth from the environment, renewal, re-login."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.vault.client import (
    AppRoleAuth,
    Connection,
    KubernetesAuth,
    TokenAuth,
    VaultSession,
    auth_from_env,
    session,
)
from rotator.adapters.values import Runtime
from rotator.errors import PermanentError, PermissionDeniedError
from tests.providers.vault.backends import (
    Backend,
    clean_vault_env,
    point_at,
    runtime_for,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

READER = 'path "secret/data/app/*" { capabilities = ["read"] }\n'


def read_app(vault: VaultSession) -> str:
    """Read secret/app/config through the session; return its value."""
    answer = vault.call(
        "read secret/data/app/config",
        lambda c: c.secrets.kv.v2.read_secret_version(
            path="app/config", raise_on_deleted_version=True
        ),
    )
    return str(answer["data"]["data"]["value"])


@pytest.fixture
def env(emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Backend:
    """A clean VAULT_* environment; the emulator seeded with secret/app/config and a policy."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    (tmp_path / "home").mkdir()
    admin = emulator_backend.admin()
    admin.secrets.kv.v2.create_or_update_secret(path="app/config", secret={"value": "v1"})
    admin.sys.create_or_update_policy(name="reader", policy=READER)
    return emulator_backend


@pytest.fixture
def approle_login(env: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AppRole role 'rotator' (1h tokens, renewable to 4h) and its pair in the environment."""
    approle = env.admin().auth.approle
    approle.create_or_update_approle(
        role_name="rotator", token_policies=["reader"], token_ttl="1h", token_max_ttl="4h"
    )
    role_id = approle.read_role_id(role_name="rotator")["data"]["role_id"]
    secret_id = approle.generate_secret_id(role_name="rotator")["data"]["secret_id"]
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(secret_id + "\n")
    monkeypatch.setenv("VAULT_ADDR", env.url)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID_FILE", str(secret_file))
    return secret_file


def unsigned_jwt(namespace: str, name: str) -> str:
    """Return an unsigned service-account JWT with the claims Kubernetes puts in one."""

    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": "0b7e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token",
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_missing_vault_addr_is_a_clear_error(env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without VAULT_ADDR the session refuses to start and says what to set."""
    monkeypatch.setenv("VAULT_TOKEN", env.root_token)
    with pytest.raises(PermanentError, match="VAULT_ADDR is not set"):
        session(runtime_for(env))


def test_no_credentials_is_a_clear_error(env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an address but no credential of any kind the error lists the options."""
    monkeypatch.setenv("VAULT_ADDR", env.url)
    with pytest.raises(PermanentError, match=r"VAULT_TOKEN.*VAULT_ROLE_ID.*VAULT_K8S_ROLE"):
        session(runtime_for(env))


def test_half_configured_approle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """VAULT_ROLE_ID without any secret-id is refused before calling Vault."""
    with pytest.raises(PermanentError, match="VAULT_SECRET_ID"):
        auth_from_env({"VAULT_ROLE_ID": "role"})


def test_connection_settings_from_env() -> None:
    """Namespace, CA bundle and skip-verify come from the environment; the URL is normalised."""
    conn = Connection.from_env(
        {"VAULT_ADDR": "https://vault:8200/", "VAULT_NAMESPACE": "team", "VAULT_CACERT": "/ca.pem"}
    )
    assert conn == Connection("https://vault:8200", "team", "/ca.pem")
    skip = Connection.from_env(
        {"VAULT_ADDR": "https://v", "VAULT_CACERT": "/ca.pem", "VAULT_SKIP_VERIFY": "true"}
    )
    assert skip.verify is False
    assert Connection.from_env({"VAULT_ADDR": "http://v", "VAULT_SKIP_VERIFY": "0"}).verify is True
    client = skip.new_client()
    assert client.adapter.namespace is None and not client.token


def test_auth_order(tmp_path: Path) -> None:
    """VAULT_TOKEN wins, then AppRole, then Kubernetes, then ~/.vault-token."""
    (tmp_path / ".vault-token").write_text("hvs.from-file-00000000\n")
    home = {"HOME": str(tmp_path)}
    assert isinstance(auth_from_env({**home, "VAULT_TOKEN": "t", "VAULT_ROLE_ID": "r"}), TokenAuth)
    approle = auth_from_env({**home, "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s"})
    assert isinstance(approle, AppRoleAuth) and approle.mount == "approle"
    k8s = auth_from_env({**home, "VAULT_K8S_ROLE": "rotator", "VAULT_K8S_MOUNT": "k8s"})
    assert isinstance(k8s, KubernetesAuth) and k8s.mount == "k8s"
    assert k8s.token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    from_file = auth_from_env(home)
    assert isinstance(from_file, TokenAuth) and from_file.token() == "hvs.from-file-00000000"


def test_token_from_env(env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """VAULT_TOKEN authenticates the session, which is cached per address and namespace."""
    point_at(monkeypatch, env, env.token("reader"))
    runtime = runtime_for(env)
    vault = session(runtime)
    assert read_app(vault) == "v1"
    assert session(runtime) is vault


def test_token_from_home_file(
    env: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """~/.vault-token is used when nothing else is configured."""
    (tmp_path / "home" / ".vault-token").write_text(env.token("reader") + "\n")
    monkeypatch.setenv("VAULT_ADDR", env.url)
    assert read_app(session(runtime_for(env))) == "v1"


def test_approle_with_secret_id_file(env: Backend, approle_login: Path) -> None:
    """AppRole login reads the secret-id file and gets a token with the role's policies."""
    vault = session(runtime_for(env))
    assert read_app(vault) == "v1"
    token = vault.client().token
    seen = env.admin().auth.token.lookup(token)["data"]
    assert "reader" in seen["policies"]
    assert seen["path"].startswith("auth/approle/login")


def test_kubernetes_login_with_token_file(
    env: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Kubernetes login sends the service-account JWT from the token file."""
    admin = env.admin()
    admin.auth.kubernetes.configure(kubernetes_host="https://kubernetes.default.svc")
    admin.auth.kubernetes.create_role(
        name="rotator",
        bound_service_account_names=["rotator"],
        bound_service_account_namespaces=["ops"],
        policies=["reader"],
        ttl="1h",
    )
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(unsigned_jwt("ops", "rotator"))
    monkeypatch.setenv("VAULT_ADDR", env.url)
    monkeypatch.setenv("VAULT_K8S_ROLE", "rotator")
    monkeypatch.setenv("VAULT_K8S_TOKEN_FILE", str(jwt_file))
    vault = session(runtime_for(env))
    assert read_app(vault) == "v1"
    seen = admin.auth.token.lookup(vault.client().token)["data"]
    assert seen["path"].startswith("auth/kubernetes/login")


def test_unreadable_token_file_is_a_clear_error(
    env: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missing Kubernetes token file is a PermanentError naming the file."""
    monkeypatch.setenv("VAULT_ADDR", env.url)
    monkeypatch.setenv("VAULT_K8S_ROLE", "rotator")
    monkeypatch.setenv("VAULT_K8S_TOKEN_FILE", str(tmp_path / "absent"))
    with pytest.raises(PermanentError, match="absent"):
        session(runtime_for(env)).client()


def test_login_token_is_renewed_before_expiry(env: Backend, approle_login: Path) -> None:
    """With under a third of its TTL left the token is renewed, so it outlives its first TTL."""
    assert env.step is not None
    runtime = runtime_for(env)
    vault = session(runtime)
    read_app(vault)
    token = vault.client().token
    env.step.sleep(timedelta(minutes=30).total_seconds())
    read_app(vault)
    ttl_before = env.admin().auth.token.lookup(token)["data"]["ttl"]
    assert ttl_before == 1800  # not yet due: two thirds of the hour are not gone
    env.step.sleep(timedelta(minutes=15).total_seconds())
    read_app(vault)
    assert vault.client().token == token
    assert env.admin().auth.token.lookup(token)["data"]["ttl"] == 3600
    env.step.sleep(timedelta(minutes=45).total_seconds())
    assert read_app(vault) == "v1"
    assert vault.client().token == token


def test_static_token_is_renewed_before_expiry(
    env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewable VAULT_TOKEN is renewed too (its TTL learnt from lookup-self)."""
    assert env.step is not None
    token = env.token("reader", ttl="1h", renewable=True, explicit_max_ttl="10h")
    point_at(monkeypatch, env, token)
    vault = session(runtime_for(env))
    read_app(vault)
    for _ in range(4):
        env.step.sleep(timedelta(minutes=45).total_seconds())
        assert read_app(vault) == "v1"
    assert vault.client().token == token


def test_failed_renewal_logs_in_again(env: Backend, approle_login: Path) -> None:
    """If renew-self fails (the token was revoked), the session logs in again before the call."""
    assert env.step is not None
    vault = session(runtime_for(env))
    read_app(vault)
    first = vault.client().token
    env.step.sleep(timedelta(minutes=50).total_seconds())
    env.admin().auth.token.revoke(first)
    assert read_app(vault) == "v1"
    assert vault.client().token != first


def test_capped_renewal_logs_in_again(env: Backend, approle_login: Path) -> None:
    """Near its max TTL a renewal grants too little, so the session logs in again."""
    assert env.step is not None
    vault = session(runtime_for(env))
    read_app(vault)
    first = vault.client().token
    for _ in range(5):
        env.step.sleep(timedelta(minutes=45).total_seconds())
        assert read_app(vault) == "v1"
    assert vault.client().token != first


def test_relogin_on_forbidden_after_revocation(env: Backend, approle_login: Path) -> None:
    """A call refused because the token was revoked logs in again once and succeeds."""
    vault = session(runtime_for(env))
    read_app(vault)
    first = vault.client().token
    env.admin().auth.token.revoke(first)
    assert read_app(vault) == "v1"
    assert vault.client().token != first


def test_relogin_rereads_the_secret_id_file(env: Backend, approle_login: Path) -> None:
    """A rotated secret-id file is read again at the next login."""
    vault = session(runtime_for(env))
    read_app(vault)
    approle = env.admin().auth.approle
    fresh = approle.generate_secret_id(role_name="rotator")["data"]
    approle_login.write_text(fresh["secret_id"])
    for accessor in approle.list_secret_id_accessors(role_name="rotator")["data"]["keys"]:
        if accessor != fresh["secret_id_accessor"]:
            approle.destroy_secret_id_accessor(role_name="rotator", secret_id_accessor=accessor)
    env.admin().auth.token.revoke(vault.client().token)
    assert read_app(vault) == "v1"


def test_static_token_revoked_is_permission_denied(
    env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revoked VAULT_TOKEN cannot be replaced: the call fails with PermissionDeniedError."""
    token = env.token("reader")
    point_at(monkeypatch, env, token)
    vault = session(runtime_for(env))
    read_app(vault)
    env.admin().auth.token.revoke(token)
    with pytest.raises(PermissionDeniedError) as caught:
        read_app(vault)
    assert token not in str(caught.value)


def test_genuine_denial_is_raised_after_one_relogin(env: Backend, approle_login: Path) -> None:
    """A path the policy does not grant is refused even after logging in again."""
    vault = session(runtime_for(env))
    read_app(vault)
    first = vault.client().token
    with pytest.raises(PermissionDeniedError):
        vault.call("read sys/policies", lambda c: c.sys.list_acl_policies())
    assert vault.client().token != first


def test_new_client_carries_no_session_token(env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """new_client() talks to the same Vault without the session's token, or with the one given."""
    point_at(monkeypatch, env, env.root_token)
    vault = session(Runtime(clock=env.clock, sleep=lambda s: None, cache={}))
    bare = vault.new_client()
    assert not bare.token and bare.url == env.url
    other = vault.new_client("hvs.other-token-0000000")
    assert other.token == "hvs.other-token-0000000"
