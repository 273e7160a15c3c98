"""The Vault session: connection and auth from the environment, renewal, re-login."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


@dataclass
class Env:
    """A Vault with a KV v2 mount holding app/config, a ``reader`` policy and an AppRole mount."""

    backend: Backend
    mount: str
    reader: str
    approle_mount: str

    @property
    def url(self) -> str:
        """The Vault's address."""
        return self.backend.url

    def admin(self) -> Any:
        """Return a client with the admin token."""
        return self.backend.admin()

    def token(self, *policies: str, **extra: Any) -> str:
        """Create a token holding ``policies`` (default: ``reader``); return it."""
        return self.backend.token(*(policies or (self.reader,)), **extra)


def read_app(vault: VaultSession, env: Env) -> str:
    """Read app/config in the test's mount through the session; return its value."""
    answer = vault.call(
        f"read {env.mount}/data/app/config",
        lambda c: c.secrets.kv.v2.read_secret_version(
            path="app/config", mount_point=env.mount, raise_on_deleted_version=True
        ),
    )
    return str(answer["data"]["data"]["value"])


def _env(backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """Clean the VAULT_* environment; give the backend app/config, ``reader`` and AppRole."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    (tmp_path / "home").mkdir()
    mount = backend.enable_kv("kv")
    backend.admin().secrets.kv.v2.create_or_update_secret(
        path="app/config", secret={"value": "v1"}, mount_point=mount
    )
    reader = backend.policy("reader", f'path "{mount}/data/app/*" {{ capabilities = ["read"] }}\n')
    return Env(backend, mount, reader, backend.enable_approle())


@pytest.fixture
def env(vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """The emulator, then a real server, each seeded (see :func:`_env`)."""
    return _env(vault_backend, monkeypatch, tmp_path)


@pytest.fixture
def clocked(emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    """The emulator only: the renewal tests move its clock past TTLs."""
    return _env(emulator_backend, monkeypatch, tmp_path)


def _approle_login(env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Create role 'rotator' (1h tokens, renewable to 4h); put its pair in the environment."""
    approle = env.admin().auth.approle
    mount = env.approle_mount
    approle.create_or_update_approle(
        role_name="rotator",
        token_policies=[env.reader],
        token_ttl="1h",
        token_max_ttl="4h",
        mount_point=mount,
    )
    role_id = approle.read_role_id(role_name="rotator", mount_point=mount)["data"]["role_id"]
    secret_id = approle.generate_secret_id(role_name="rotator", mount_point=mount)["data"][
        "secret_id"
    ]
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(secret_id + "\n")
    monkeypatch.setenv("VAULT_ADDR", env.url)
    monkeypatch.setenv("VAULT_APPROLE_MOUNT", mount)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID_FILE", str(secret_file))
    return secret_file


@pytest.fixture
def approle_login(env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AppRole login in the environment (see :func:`_approle_login`); the secret-id file."""
    return _approle_login(env, monkeypatch, tmp_path)


@pytest.fixture
def clocked_login(clocked: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The same AppRole login, on the emulator whose clock the test moves."""
    return _approle_login(clocked, monkeypatch, tmp_path)


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


#: No Vault answers here; the tests that use it fail before any request.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def bare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Runtime:
    """No VAULT_* variable and an empty HOME; a runtime on the wall clock."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    return Runtime(clock=lambda: datetime.now(UTC), sleep=lambda s: None, cache={})


def test_missing_vault_addr_is_a_clear_error(
    bare: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without VAULT_ADDR the session refuses to start and says what to set."""
    monkeypatch.setenv("VAULT_TOKEN", "hvs.some-token-000000000")
    with pytest.raises(PermanentError, match="VAULT_ADDR is not set"):
        session(bare)


def test_no_credentials_is_a_clear_error(bare: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """With an address but no credential of any kind the error lists the options."""
    monkeypatch.setenv("VAULT_ADDR", NOWHERE)
    with pytest.raises(PermanentError, match=r"VAULT_TOKEN.*VAULT_ROLE_ID.*VAULT_K8S_ROLE"):
        session(bare)


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


def test_token_from_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """VAULT_TOKEN authenticates the session, which is cached per address and namespace."""
    point_at(monkeypatch, env.backend, env.token())
    runtime = runtime_for(env.backend)
    vault = session(runtime)
    assert read_app(vault, env) == "v1"
    assert session(runtime) is vault


def test_token_from_home_file(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """~/.vault-token is used when nothing else is configured."""
    (tmp_path / "home" / ".vault-token").write_text(env.token() + "\n")
    monkeypatch.setenv("VAULT_ADDR", env.url)
    assert read_app(session(runtime_for(env.backend)), env) == "v1"


def test_approle_with_secret_id_file(env: Env, approle_login: Path) -> None:
    """AppRole login reads the secret-id file and gets a token with the role's policies."""
    vault = session(runtime_for(env.backend))
    assert read_app(vault, env) == "v1"
    token = vault.client().token
    seen = env.admin().auth.token.lookup(token)["data"]
    assert env.reader in seen["policies"]
    assert seen["path"].startswith(f"auth/{env.approle_mount}/login")


def test_kubernetes_login_with_token_file(
    clocked: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Kubernetes login sends the service-account JWT from the token file."""
    # The emulator only: a real server would ask a Kubernetes API to review the token.
    env = clocked
    admin = env.admin()
    admin.auth.kubernetes.configure(kubernetes_host="https://kubernetes.default.svc")
    admin.auth.kubernetes.create_role(
        name="rotator",
        bound_service_account_names=["rotator"],
        bound_service_account_namespaces=["ops"],
        policies=[env.reader],
        ttl="1h",
    )
    jwt_file = tmp_path / "sa-token"
    jwt_file.write_text(unsigned_jwt("ops", "rotator"))
    monkeypatch.setenv("VAULT_ADDR", env.url)
    monkeypatch.setenv("VAULT_K8S_ROLE", "rotator")
    monkeypatch.setenv("VAULT_K8S_TOKEN_FILE", str(jwt_file))
    vault = session(runtime_for(env.backend))
    assert read_app(vault, env) == "v1"
    seen = admin.auth.token.lookup(vault.client().token)["data"]
    assert seen["path"].startswith("auth/kubernetes/login")


def test_unreadable_token_file_is_a_clear_error(
    bare: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A missing Kubernetes token file is a PermanentError naming the file."""
    monkeypatch.setenv("VAULT_ADDR", NOWHERE)
    monkeypatch.setenv("VAULT_K8S_ROLE", "rotator")
    monkeypatch.setenv("VAULT_K8S_TOKEN_FILE", str(tmp_path / "absent"))
    with pytest.raises(PermanentError, match="absent"):
        session(bare).client()


def test_login_token_is_renewed_before_expiry(clocked: Env, clocked_login: Path) -> None:
    """With under a third of its TTL left the token is renewed, so it outlives its first TTL."""
    env, step = clocked, clocked.backend.step
    assert step is not None
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    token = vault.client().token
    step.sleep(timedelta(minutes=30).total_seconds())
    read_app(vault, env)
    ttl_before = env.admin().auth.token.lookup(token)["data"]["ttl"]
    assert ttl_before == 1800  # not yet due: two thirds of the hour are not gone
    step.sleep(timedelta(minutes=15).total_seconds())
    read_app(vault, env)
    assert vault.client().token == token
    assert env.admin().auth.token.lookup(token)["data"]["ttl"] == 3600
    step.sleep(timedelta(minutes=45).total_seconds())
    assert read_app(vault, env) == "v1"
    assert vault.client().token == token


def test_static_token_is_renewed_before_expiry(
    clocked: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewable VAULT_TOKEN is renewed too (its TTL learnt from lookup-self)."""
    env, step = clocked, clocked.backend.step
    assert step is not None
    token = env.token(env.reader, ttl="1h", renewable=True, explicit_max_ttl="10h")
    point_at(monkeypatch, env.backend, token)
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    for _ in range(4):
        step.sleep(timedelta(minutes=45).total_seconds())
        assert read_app(vault, env) == "v1"
    assert vault.client().token == token


def test_failed_renewal_logs_in_again(clocked: Env, clocked_login: Path) -> None:
    """If renew-self fails (the token was revoked), the session logs in again before the call."""
    env, step = clocked, clocked.backend.step
    assert step is not None
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    first = vault.client().token
    step.sleep(timedelta(minutes=50).total_seconds())
    env.admin().auth.token.revoke(first)
    assert read_app(vault, env) == "v1"
    assert vault.client().token != first


def test_capped_renewal_logs_in_again(clocked: Env, clocked_login: Path) -> None:
    """Near its max TTL a renewal grants too little, so the session logs in again."""
    env, step = clocked, clocked.backend.step
    assert step is not None
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    first = vault.client().token
    for _ in range(5):
        step.sleep(timedelta(minutes=45).total_seconds())
        assert read_app(vault, env) == "v1"
    assert vault.client().token != first


def test_relogin_on_forbidden_after_revocation(env: Env, approle_login: Path) -> None:
    """A call refused because the token was revoked logs in again once and succeeds."""
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    first = vault.client().token
    env.admin().auth.token.revoke(first)
    assert read_app(vault, env) == "v1"
    assert vault.client().token != first


def test_relogin_rereads_the_secret_id_file(env: Env, approle_login: Path) -> None:
    """A rotated secret-id file is read again at the next login."""
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    approle, mount = env.admin().auth.approle, env.approle_mount
    fresh = approle.generate_secret_id(role_name="rotator", mount_point=mount)["data"]
    approle_login.write_text(fresh["secret_id"])
    listed = approle.list_secret_id_accessors(role_name="rotator", mount_point=mount)
    for accessor in listed["data"]["keys"]:
        if accessor != fresh["secret_id_accessor"]:
            approle.destroy_secret_id_accessor(
                role_name="rotator", secret_id_accessor=accessor, mount_point=mount
            )
    env.admin().auth.token.revoke(vault.client().token)
    assert read_app(vault, env) == "v1"


def test_static_token_revoked_is_permission_denied(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revoked VAULT_TOKEN cannot be replaced: the call fails with PermissionDeniedError."""
    token = env.token()
    point_at(monkeypatch, env.backend, token)
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    env.admin().auth.token.revoke(token)
    with pytest.raises(PermissionDeniedError) as caught:
        read_app(vault, env)
    assert token not in str(caught.value)


def test_genuine_denial_is_raised_after_one_relogin(env: Env, approle_login: Path) -> None:
    """A path the policy does not grant is refused even after logging in again."""
    vault = session(runtime_for(env.backend))
    read_app(vault, env)
    first = vault.client().token
    with pytest.raises(PermissionDeniedError):
        vault.call("read sys/policies", lambda c: c.sys.list_acl_policies())
    assert vault.client().token != first


def test_new_client_carries_no_session_token(
    bare: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """new_client() talks to the same Vault without the session's token, or with the one given."""
    monkeypatch.setenv("VAULT_ADDR", NOWHERE)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.session-token-000000")
    vault = session(bare)
    bare_client = vault.new_client()
    assert not bare_client.token and bare_client.url == NOWHERE
    other = vault.new_client("hvs.other-token-0000000")
    assert other.token == "hvs.other-token-0000000"
