"""Fixtures for the Azure tests: a started Key Vault emulator and real SecretClients for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets._shared import http_challenge_cache

from rotator.sandbox.azure import KeyVaultEmulator


@dataclass
class ManualClock:
    """A clock that only moves when a test advances it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


def make_client(kv: KeyVaultEmulator, vault_url: str | None = None, **kwargs: Any) -> SecretClient:
    """A real SecretClient for the emulator: its credential, its CA, no challenge-resource check."""
    return SecretClient(
        vault_url=vault_url or kv.vault_url,
        credential=kwargs.pop("credential", None) or kv.credential(),
        verify_challenge_resource=False,
        connection_verify=kv.ca_path,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _fresh_challenge_cache() -> Iterator[None]:
    """Empty the SDK's process-global challenge cache around each test (ports can be reused)."""
    http_challenge_cache.clear()
    yield
    http_challenge_cache.clear()


@pytest.fixture
def keyvault() -> Iterator[KeyVaultEmulator]:
    """A started emulator on a free loopback port, using the wall clock.

    Its deletes and recoveries complete at once: with the service's few seconds, on the wall
    clock, every test that deletes would wait for them. ``clocked_keyvault`` has them.
    """
    with KeyVaultEmulator(delete_delay=0, recover_delay=0) as kv:
        yield kv


@pytest.fixture
def secret_client(keyvault: KeyVaultEmulator) -> SecretClient:
    """A real SecretClient holding the emulator's credential and trusting its CA."""
    return make_client(keyvault)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at the current second (so SDK token caching behaves as live)."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def clocked_keyvault(clock: ManualClock) -> Iterator[KeyVaultEmulator]:
    """A started emulator whose time is the manual ``clock``; deletes and recoveries take the
    default few seconds of it, so a test moves the clock to finish them."""
    with KeyVaultEmulator(clock=clock) as kv:
        yield kv
