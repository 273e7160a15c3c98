"""JWT/OIDC auth for rotator's own identity: the ``jwt`` method (emulator, OpenBao), the login."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hvac.exceptions import InvalidRequest

from providers.vault.client import (
    AppRoleAuth,
    JwtAuth,
    KubernetesAuth,
    TokenAuth,
    auth_from_env,
    session,
)
from providers.vault.kv import VaultKvConfig, VaultKvStore
from rotator.adapters.secret import SecretValue
from rotator.errors import PermanentError, PermissionDeniedError
from rotator.output import redact
from tests.providers.vault.backends import (
    Backend,
    clean_vault_env,
    kv_policy,
    new_rotation_id,
    runtime_for,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

ISSUER = "https://gitlab.example.com"
AUDIENCE = "https://vault.example.com"
PROJECT = "ops/rotator"
SUBJECT = f"project_path:{PROJECT}:ref_type:branch:ref:main"
KV_PATH = "apps/payments/db"
OLD = "old-password-0000000001"
NEW = "new-password-0000000001"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """Return the PKIX PEM of a private key's public half."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def gitlab_key() -> rsa.RSAPrivateKey:
    """The key the (test) GitLab instance signs its ID tokens with."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def stranger_key() -> rsa.RSAPrivateKey:
    """A key Vault was never told about."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Gitlab:
    """Mints ID tokens shaped like GitLab CI's ``id_tokens``, dated on the Vault's clock."""

    backend: Backend
    key: Any

    def id_token(self, *, key: Any = None, algorithm: str = "RS256", **overrides: Any) -> str:
        """Return a signed ID token for a main-branch job of PROJECT, with claims overridden."""
        now = int(self.backend.clock().timestamp())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": SUBJECT,
            "namespace_id": "72",
            "namespace_path": "ops",
            "project_id": "1234",
            "project_path": PROJECT,
            "pipeline_id": "99001",
            "pipeline_source": "schedule",
            "job_id": "512001",
            "ref": "main",
            "ref_type": "branch",
            "ref_protected": "true",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        }
        claims.update(overrides)
        return pyjwt.encode(
            claims, key or self.key, algorithm=algorithm, headers={"kid": "gitlab-ci"}
        )


@dataclass
class JwtSetup:
    """A Vault with JWT auth at ``jwt_mount``, a role ``rotator`` and a KV mount it may write."""

    backend: Backend
    gitlab: Gitlab
    mount: str
    jwt_mount: str

    @property
    def jwt(self) -> Any:
        """The admin client's JWT auth API."""
        return self.backend.admin().auth.jwt

    def login(self, token: str, role: str = "rotator") -> dict[str, Any]:
        """Log in with hvac directly; return the ``auth`` block."""
        client = self.backend.client(token="")
        answer: dict[str, Any] = client.auth.jwt.jwt_login(
            role=role, jwt=token, path=self.jwt_mount
        )
        return dict(answer["auth"])

    def refusal(self, token: str, role: str = "rotator") -> list[str]:
        """Log in with hvac and return Vault's error list (the login must fail with 400)."""
        with pytest.raises(InvalidRequest) as caught:
            self.login(token, role)
        return list(caught.value.errors)


