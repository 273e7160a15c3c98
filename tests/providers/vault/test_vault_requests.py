"""Every Vault request is paced, reported to ``runtime.on_request``, and a 429 honoured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from providers.vault.approle import AppRoleConfig, AppRoleSecretIdIssuer
from providers.vault.client import OPERATIONS
from providers.vault.kv import VaultKvConfig, VaultKvStore
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import OUTCOMES, Runtime
from rotator.errors import TransientError
from rotator.service.metrics import OPERATION_PATTERN
from tests.providers.threads import run_together
from tests.providers.vault.backends import (
    Backend,
    approle_policy,
    clean_vault_env,
    kv_policy,
    new_rotation_id,
    point_at,
    runtime_for,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

PATH = "apps/payments/db"
OLD = "old-password-0000000001"
NEW = "new-password-0000000001"
ROLE = "payments"

Call = tuple[str, str, str]


@dataclass
class Setup:
    """A KV mount and an AppRole role on the emulator, and a runtime recording requests."""

    backend: Backend
    mount: str
    approle_mount: str
    runtime: Runtime
    calls: list[Call]
    slept: list[float]

    def store(self) -> VaultKvStore:
        """Build the store for ``mount/PATH`` (key ``password``)."""
        config = VaultKvConfig(mount=self.mount, path=PATH, key="password")
        return VaultKvStore(config, self.runtime, "payments-db")

    def issuer(self) -> AppRoleSecretIdIssuer:
        """Build the issuer of the test role's secret-ids."""
        config = AppRoleConfig(role=ROLE, mount=self.approle_mount)
        return AppRoleSecretIdIssuer(config, self.runtime, "payments-db")


