"""Fixtures giving the Vault adapter tests a backend: the emulator, and a real server.

Load with ``pytest_plugins = ["tests.providers.vault.conftest_backends"]``;
see :mod:`tests.providers.vault.backends` for what each backend provides.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.helpers import StepClock
from tests.providers.vault.backends import REAL_VAULT, Backend, emulated, unique_prefix, vault_for


@pytest.fixture(params=["emulator", REAL_VAULT])
def vault_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The emulator, then a real server: the Vault VAULT_ADDR names, else the session's OpenBao."""
    with vault_for(request, unique_prefix(), StepClock()) as backend:
        yield backend


@pytest.fixture
def emulator_backend() -> Iterator[Backend]:
    """The emulator only, for tests that inject faults or move its clock."""
    with emulated(unique_prefix(), StepClock()) as backend:
        yield backend
