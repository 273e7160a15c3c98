"""Replica targets retire the old value at the end of the grace, as their store does.

A Vault KV path and an Azure Key Vault secret used as targets (replicas of
the policy's secret in another store) get the new value at propagate. The
old one must stay readable through the grace, then be retired at revoke
exactly as the store retires its own old version: soft-deleted (or destroyed
with ``destroy_on_retire``) in Vault, disabled in Key Vault. The engine runs
in process against the Vault emulator and OpenBao (in a KV mount of the
test's own) and the Key Vault emulator, through hvac and the Azure SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
import pytest
from azure.core.exceptions import HttpResponseError

from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.sandbox.azure import KeyVaultEmulator
from tests.conftest import FakeClock
from tests.providers.azure.backends import emulator_admin, managed_emulator
from tests.providers.vault.backends import Backend, clean_vault_env, point_at

pytest_plugins = ["tests.providers.vault.conftest_backends"]

OLD = "the-old-value-of-the-secret-0123"


def _engine(tmp_path: Path, policy: dict[str, Any], clock: FakeClock) -> Engine:
    config = tmp_path / "policies.yaml"
    config.write_text(json.dumps({"secrets": [policy]}))
    return Engine(
        load_policies(config),
        Journal(f"sqlite:///{tmp_path / 'journal.db'}", clock),
        clock=clock,
        sleep=clock.sleep,
    )


def _rotate_through_grace(engine: Engine, clock: FakeClock, between: Any) -> str:
    """Rotate ``app``, call ``between()`` during the grace, then run past it; return the id."""
    [rotated] = engine.rotate("app").outcomes
    assert rotated.state is State.GRACE, rotated.message
    between()
    clock.advance(timedelta(hours=2))
    [revoked] = engine.run_once().outcomes
    assert revoked.state is State.DONE, revoked.message
    assert rotated.rotation_id is not None
    return rotated.rotation_id


# -- Vault KV ---------------------------------------------------------------------------


@dataclass
class Kv:
    """A KV v2 mount of the test's own, read through the admin client."""

    root: hvac.Client
    mount: str

    def version(self, path: str, version: int) -> dict[str, Any]:
        """Return one version's metadata (``deletion_time``, ``destroyed``) of ``path``."""
        meta = self.root.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self.mount)
        found: dict[str, Any] = meta["data"]["versions"][str(version)]
        return found

    def value(self, path: str, version: int | None = None) -> str | None:
        """Return ``value`` of a version of ``path``; None if deleted or destroyed."""
        try:
            read = self.root.secrets.kv.v2.read_secret_version(
                path=path, version=version, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        value: str = read["data"]["data"]["value"]
        return value


@pytest.fixture
def kv(vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Kv:
    """A KV mount on the emulator, then on a real server; rotator pointed at it as root."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    point_at(monkeypatch, vault_backend, vault_backend.root_token)
    return Kv(vault_backend.admin(), vault_backend.enable_kv("kv"))


def test_vault_replicas_retire_the_old_version_at_grace_end(kv: Kv, tmp_path: Path) -> None:
    """Both replicas keep the old version through the grace, then delete (or destroy) it."""
    for path in ("app/primary", "replicas/app", "replicas/app-destroyed"):
        kv.root.secrets.kv.v2.create_or_update_secret(
            path=path, secret={"value": OLD}, mount_point=kv.mount
        )
    clock = FakeClock()
    policy = {
        "name": "app",
        "store": {"provider": "vault-kv", "mount": kv.mount, "path": "app/primary"},
        "schedule": {"every": "30d"},
        "grace": "1h",
        "targets": [
            {"provider": "vault-kv", "mount": kv.mount, "path": "replicas/app"},
            {
                "provider": "vault-kv",
                "mount": kv.mount,
                "path": "replicas/app-destroyed",
                "destroy_on_retire": True,
            },
        ],
    }
    engine = _engine(tmp_path, policy, clock)
    replicas = ("replicas/app", "replicas/app-destroyed")

    def in_grace() -> None:
        for path in replicas:
            assert kv.value(path, 1) == OLD
            assert kv.value(path) == kv.value("app/primary") != OLD

    rotation_id = _rotate_through_grace(engine, clock, in_grace)
    new = kv.value("app/primary")
    for path in replicas:
        assert kv.value(path, 1) is None, f"{path}: the old value is still readable"
        assert kv.value(path) == new and kv.value(path, 2) == new
    assert kv.version("replicas/app", 1)["deletion_time"]
    assert not kv.version("replicas/app", 1)["destroyed"]
    assert kv.version("replicas/app-destroyed", 1)["destroyed"]
    # Retiring again (a revoke step replayed) changes nothing.
    for target in engine.binding("app").targets:
        target.retire(rotation_id)
    assert [kv.value(path) for path in replicas] == [new, new]


# -- Azure Key Vault --------------------------------------------------------------------


@pytest.fixture
def keyvault(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultEmulator]:
    """A started Key Vault emulator the store reaches with the real managed-identity credential."""
    with managed_emulator(monkeypatch) as emulator:
        yield emulator


def _enabled(admin: Any, name: str) -> dict[str, bool]:
    """Return whether each version of ``name`` is enabled, by version id."""
    return {p.version: bool(p.enabled) for p in admin.list_properties_of_secret_versions(name)}


def test_azure_replica_disables_the_old_version_at_grace_end(
    keyvault: KeyVaultEmulator, tmp_path: Path
) -> None:
    """The replica's old version stays enabled through the grace, then is disabled."""
    admin = emulator_admin(keyvault)
    admin.set_secret("app-primary", OLD)
    old = admin.set_secret("app-replica", OLD).properties.version
    # The emulator and the identity's token cache use the wall clock: start there.
    clock = FakeClock(datetime.now(UTC))
    store = {"provider": "azure-keyvault", "vault_url": keyvault.vault_url}
    policy = {
        "name": "app",
        "store": {**store, "name": "app-primary"},
        "schedule": {"every": "30d"},
        "grace": "1h",
        "targets": [{**store, "name": "app-replica"}],
    }
    engine = _engine(tmp_path, policy, clock)

    def in_grace() -> None:
        assert admin.get_secret("app-replica", old).value == OLD
        assert admin.get_secret("app-replica").value == admin.get_secret("app-primary").value

    rotation_id = _rotate_through_grace(engine, clock, in_grace)
    latest = admin.get_secret("app-replica")
    assert latest.value == admin.get_secret("app-primary").value != OLD
    assert _enabled(admin, "app-replica") == {old: False, latest.properties.version: True}
    with pytest.raises(HttpResponseError) as caught:
        admin.get_secret("app-replica", old)
    assert caught.value.status_code == 403
    # Retiring again (a revoke step replayed) changes nothing.
    [target] = engine.binding("app").targets
    target.retire(rotation_id)
    assert _enabled(admin, "app-replica") == {old: False, latest.properties.version: True}
