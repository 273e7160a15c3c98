"""Fixtures for the Vault tests: a started VaultEmulator and hvac clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import hvac
import pytest

from rotator.sandbox.vault import VaultEmulator


@dataclass
class ManualClock:
    """A clock that only moves when a test advances it."""

    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    """A started emulator on a free loopback port, using the wall clock."""
    with VaultEmulator() as emulator:
        yield emulator


@pytest.fixture
def hvac_client(vault: VaultEmulator) -> hvac.Client:
    """A real hvac client holding the emulator's root token."""
    return hvac.Client(url=vault.url, token=vault.root_token)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at 2026-01-01T00:00:00Z."""
    return ManualClock()


@pytest.fixture
def clocked_vault(clock: ManualClock) -> Iterator[VaultEmulator]:
    """A started emulator whose time is the manual ``clock``."""
    with VaultEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
def clocked_client(clocked_vault: VaultEmulator) -> hvac.Client:
    """A root hvac client for ``clocked_vault``."""
    return hvac.Client(url=clocked_vault.url, token=clocked_vault.root_token)
