"""Every Key Vault request is paced and reported to ``runtime.on_request``, once per attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from azure.keyvault.secrets._shared import http_challenge_cache

from providers.azure import identity
from providers.azure.errors import OPERATIONS, keyvault_operation, status_outcome
from providers.azure.keyvault import KeyVaultStore
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import OUTCOMES, Runtime
from rotator.errors import TransientError
from rotator.service.metrics import OPERATION_PATTERN
from tests.providers.threads import run_together

if TYPE_CHECKING:
    from tests.providers.azure.backends import Backend

# Fixtures akv_backend and akv_emulator.
pytest_plugins = ["tests.providers.azure.backends"]

OLD = "old-password-for-requests-1"
NEW = "new-password-for-requests-1"

Call = tuple[str, str, str]


@dataclass
class Recorder:
    """A runtime whose requests and sleeps are recorded (the sleeps move the backend's clock)."""

    backend: Backend
    calls: list[Call] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    runtime: Runtime = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = Runtime(
            clock=self.backend.clock,
            sleep=self._sleep,
            cache={},
            on_request=lambda provider, operation, outcome: self.calls.append(
                (provider, operation, outcome)
            ),
        )

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.backend.sleep(seconds)

    def store(self, name: str) -> KeyVaultStore:
        """Build the store for secret ``name`` on this runtime."""
        return self.backend.store(name, self.runtime)


@pytest.fixture
def rec(akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """The emulator, with the default rate limits and a recording runtime."""
    monkeypatch.delenv("ROTATOR_RATE_LIMITS", raising=False)
    return Recorder(akv_emulator)


def test_a_rotation_reports_each_request_by_its_rest_call(rec: Recorder) -> None:
    """put_pending, pending, promote and retire report each request once (no 401 challenge)."""
    name = rec.backend.secret_name()
    old = rec.backend.seed(name, OLD)
    store = rec.store(name)
    rid = rec.backend.rotation_id()

    store.put_pending(rid, SecretValue(NEW))
    assert store.pending(rid) == SecretValue(NEW)
    assert store.promote(rid) == old.properties.version
    store.retire(old.properties.version)

    assert rec.calls == [
        # put_pending: nothing staged yet (404), the base version, the companion
        ("azure-keyvault", "secrets.get", "permanent"),
        ("azure-keyvault", "secrets.get", "ok"),
        ("azure-keyvault", "secrets.set", "ok"),
        ("azure-keyvault", "secrets.get", "ok"),
        # promote: read both, set the secret, delete the companion, poll the deleted
        # companion (404 for the 6 s the delete takes, polled every 2 s), purge it
        ("azure-keyvault", "secrets.get", "ok"),
        ("azure-keyvault", "secrets.get", "ok"),
        ("azure-keyvault", "secrets.set", "ok"),
        ("azure-keyvault", "secrets.delete", "ok"),
        *[("azure-keyvault", "secrets.get_deleted", "permanent")] * 3,
        ("azure-keyvault", "secrets.get_deleted", "ok"),
        ("azure-keyvault", "secrets.purge_deleted", "ok"),
        # retire: read the latest (never disabled), disable the old version
        ("azure-keyvault", "secrets.get", "ok"),
        ("azure-keyvault", "secrets.update", "ok"),
    ]
    for provider, operation, outcome in rec.calls:
        assert operation in OPERATIONS and operation != "other"
        assert OPERATION_PATTERN.fullmatch(operation) and name not in operation
        assert provider == "azure-keyvault" and outcome in OUTCOMES


def test_the_authentication_challenge_is_not_counted(rec: Recorder) -> None:
    """A first request's 401 challenge round trip is one Key Vault request, not two."""
    name = rec.backend.secret_name()
    rec.backend.seed(name, OLD)
    http_challenge_cache.clear()  # as in a fresh process: the store's client must elicit it
    rec.backend.emulator.request_log.clear()
    current = rec.store(name).current()
    assert current is not None and current.value == SecretValue(OLD)
    sent = [
        (entry.path, entry.authorization, entry.status)
        for entry in rec.backend.emulator.request_log
    ]
    assert sent == [(f"/secrets/{name}/", False, 401), (f"/secrets/{name}/", True, 200)]
    assert rec.calls == [("azure-keyvault", "secrets.get", "ok")]


def test_a_throttled_attempt_the_sdk_retries_is_reported(rec: Recorder) -> None:
    """A 429 the SDK retries at once is reported throttled, the retry ok, and the read succeeds."""
    name = rec.backend.secret_name()
    rec.backend.seed(name, OLD)
    store = rec.store(name)
    rec.backend.emulator.inject_fault(f"/secrets/{name}/", status=429)
    current = store.current()
    assert current is not None and current.value == SecretValue(OLD)
    assert rec.calls == [
        ("azure-keyvault", "secrets.get", "throttled"),
        ("azure-keyvault", "secrets.get", "ok"),
    ]


def test_a_throttled_request_raises_with_its_retry_after(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the SDK's retries off, a 429 is reported throttled and raised with its Retry-After."""
    monkeypatch.setattr(identity, "SDK_RETRIES", 0)
    name = rec.backend.secret_name()
    rec.backend.seed(name, OLD)
    rec.backend.emulator.inject_fault(f"/secrets/{name}/", status=429, retry_after=9)
    with pytest.raises(TransientError) as caught:
        rec.store(name).current()
    assert caught.value.delay == 9.0
    assert rec.calls == [("azure-keyvault", "secrets.get", "throttled")]


def test_server_errors_are_reported_transient(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 is reported transient."""
    monkeypatch.setattr(identity, "SDK_RETRIES", 0)
    name = rec.backend.secret_name()
    rec.backend.emulator.inject_fault(f"/secrets/{name}--pending", status=503, method="PUT")
    with pytest.raises(TransientError):
        rec.store(name).put_pending(rec.backend.rotation_id(), SecretValue(NEW))
    assert ("azure-keyvault", "secrets.set", "transient") in rec.calls


def test_requests_are_paced_per_vault(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ROTATOR_RATE_LIMITS=keyvault=2, eight reads wait for tokens on the injected sleeper."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "keyvault=2")
    name = rec.backend.secret_name()
    rec.backend.seed(name, OLD)
    store = rec.store(name)
    for _ in range(8):
        store.current()
    # Two pass at once (the burst); the six others wait about half a second each.
    assert len(rec.calls) == 8
    assert len(rec.slept) >= 5
    assert sum(rec.slept) >= 2.5


def test_the_keyvault_rate_limit_can_be_turned_off(
    rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROTATOR_RATE_LIMITS=keyvault=0 lets every request through without waiting."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "keyvault=0")
    name = rec.backend.secret_name()
    rec.backend.seed(name, OLD)
    store = rec.store(name)
    for _ in range(10):
        store.current()
    assert len(rec.calls) == 10
    assert rec.slept == []


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/secrets/db/", "secrets.get"),
        ("GET", "/secrets/db/0123456789abcdef0123456789abcdef", "secrets.get"),
        ("PUT", "/secrets/db", "secrets.set"),
        ("PATCH", "/secrets/db/0123456789abcdef0123456789abcdef", "secrets.update"),
        ("DELETE", "/secrets/db", "secrets.delete"),
        ("GET", "/secrets", "secrets.list"),
        ("GET", "/secrets/db/versions", "secrets.list_versions"),
        ("POST", "/secrets/db/backup", "secrets.backup"),
        ("POST", "/secrets/restore", "secrets.restore"),
        ("GET", "/deletedsecrets/db", "secrets.get_deleted"),
        ("DELETE", "/deletedsecrets/db", "secrets.purge_deleted"),
        ("POST", "/deletedsecrets/db/recover", "secrets.recover_deleted"),
        ("GET", "/deletedsecrets", "secrets.list_deleted"),
        ("GET", "/keys/k", "other"),
        ("POST", "/secrets/db", "other"),
    ],
)
def test_requests_are_named_by_rest_call(method: str, path: str, expected: str) -> None:
    """A request's verb and path name its REST call, never the secret or version in the path."""
    assert keyvault_operation(method, path) == expected
    assert expected in OPERATIONS


@pytest.mark.parametrize(
    ("status", "inner", "expected"),
    [
        (200, "", "ok"),
        (204, "", "ok"),
        (429, "", "throttled"),
        (408, "", "transient"),
        (500, "", "transient"),
        (503, "", "transient"),
        (501, "", "permanent"),
        (302, "", "permanent"),
        (409, "ObjectIsBeingDeleted", "transient"),
        (409, "ObjectIsDeletedButRecoverable", "permanent"),
        (404, "", "permanent"),
        (403, "SecretDisabled", "permanent"),
    ],
)
def test_answers_are_classified_like_the_errors_they_raise(
    status: int, inner: str, expected: str
) -> None:
    """Statuses (and a 409's inner code) map to ok, throttled, transient or permanent."""
    assert status_outcome(status, inner) == expected


def test_threads_sharing_a_runtime_share_one_credential_and_client(rec: Recorder) -> None:
    """Eight secrets rotated at once on eight threads share one credential and client, and land."""
    names = [rec.backend.secret_name(f"t{i}") for i in range(8)]
    for name in names:
        rec.backend.seed(name, OLD)

    def rotate(name: str) -> None:
        store = rec.store(name)
        rid = rec.backend.rotation_id()
        store.put_pending(rid, SecretValue(f"{NEW}-{name}"))
        store.promote(rid)

    assert run_together(rotate, names) == []
    for name in names:
        assert rec.backend.latest(name).value == f"{NEW}-{name}"
    cached = [key for key in rec.runtime.cache if key.startswith("azure:")]
    assert sorted(cached) == sorted(
        ["azure:credential", "azure:lock", f"azure:secret-client:{rec.backend.vault_url}"]
    )
    assert {outcome for _, _, outcome in rec.calls} <= {"ok", "permanent"}
