"""Fixtures giving the Vault adapter tests a backend: the emulator, and a real Vault if set.

Load with ``pytest_plugins = ["tests.providers.vault.conftest_backends"]``;
see :mod:`tests.providers.vault.backends` for what each backend provides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.providers.helpers import StepClock
from tests.providers.vault.backends import (
    REAL_ADDR,
    REAL_CACERT,
    REAL_NAMESPACE,
    REAL_SKIP_VERIFY,
    REAL_TOKEN,
    Backend,
)


@pytest.fixture(params=["emulator", "vault"])
def vault_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The emulator, and a real Vault when VAULT_ADDR and VAULT_TOKEN are set."""
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
    if not (REAL_ADDR and REAL_TOKEN):
        pytest.skip("set VAULT_ADDR and VAULT_TOKEN to run the contract against a real Vault")
    backend = Backend(
        "vault",
        REAL_ADDR,
        REAL_TOKEN,
        prefix,
        lambda: datetime.now(UTC),
        namespace=REAL_NAMESPACE,
        cacert=REAL_CACERT,
        skip_verify=REAL_SKIP_VERIFY,
    )
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
