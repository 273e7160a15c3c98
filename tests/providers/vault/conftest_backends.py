"""Fixtures giving the Vault adapter tests a backend: the emulator, and a real server.

Load with ``pytest_plugins = ["tests.providers.vault.conftest_backends"]``;
see :mod:`tests.providers.vault.backends` for what each backend provides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.providers.helpers import StepClock
from tests.providers.vault.backends import REAL_VAULT, Backend, real_server


@pytest.fixture(params=["emulator", REAL_VAULT])
def vault_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The emulator, then a real server: the Vault VAULT_ADDR names, else the session's OpenBao."""
    prefix = f"rt{uuid.uuid4().hex[:10]}"
    if request.param == "emulator":
        from rotator.sandbox.vault import VaultEmulator

        step = StepClock()
        with VaultEmulator(clock=step) as vault:
            backend = Backend(
                "emulator", vault.url, vault.root_token, prefix, step, step=step, emulator=vault
            )
            yield backend
        return
    backend = real_server(request, prefix)
    try:
        yield backend
    finally:
        backend.cleanup()


@pytest.fixture
def emulator_backend() -> Iterator[Backend]:
    """The emulator only, for tests that inject faults or move its clock."""
    from rotator.sandbox.vault import VaultEmulator

    step = StepClock()
    with VaultEmulator(clock=step) as vault:
        yield Backend(
            "emulator",
            vault.url,
            vault.root_token,
            f"rt{uuid.uuid4().hex[:10]}",
            step,
            step=step,
            emulator=vault,
        )