def _setup(
    backend: Backend, key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> JwtSetup:
    """JWT auth configured with GitLab's key; role ``rotator`` bound to PROJECT's main branch."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    (tmp_path / "home").mkdir()
    mount = backend.enable_kv("kv")
    admin = backend.admin()
    admin.secrets.kv.v2.create_or_update_secret(
        path=KV_PATH, secret={"password": OLD}, mount_point=mount
    )
    policy = backend.policy("store", kv_policy(mount, KV_PATH))
    jwt_mount = backend.enable_auth("jwt")
    admin.auth.jwt.configure(
        jwt_validation_pubkeys=[_pem(key)], bound_issuer=ISSUER, path=jwt_mount
    )
    admin.auth.jwt.create_role(
        name="rotator",
        role_type="jwt",
        user_claim="sub",
        allowed_redirect_uris=None,
        bound_audiences=[AUDIENCE],
        bound_claims={"project_path": PROJECT, "ref_type": "branch", "ref": ["main"]},
        token_policies=[policy],
        token_ttl="20m",
        token_max_ttl="1h",
        path=jwt_mount,
    )
    monkeypatch.setenv("VAULT_ADDR", backend.url)
    monkeypatch.setenv("VAULT_JWT_MOUNT", jwt_mount)
    return JwtSetup(backend, Gitlab(backend, key), mount, jwt_mount)


@pytest.fixture
def setup(
    vault_backend: Backend,
    gitlab_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> JwtSetup:
    """The emulator, then a real server, each set up by :func:`_setup`."""
    return _setup(vault_backend, gitlab_key, monkeypatch, tmp_path)


@pytest.fixture
def clocked(
    emulator_backend: Backend,
    gitlab_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> JwtSetup:
    """The emulator only: these tests move its clock past a JWT's or a token's expiry."""
    return _setup(emulator_backend, gitlab_key, monkeypatch, tmp_path)


def rotate_kv(setup: JwtSetup) -> VaultKvStore:
    """Run a KV rotation (stage, promote, retire) through rotator's session; return the store."""
    config = VaultKvConfig(mount=setup.mount, path=KV_PATH, key="password")
    store = VaultKvStore(config, runtime_for(setup.backend), "payments-db")
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    previous = store.promote(rid)
    assert previous is not None
    store.retire(previous)
    return store


def session_token(store: VaultKvStore) -> str:
    """Return the Vault token the store's session holds."""
    return str(session(store.runtime).client().token)


# --------------------------------------------------------------------------- the emulator


def test_login_issues_a_token_with_the_roles_policies_and_metadata(setup: JwtSetup) -> None:
    """A valid ID token logs in: the role's policies, metadata.role, display name from sub."""
    auth = setup.login(setup.gitlab.id_token())
    assert auth["metadata"] == {"role": "rotator"}
    assert f"{setup.backend.prefix}-store" in auth["policies"] and "default" in auth["policies"]
    assert auth["lease_duration"] == 1200 and auth["renewable"] is True
    seen = setup.backend.admin().auth.token.lookup(auth["client_token"])["data"]
    assert seen["path"] == f"auth/{setup.jwt_mount}/login"
    assert seen["display_name"] == f"{setup.jwt_mount}-{SUBJECT}"  # the mount path, then sub


def test_the_entity_alias_is_the_user_claim(setup: JwtSetup) -> None:
    """Two jobs with the same ``sub`` share an entity; another subject gets another one."""
    first = setup.login(setup.gitlab.id_token())["entity_id"]
    again = setup.login(setup.gitlab.id_token(job_id="512002"))["entity_id"]
    setup.jwt.create_role(
        name="any-ref",
        role_type="jwt",
        user_claim="sub",
        allowed_redirect_uris=None,
        bound_audiences=[AUDIENCE],
        bound_claims={"project_path": PROJECT},
        path=setup.jwt_mount,
    )
    other_sub = f"project_path:{PROJECT}:ref_type:tag:ref:v1"
    other = setup.login(setup.gitlab.id_token(sub=other_sub), role="any-ref")["entity_id"]
    assert first == again and first != other and first


def test_an_es256_token_logs_in_with_a_configured_ec_key(
    setup: JwtSetup, gitlab_key: rsa.RSAPrivateKey
) -> None:
    """Every configured key is tried: an ES256 token verifies against the EC key of the list."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    setup.jwt.configure(
        jwt_validation_pubkeys=[_pem(gitlab_key), _pem(ec_key)],
        bound_issuer=ISSUER,
        path=setup.jwt_mount,
    )
    token = setup.gitlab.id_token(key=ec_key, algorithm="ES256")
    assert setup.login(token)["metadata"] == {"role": "rotator"}


def test_wrong_audience_is_refused(setup: JwtSetup) -> None:
    """A token minted for another audience does not intersect bound_audiences: 400."""
    errors = setup.refusal(setup.gitlab.id_token(aud=["https://other.example.com"]))
    assert errors == [
        "error validating token: invalid audience (aud) claim: "
        "audience claim does not match any expected audience"
    ]


def test_another_projects_token_is_refused_by_bound_claims(setup: JwtSetup) -> None:
    """A job of another project (project_path differs) fails bound_claims: 400."""
    errors = setup.refusal(setup.gitlab.id_token(project_path="ops/other"))
    assert errors == [
        'error validating claims: claim "project_path" does not match any '
        "associated bound claim values"
    ]


def test_a_missing_bound_claim_is_refused(setup: JwtSetup) -> None:
    """A token without a bound claim at all is refused, naming the claim."""
    token = setup.gitlab.id_token()
    claims = pyjwt.decode(token, options={"verify_signature": False})
    del claims["ref_type"]
    resigned = pyjwt.encode(claims, setup.gitlab.key, algorithm="RS256")
    assert setup.refusal(resigned) == ['error validating claims: claim "ref_type" is missing']


def test_an_expired_token_is_refused_after_the_clock_skew_leeway(clocked: JwtSetup) -> None:
    """exp is checked on Vault's clock with 60s of leeway: inside it passes, beyond it is 400."""
    setup = clocked
    assert setup.backend.step is not None
    token = setup.gitlab.id_token()
    setup.backend.step.sleep(300 + 60)
    assert setup.login(token)["metadata"] == {"role": "rotator"}
    setup.backend.step.sleep(1)
    assert setup.refusal(token) == [
        "error validating token: invalid expiration time (exp) claim: token is expired"
    ]


def test_a_token_not_yet_valid_is_refused(setup: JwtSetup) -> None:
    """An nbf beyond the leeway is refused."""
    now = int(setup.backend.clock().timestamp())
    errors = setup.refusal(setup.gitlab.id_token(nbf=now + 120, iat=now))
    assert errors == ["error validating token: invalid not before (nbf) claim: token not yet valid"]


def test_a_token_signed_by_another_key_is_refused(
    setup: JwtSetup, stranger_key: rsa.RSAPrivateKey
) -> None:
    """A signature no configured key verifies is refused, whatever its claims."""
    errors = setup.refusal(setup.gitlab.id_token(key=stranger_key))
    assert errors == [
        "error validating token: error verifying token signature: "
        "no known key successfully validated the token signature"
    ]


def test_an_unsigned_token_is_refused(setup: JwtSetup) -> None:
    """``alg: none`` is never accepted, even with perfect claims."""
    token = setup.gitlab.id_token()
    claims = pyjwt.decode(token, options={"verify_signature": False})
    unsigned = pyjwt.encode(claims, key=None, algorithm="none")
    assert "no known key successfully validated" in setup.refusal(unsigned)[0]


def test_wrong_issuer_unknown_role_and_missing_token(setup: JwtSetup) -> None:
    """bound_issuer is enforced; an unknown role and an empty JWT get the plugin's messages."""
    assert setup.refusal(setup.gitlab.id_token(iss="https://evil.example.com")) == [
        "error validating token: invalid issuer (iss) claim"
    ]
    assert setup.refusal(setup.gitlab.id_token(), role="ghost") == [
        'role "ghost" could not be found'
    ]
    assert setup.refusal("", role="rotator") == ["missing token"]


def test_config_and_role_read_back(setup: JwtSetup, gitlab_key: rsa.RSAPrivateKey) -> None:
    """The stored config and role read back with the fields written."""
    config = setup.jwt.read_config(path=setup.jwt_mount)["data"]
    # Vault trims the items of a comma-string-slice field: the PEM loses its last newline.
    assert config["jwt_validation_pubkeys"] == [_pem(gitlab_key).strip()]
    assert config["bound_issuer"] == ISSUER
    role = setup.jwt.read_role("rotator", path=setup.jwt_mount)["data"]
    assert role["role_type"] == "jwt" and role["user_claim"] == "sub"
    assert role["bound_audiences"] == [AUDIENCE]
    assert role["bound_claims"] == {"project_path": PROJECT, "ref_type": "branch", "ref": ["main"]}
    assert role["token_ttl"] == 1200
    assert setup.jwt.list_roles(path=setup.jwt_mount)["data"]["keys"] == ["rotator"]


def test_role_and_config_validation(setup: JwtSetup) -> None:
    """A jwt role needs a bound constraint; an oidc role redirect URIs; config a key source."""
    jwt, mount = setup.jwt, setup.jwt_mount
    with pytest.raises(InvalidRequest) as unbound:
        jwt.create_role(
            name="loose", role_type="jwt", user_claim="sub", allowed_redirect_uris=None, path=mount
        )
    assert unbound.value.errors == [
        "must have at least one bound constraint when creating/updating a role"
    ]
    with pytest.raises(InvalidRequest) as oidc:
        jwt.create_role(
            name="web", user_claim="sub", allowed_redirect_uris=None, role_type=None, path=mount
        )
    assert "allowed_redirect_uris" in oidc.value.errors[0]
    with pytest.raises(InvalidRequest) as no_keys:
        jwt.configure(bound_issuer=ISSUER, path=mount)
    assert no_keys.value.errors[0].startswith("exactly one of 'jwt_validation_pubkeys'")
    with pytest.raises(InvalidRequest) as bad_pem:
        jwt.configure(jwt_validation_pubkeys=["not a key"], path=mount)
    assert bad_pem.value.errors[0].startswith("error parsing public key")


# --------------------------------------------------------------------------- rotator's client


def test_auth_order_places_jwt_after_kubernetes(tmp_path: Path) -> None:
    """Token, AppRole and Kubernetes win over VAULT_JWT_ROLE, which wins over ~/.vault-token."""
    (tmp_path / ".vault-token").write_text("hvs.from-file-00000000\n")
    home = {"HOME": str(tmp_path)}
    jwt_env = {**home, "VAULT_JWT_ROLE": "rotator", "VAULT_JWT": "eyJ.header-and-payload.sig"}
    assert isinstance(auth_from_env({**jwt_env, "VAULT_TOKEN": "t"}), TokenAuth)
    approle = {**jwt_env, "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s"}
    assert isinstance(auth_from_env(approle), AppRoleAuth)
    assert isinstance(auth_from_env({**jwt_env, "VAULT_K8S_ROLE": "k"}), KubernetesAuth)
    chosen = auth_from_env(jwt_env)
    assert isinstance(chosen, JwtAuth) and chosen.mount == "jwt" and chosen.role == "rotator"
    file_env = {**jwt_env, "VAULT_JWT_TOKEN_FILE": "/ci/id-token", "VAULT_JWT_MOUNT": "gitlab"}
    from_file = auth_from_env(file_env)
    assert isinstance(from_file, JwtAuth)
    assert (from_file.token_file, from_file.mount) == ("/ci/id-token", "gitlab")


def test_jwt_role_without_a_jwt_is_refused() -> None:
    """VAULT_JWT_ROLE alone is a configuration error naming both ways to give the JWT."""
    with pytest.raises(PermanentError, match="VAULT_JWT_TOKEN_FILE nor VAULT_JWT"):
        auth_from_env({"VAULT_JWT_ROLE": "rotator", "HOME": "/nonexistent"})


def test_no_credentials_error_mentions_jwt(tmp_path: Path) -> None:
    """The "no Vault credentials" error lists the JWT method too."""
    with pytest.raises(PermanentError, match=r"VAULT_K8S_ROLE.*VAULT_JWT_ROLE"):
        auth_from_env({"HOME": str(tmp_path)})


def test_rotation_runs_with_the_jwt_from_a_file(
    setup: JwtSetup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """VAULT_JWT_ROLE + VAULT_JWT_TOKEN_FILE: rotator logs in and rotates KV under the policy."""
    token_file = tmp_path / "id-token"
    token_file.write_text(setup.gitlab.id_token() + "\n")
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT_TOKEN_FILE", str(token_file))
    store = rotate_kv(setup)
    latest = setup.backend.admin().secrets.kv.v2.read_secret_version(
        path=KV_PATH, mount_point=setup.mount, raise_on_deleted_version=True
    )
    assert latest["data"]["data"] == {"password": NEW}
    seen = setup.backend.admin().auth.token.lookup(session_token(store))["data"]
    assert seen["path"] == f"auth/{setup.jwt_mount}/login"
    assert seen["meta"] == {"role": "rotator"}


def test_rotation_runs_with_the_jwt_in_the_environment(
    setup: JwtSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VAULT_JWT (GitLab's $VAULT_ID_TOKEN) works the same, and is registered for redaction."""
    token = setup.gitlab.id_token()
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT", token)
    store = rotate_kv(setup)
    assert store.current() is not None and store.current().value == SecretValue(NEW)  # type: ignore[union-attr]
    assert redact.scrub(f"jwt={token}") == f"jwt={redact.MASK}"


def test_the_policy_bounds_the_issued_token(
    setup: JwtSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JWT token holds the role's policy only: a path outside it is refused."""
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT", setup.gitlab.id_token())
    vault = session(runtime_for(setup.backend))
    with pytest.raises(PermissionDeniedError):
        vault.call("list policies", lambda c: c.sys.list_acl_policies())


def test_a_refused_jwt_login_is_permission_denied_without_the_jwt(
    setup: JwtSetup, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another project's token is refused; neither the JWT nor its claims reach errors or logs."""
    token = setup.gitlab.id_token(project_path="ops/other")
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT", token)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermissionDeniedError, match="refused the JWT login") as caught:
        session(runtime_for(setup.backend)).client()
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    for text in [*(str(e) for e in chain), caplog.text]:
        assert token not in text
        assert "ops/other" not in text and token.split(".")[1] not in text


def test_relogin_after_revocation_reads_the_files_new_jwt(
    clocked: JwtSetup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A revoked token is replaced by logging in with the file's current JWT, not the first."""
    setup = clocked
    assert setup.backend.step is not None
    token_file = tmp_path / "id-token"
    token_file.write_text(setup.gitlab.id_token())
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT_TOKEN_FILE", str(token_file))
    store = rotate_kv(setup)
    first = session_token(store)
    setup.backend.step.sleep(600)  # the first JWT (exp +300s, 60s leeway) is now expired
    setup.backend.admin().auth.token.revoke(first)
    with pytest.raises(PermissionDeniedError):
        store.current()  # the file still holds the expired JWT: the re-login is refused
    token_file.write_text(setup.gitlab.id_token())  # the CI job's token rotated
    current = store.current()
    assert current is not None and current.value == SecretValue(NEW)
    assert session_token(store) != first


def test_an_expired_vault_token_is_replaced_with_the_files_new_jwt(
    clocked: JwtSetup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When the Vault token passes its max TTL, the session logs in again with the new JWT."""
    setup = clocked
    assert setup.backend.step is not None
    token_file = tmp_path / "id-token"
    token_file.write_text(setup.gitlab.id_token())
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT_TOKEN_FILE", str(token_file))
    store = rotate_kv(setup)
    first = session_token(store)
    setup.backend.step.sleep(timedelta(hours=1, minutes=1).total_seconds())
    token_file.write_text(setup.gitlab.id_token())
    current = store.current()
    assert current is not None and current.value == SecretValue(NEW)
    assert session_token(store) != first


def test_the_jwt_never_reaches_a_debug_log(
    setup: JwtSetup,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With every logger at DEBUG, a login and a rotation log neither the JWT nor the token."""
    token = setup.gitlab.id_token()
    token_file = tmp_path / "id-token"
    token_file.write_text(token)
    monkeypatch.setenv("VAULT_JWT_ROLE", "rotator")
    monkeypatch.setenv("VAULT_JWT_TOKEN_FILE", str(token_file))
    caplog.set_level(logging.DEBUG)
    store = rotate_kv(setup)
    assert "authenticated to Vault (jwt)" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text
    assert session_token(store) not in caplog.text
    assert redact.scrub(token) == redact.MASK
