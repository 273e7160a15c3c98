"""Key Vault backends for the store tests: the emulator always, a real vault when configured.

Load the fixtures with ``pytest_plugins = ["tests.providers.azure.backends"]``
(the emulator's own fixtures live in ``conftest.py``, owned separately; the
names here start with ``akv_`` so that neither shadows the other).

- ``emulator``: :class:`rotator.sandbox.azure.KeyVaultEmulator` on a fresh
  loopback port (the SDK's challenge cache is keyed by host and port). The
  store logs in with the real ``ManagedIdentityCredential``, pointed at the
  emulator's App Service style token endpoint
  (``ROTATOR_AZURE_CREDENTIAL=managed``, ``IDENTITY_ENDPOINT``,
  ``IDENTITY_HEADER``), trusts the emulator's CA (``AZURE_CA_BUNDLE``) and
  skips the challenge-resource check (the vault is on 127.0.0.1). Its
  deletes and recoveries take Key Vault's few seconds, on a
  :class:`SharedClock` that the store's runtime sleeps move: the store's
  waits end without anyone sleeping.
- ``azure``: the real vault named by ``AZURE_KEYVAULT_URL``, skipped unless
  it and some Azure identity (``AZURE_CLIENT_ID``, ``IDENTITY_ENDPOINT``,
  ``ROTATOR_AZURE_CREDENTIAL``...) are set. The store and the test's own
  admin client use the environment's identity, which needs the "Key Vault
  Secrets Officer" role on the vault. Every secret a test creates has a
  unique name and is deleted and purged afterwards.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from providers.azure import keyvault as keyvault_module
from providers.azure.keyvault import KeyVaultConfig, KeyVaultStore
from rotator.adapters.values import Runtime
from tests.providers.helpers import StepClock

REAL_URL = os.environ.get("AZURE_KEYVAULT_URL", "").strip()
_IDENTITY_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_ENDPOINT",
    "MSI_ENDPOINT",
    "ROTATOR_AZURE_CREDENTIAL",
)
REAL_IDENTITY = any(os.environ.get(name) for name in _IDENTITY_VARS)

#: Variables that steer the Azure SDK or the adapter; cleared for the emulator.
_AZURE_ENV_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_", "ROTATOR_AZURE_")
_AZURE_ENV_NAMES = ("REQUESTS_CA_BUNDLE",)


def wall_clock() -> datetime:
    """The wall clock in UTC (the emulator and the SDK's token cache use real time)."""
    return datetime.now(UTC)


@dataclass
class SharedClock(StepClock):
    """The emulator's clock and the store's: it moves only when someone sleeps on it.

    It starts at the wall clock's current second, so tokens the identity caches by
    wall time stay valid for the emulator (it issues them for an hour of its clock).
    """

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))


def new_rotation_id() -> str:
    """Return a rotation id as the engine makes them (32 hex characters)."""
    return uuid.uuid4().hex