def _setup(backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Setup:
    """A KV mount seeded with OLD, an AppRole role, and a token with both adapters' policies."""
    clean_vault_env(monkeypatch, tmp_path)
    monkeypatch.delenv("ROTATOR_RATE_LIMITS", raising=False)
    mount = backend.enable_kv("kv")
    approle_mount = backend.enable_approle()
    admin = backend.admin()
    app = backend.policy("app", 'path "sys/health" { capabilities = ["read"] }\n')
    admin.auth.approle.create_or_update_approle(
        role_name=ROLE, token_policies=[app], token_ttl="10m", mount_point=approle_mount
    )
    admin.secrets.kv.v2.create_or_update_secret(
        path=PATH, secret={"password": OLD}, mount_point=mount
    )
    policies = (
        backend.policy("store", kv_policy(mount, PATH)),
        backend.policy("issuer", approle_policy(approle_mount, ROLE)),
    )
    point_at(monkeypatch, backend, backend.token(*policies))
    runtime = runtime_for(backend)
    calls: list[Call] = []
    slept: list[float] = []
    runtime.on_request = lambda provider, operation, outcome: calls.append(
        (provider, operation, outcome)
    )
    step_sleep = runtime.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        step_sleep(seconds)

    runtime.sleep = sleep
    return Setup(backend, mount, approle_mount, runtime, calls, slept)


@pytest.fixture
def setup(vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Setup:
    """The emulator, then a real server, each set up by :func:`_setup`."""
    return _setup(vault_backend, monkeypatch, tmp_path)


@pytest.fixture
def emulated(emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Setup:
    """The emulator only: these tests inject its faults or pace on (and move) its clock."""
    return _setup(emulator_backend, monkeypatch, tmp_path)


def test_a_rotation_reports_each_request_by_kind(setup: Setup) -> None:
    """A secret-id rotation into KV reports every request by its kind, never by its path."""
    store, issuer = setup.store(), setup.issuer()
    rid = new_rotation_id()

    issuer.inventory()
    credential = issuer.mint(rid)
    store.put_pending(rid, credential.value)
    assert store.pending(rid) == credential.value
    issuer.verify(credential)
    previous = store.promote(rid)
    assert previous is not None and credential.ref is not None
    store.retire(previous)

    assert setup.calls == [
        ("vault", "token.lookup_self", "ok"),  # the session learns its token's TTL
        ("vault", "approle.secret_id.list", "permanent"),  # none yet: Vault answers 404
        ("vault", "approle.role_id.read", "ok"),
        ("vault", "approle.secret_id.generate", "ok"),
        # put_pending: nothing staged yet (404), then the base and the staging write
        ("vault", "kv.read", "permanent"),
        ("vault", "kv.read", "ok"),
        ("vault", "kv.metadata.write", "ok"),
        ("vault", "kv.write", "ok"),
        ("vault", "kv.read", "ok"),
        # verify: look the secret-id up, log in with it, prove and revoke the token
        ("vault", "approle.secret_id.lookup", "ok"),
        ("vault", "approle.login", "ok"),
        ("vault", "token.lookup_self", "ok"),
        ("vault", "token.revoke_self", "ok"),
        # promote
        ("vault", "kv.read", "ok"),
        ("vault", "kv.metadata.read", "ok"),
        ("vault", "kv.metadata.read", "ok"),
        ("vault", "kv.write", "ok"),
        ("vault", "kv.metadata.read", "ok"),
        ("vault", "kv.metadata.write", "ok"),
        ("vault", "kv.metadata.delete", "ok"),
        # retire
        ("vault", "kv.metadata.read", "ok"),
        ("vault", "kv.delete", "ok"),
        ("vault", "kv.metadata.write", "ok"),
    ]
    for provider, operation, outcome in setup.calls:
        assert operation in OPERATIONS and operation != "other"
        assert (
            OPERATION_PATTERN.fullmatch(operation)
            and PATH not in operation
            and rid not in operation
        )
        assert outcome in OUTCOMES and provider == "vault"


def test_a_throttled_request_is_transient_with_its_retry_after(emulated: Setup) -> None:
    """A 429 from a rate-limit quota is reported throttled and raised with Retry-After as delay."""
    store = emulated.store()
    store.current()
    emulated.calls.clear()
    emulated.backend.emulator.inject_fault(
        f"/v1/{emulated.mount}/data/{PATH}", status=429, retry_after=7
    )
    with pytest.raises(TransientError) as caught:
        store.current()
    assert caught.value.delay == 7.0
    assert "HTTP 429" in str(caught.value) and "quota" not in str(caught.value)
    current = store.current()
    assert current is not None and current.value == SecretValue(OLD)
    assert emulated.calls == [("vault", "kv.read", "throttled"), ("vault", "kv.read", "ok")]


def test_an_http_date_retry_after_is_counted_from_the_answer(emulated: Setup) -> None:
    """An HTTP-date Retry-After (older Vault versions) becomes the seconds until that date."""
    store = emulated.store()
    store.current()
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    emulated.backend.emulator.inject_fault(
        f"/v1/{emulated.mount}/data/{PATH}", status=429, retry_after=later
    )
    with pytest.raises(TransientError) as caught:
        store.current()
    assert caught.value.delay is not None and 27.0 <= caught.value.delay <= 31.0


def test_a_429_without_retry_after_leaves_the_delay_to_the_engine(emulated: Setup) -> None:
    """A 429 without Retry-After is transient with no delay (the engine's backoff decides)."""
    emulated.backend.emulator.inject_fault(f"/v1/{emulated.mount}/data/{PATH}", status=429)
    with pytest.raises(TransientError) as caught:
        emulated.store().current()
    assert caught.value.delay is None
    assert ("vault", "kv.read", "throttled") in emulated.calls


def test_server_errors_are_reported_transient(emulated: Setup) -> None:
    """A 503 is reported transient, and the request that follows ok."""
    store = emulated.store()
    store.current()
    emulated.calls.clear()
    emulated.backend.emulator.inject_fault(f"/v1/{emulated.mount}/data/{PATH}", status=503)
    with pytest.raises(TransientError):
        store.current()
    store.current()
    assert emulated.calls == [("vault", "kv.read", "transient"), ("vault", "kv.read", "ok")]


def test_requests_are_paced_per_vault_address(
    emulated: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ROTATOR_RATE_LIMITS=vault=2, eight requests wait for tokens on the injected sleeper."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "vault=2")
    store = emulated.store()
    for _ in range(7):
        store.current()
    # The session's lookup-self and seven reads: two pass at once (the burst),
    # the six others wait about half a second each.
    assert len(emulated.calls) == 8
    assert len(emulated.slept) >= 5
    assert sum(emulated.slept) >= 2.5


def test_the_vault_rate_limit_can_be_turned_off(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROTATOR_RATE_LIMITS=vault=0 lets every request through without waiting."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "vault=0")
    store = setup.store()
    for _ in range(10):
        store.current()
    assert len(setup.calls) == 11
    assert setup.slept == []


def test_threads_sharing_a_runtime_share_one_authenticated_session(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight threads rotating their own paths at once log in once and all promote."""
    admin = setup.backend.admin().secrets.kv.v2
    mount = setup.backend.enable_kv("many")
    token = setup.backend.token(setup.backend.policy("many", kv_policy(mount, "apps/+")))
    monkeypatch.setenv("VAULT_TOKEN", token)

    def rotate(i: int) -> None:
        path = f"apps/app-{i}"
        admin.create_or_update_secret(path=path, secret={"password": OLD}, mount_point=mount)
        config = VaultKvConfig(mount=mount, path=path, key="password")
        store = VaultKvStore(config, setup.runtime, f"app-{i}")
        rid = new_rotation_id()
        store.put_pending(rid, SecretValue(f"{NEW}-{i}"))
        store.promote(rid)

    assert run_together(rotate, range(8)) == []
    for i in range(8):
        latest = admin.read_secret_version(
            path=f"apps/app-{i}", mount_point=mount, raise_on_deleted_version=True
        )
        assert latest["data"]["data"]["password"] == f"{NEW}-{i}"
    kinds = [operation for _, operation, _ in setup.calls]
    assert kinds.count("token.lookup_self") == 1
    assert "other" not in kinds


def test_a_due_renewal_happens_once_for_all_threads(emulated: Setup) -> None:
    """When the token is near its end, threads calling at once renew it once between them."""
    store = emulated.store()
    store.current()  # the session learns its token's one-hour TTL
    emulated.backend.tick(50 * 60)
    emulated.calls.clear()

    def read(_: int) -> None:
        store.current()

    assert run_together(read, range(8)) == []
    kinds = [operation for _, operation, _ in emulated.calls]
    assert kinds.count("token.renew_self") == 1
    assert kinds.count("kv.read") == 8