def clean_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable that steers azure-identity, the SDK or the adapter."""
    for name in list(os.environ):
        if name.startswith(_AZURE_ENV_PREFIXES) or name in _AZURE_ENV_NAMES:
            monkeypatch.delenv(name)


def point_at_emulator(monkeypatch: pytest.MonkeyPatch, emulator: Any, *, managed: bool) -> None:
    """Point the adapter at ``emulator``: its CA, no challenge-resource check, its MSI endpoint."""
    clean_azure_env(monkeypatch)
    monkeypatch.setenv("AZURE_CA_BUNDLE", str(emulator.ca_path))
    monkeypatch.setenv("ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE", "false")
    if managed:
        monkeypatch.setenv("ROTATOR_AZURE_CREDENTIAL", "managed")
        monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", emulator.identity_header)


@contextlib.contextmanager
def managed_emulator(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[Any]:
    """A started Key Vault emulator the store reaches with the real managed-identity credential.

    ``options`` go to the emulator. Without a ``clock`` it runs on the wall clock, and its
    deletes and recoveries complete at once unless the options say otherwise (with Key
    Vault's few seconds, every rotation would wait on them for real).
    """
    from azure.keyvault.secrets._shared import http_challenge_cache

    from rotator.sandbox.azure import KeyVaultEmulator

    if "clock" not in options:
        options = {"delete_delay": 0, "recover_delay": 0, **options}
    http_challenge_cache.clear()
    with KeyVaultEmulator(**options) as emulator:
        point_at_emulator(monkeypatch, emulator, managed=True)
        yield emulator
    http_challenge_cache.clear()


def emulator_admin(emulator: Any) -> Any:
    """A SecretClient with the emulator's own credential, for seeding and inspecting."""
    from azure.keyvault.secrets import SecretClient

    return SecretClient(
        vault_url=emulator.vault_url,
        credential=emulator.credential(),
        verify_challenge_resource=False,
        connection_verify=str(emulator.ca_path),
        retry_total=0,
    )


@dataclass
class Backend:
    """One vault the tests run against, and the secret names a test used in it."""

    name: str
    vault_url: str
    admin: Any
    prefix: str
    emulator: Any = None
    clock: Callable[[], datetime] = wall_clock
    sleep: Callable[[float], None] = time.sleep
    used: list[str] = field(default_factory=list)

    def secret_name(self, label: str = "db") -> str:
        """Return a unique secret name for this test (and remember it and its companion)."""
        name = f"{self.prefix}-{label}"
        self.used.extend([name, name + "--pending"])
        return name

    @staticmethod
    def rotation_id() -> str:
        """Return a new rotation id as the engine makes them (32 hex characters)."""
        return new_rotation_id()

    def runtime(self) -> Runtime:
        """Return a fresh Runtime (empty cache) on the backend's clock and sleep."""
        return Runtime(clock=self.clock, sleep=self.sleep, cache={})

    def store(self, name: str, runtime: Runtime | None = None, **extra: Any) -> KeyVaultStore:
        """Build the store for secret ``name`` of this vault, for policy ``payments-db``."""
        config = KeyVaultConfig(vault_url=self.vault_url, name=name, **extra)
        return KeyVaultStore(config, runtime or self.runtime(), "payments-db")

    def seed(self, name: str, value: str, **kwargs: Any) -> Any:
        """Set ``value`` as a new version of ``name`` with the admin client; return it."""
        return self.admin.set_secret(name, value, **kwargs)

    def latest(self, name: str) -> Any:
        """Return the latest version of ``name`` as the admin client reads it."""
        return self.admin.get_secret(name)

    def versions(self, name: str) -> dict[str, Any]:
        """Return every version's properties of ``name``, by version id."""
        return {p.version: p for p in self.admin.list_properties_of_secret_versions(name)}

    def exists(self, name: str) -> bool:
        """Tell whether ``name`` is an active secret."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.admin.get_secret(name)
        except ResourceNotFoundError:
            return False
        return True

    def soft_deleted(self, name: str) -> bool:
        """Tell whether ``name`` is among the deleted (not yet purged) secrets."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.admin.get_deleted_secret(name)
        except ResourceNotFoundError:
            return False
        return True

    def delete(self, name: str) -> None:
        """Delete ``name`` (soft-delete) and wait until it is among the deleted secrets."""
        poller = self.admin.begin_delete_secret(name, _polling_interval=self.poll_interval)
        if self.emulator is not None:
            self.sleep(self.emulator.delete_delay)  # its clock: the delete is complete after it
        poller.wait()

    def begin_delete(self, name: str) -> None:
        """Start deleting ``name`` and return at once (the delete is under way)."""
        self.admin.begin_delete_secret(name)

    def await_deleted(self, name: str) -> None:
        """Wait until a delete of ``name`` already sent is complete (it is among the deleted)."""
        if self.emulator is not None:
            self.sleep(self.emulator.delete_delay)  # its clock: the delete is complete after it
            return
        deadline = time.monotonic() + 120
        while not self.soft_deleted(name):
            assert time.monotonic() < deadline, f"{name} is still not deleted after 120 s"
            time.sleep(self.poll_interval)

    @property
    def poll_interval(self) -> float:
        """Seconds between the admin client's polls of a delete (real seconds)."""
        return 0.01 if self.emulator is not None else 1.0

    def cleanup(self) -> None:
        """Delete and purge every secret the test used (a real vault only; best effort)."""
        from azure.core.exceptions import AzureError

        for name in self.used:
            with contextlib.suppress(AzureError):
                self.delete(name)
            with contextlib.suppress(AzureError):
                self.admin.purge_deleted_secret(name)


@contextlib.contextmanager
def clocked_backend(
    monkeypatch: pytest.MonkeyPatch, clock: SharedClock | None = None, **options: Any
) -> Iterator[Backend]:
    """The emulator as a :class:`Backend`, on a :class:`SharedClock` the store's sleeps move.

    ``clock`` is that clock (a new one if not given); ``options`` go to the emulator
    (``purge_protection``, ``delete_delay``...); its deletes and recoveries take Key Vault's
    few seconds unless they say otherwise.
    """
    clock = clock or SharedClock()
    with managed_emulator(monkeypatch, clock=clock, **options) as emulator:
        yield Backend(
            "emulator",
            emulator.vault_url,
            emulator_admin(emulator),
            f"rt{uuid.uuid4().hex[:12]}",
            emulator,
            clock=clock,
            sleep=clock.sleep,
        )


@pytest.fixture(params=["emulator", "azure"])
def akv_backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """The emulator, and a real vault when AZURE_KEYVAULT_URL and an Azure identity are set."""
    if request.param == "emulator":
        with clocked_backend(monkeypatch) as backend:
            yield backend
        return
    if not (REAL_URL and REAL_IDENTITY):
        pytest.skip(
            "set AZURE_KEYVAULT_URL and an Azure identity (AZURE_CLIENT_ID, IDENTITY_ENDPOINT, "
            "ROTATOR_AZURE_CREDENTIAL...) to run the contract against a real vault"
        )
    from azure.keyvault.secrets import SecretClient

    from providers.azure.identity import build_credential

    monkeypatch.setattr(keyvault_module, "POLL_INTERVAL", 1.0)
    admin = SecretClient(vault_url=REAL_URL, credential=build_credential())
    backend = Backend("azure", REAL_URL.rstrip("/"), admin, f"rt{uuid.uuid4().hex[:12]}")
    try:
        yield backend
    finally:
        backend.cleanup()


@pytest.fixture
def akv_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The emulator only, for tests that inject faults or need its endpoints."""
    with clocked_backend(monkeypatch) as backend:
        yield backend


@pytest.fixture
def akv_clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with no Azure identity, CA or adapter variable; returns monkeypatch."""
    clean_azure_env(monkeypatch)
    return monkeypatch
