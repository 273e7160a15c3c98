"""``rotator permissions`` for Azure Key Vault: the role, and each of its data actions needed.

The Key Vault emulator has no RBAC (every token it issued may do anything),
so nothing here can show a rotation refused for a missing data action. What
is shown instead:

- every Key Vault SDK call the store's code makes (read from its source) maps
  to a data action, and the generated actions are exactly those, ``purge``
  only with ``purge_pending``;
- every REST request a rotation really sends to the emulator (a rolled-back
  rotation, then two whole ones) maps to a data action the role holds;
- the role for two vaults scopes both, with every action and its steps.

The mapping from REST operation to data action is Key Vault's, as Azure's
RBAC documentation lists the secret data actions.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.keyvault.secrets._shared import http_challenge_cache

from providers.azure import keyvault as keyvault_module
from providers.azure.emulator import KeyVaultEmulator
from providers.azure.errors import keyvault_operation
from providers.azure.keyvault import KeyVaultConfig, KeyVaultStore
from rotator.engine import Engine
from rotator.interfaces import Runtime
from rotator.journal import Journal
from rotator.lifecycle import State
from rotator.loader import load_policies
from rotator.permissions import azure_role, collect
from tests.conftest import FakeClock
from tests.providers.azure.backends import emulator_admin, point_at_emulator

PREFIX = "Microsoft.KeyVault/vaults/secrets/"
#: The data action each REST operation of the secrets API needs (Key Vault RBAC).
BY_OPERATION = {
    "secrets.get": "getSecret/action",
    "secrets.set": "setSecret/action",
    "secrets.update": "update/action",
    "secrets.delete": "delete",
    "secrets.list": "readMetadata/action",
    "secrets.list_versions": "readMetadata/action",
    "secrets.get_deleted": "readMetadata/action",
    "secrets.list_deleted": "readMetadata/action",
    "secrets.purge_deleted": "purge/action",
    "secrets.recover_deleted": "recover/action",
    "secrets.backup": "backup/action",
    "secrets.restore": "restore/action",
}
#: The REST operation behind each ``SecretClient`` method.
BY_METHOD = {
    "get_secret": "secrets.get",
    "set_secret": "secrets.set",
    "update_secret_properties": "secrets.update",
    "begin_delete_secret": "secrets.delete",
    "list_properties_of_secrets": "secrets.list",
    "list_properties_of_secret_versions": "secrets.list_versions",
    "get_deleted_secret": "secrets.get_deleted",
    "list_deleted_secrets": "secrets.list_deleted",
    "purge_deleted_secret": "secrets.purge_deleted",
    "begin_recover_deleted_secret": "secrets.recover_deleted",
    "backup_secret": "secrets.backup",
    "restore_secret_backup": "secrets.restore",
}
#: What polling a delete or a recovery reads while it waits (azure-core's pollers).
POLLS = {
    "begin_delete_secret": "secrets.get_deleted",
    "begin_recover_deleted_secret": "secrets.get",
}


def _store(vault_url: str, **fields: object) -> KeyVaultStore:
    clock = FakeClock()
    config = KeyVaultConfig(vault_url=vault_url, name="billing-db", **fields)
    return KeyVaultStore(config, Runtime(clock=clock, sleep=clock.sleep), "billing-db")


def _sdk_methods() -> set[str]:
    """Return the SecretClient methods the store's source calls (``c.<method>(...)`` in lambdas)."""
    tree = ast.parse(Path(keyvault_module.__file__).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda) and [a.arg for a in node.args.args] == ["c"]:
            for call in ast.walk(node.body):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "c"
                ):
                    found.add(call.func.attr)
    return found


def _actions_of(methods: set[str]) -> set[str]:
    operations = {BY_METHOD[m] for m in methods} | {POLLS[m] for m in methods if m in POLLS}
    return {PREFIX + BY_OPERATION[o] for o in operations}


def test_generated_actions_are_exactly_what_the_sdk_calls_need() -> None:
    """The store's SDK calls map to data actions equal to its permissions (purge only if asked)."""
    methods = _sdk_methods()
    assert {"get_secret", "set_secret", "update_secret_properties"} <= methods
    assert methods <= set(BY_METHOD), f"unmapped SDK calls: {methods - set(BY_METHOD)}"
    url = "https://billing-prod.vault.azure.net"
    purging = {a for p in _store(url).permissions() for a in p.actions}
    keeping = {a for p in _store(url, purge_pending=False).permissions() for a in p.actions}
    assert purging == _actions_of(methods)
    assert keeping == _actions_of(methods - {"purge_deleted_secret"})
    assert {p.resource for p in _store(url).permissions()} == {url}


def test_role_for_two_vaults_scopes_both_with_every_action() -> None:
    """Two vaults give one custom role: data actions only, both vaults scoped, steps explained."""
    first = _store("https://billing-prod.vault.azure.net")
    second = _store("https://orders-prod.vault.azure.net", purge_pending=False)
    needed = [*first.permissions(), *second.permissions()]
    role = azure_role(needed)
    assert role["IsCustom"] is True and role["Actions"] == [] and role["NotActions"] == []
    assert role["DataActions"] == sorted(_actions_of(_sdk_methods()))
    assert role["AssignableScopes"] == [
        "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
        f"/providers/Microsoft.KeyVault/vaults/{name}"
        for name in ("billing-prod", "orders-prod")
    ]
    assert "secrets/update/action: store: retire" in role["Description"]
    assert azure_role(list(reversed(needed))) == role


@pytest.fixture
def keyvault(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultEmulator]:
    """A started emulator the store reaches with the real managed-identity credential."""
    http_challenge_cache.clear()
    with KeyVaultEmulator() as emulator:
        point_at_emulator(monkeypatch, emulator, managed=True)
        monkeypatch.setattr(keyvault_module, "POLL_INTERVAL", 0.05)
        yield emulator
    http_challenge_cache.clear()


def test_every_request_a_rotation_sends_is_covered(
    keyvault: KeyVaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rolled-back rotation and two whole ones send only requests the role's actions cover."""
    emulator_admin(keyvault).set_secret("billing-db", "initial-value-of-the-secret")
    config = tmp_path / "policies.yaml"
    config.write_text(
        json.dumps(
            {
                "secrets": [
                    {
                        "name": "billing-db",
                        "store": {
                            "provider": "azure-keyvault",
                            "vault_url": keyvault.vault_url,
                            "name": "billing-db",
                        },
                        "schedule": {"every": "30d"},
                        "grace": "1h",
                    }
                ]
            }
        )
    )
    # The emulator and the identity's token cache use the wall clock: start there.
    clock = FakeClock(datetime.now(UTC))
    engine = Engine(
        load_policies(config),
        Journal(f"sqlite:///{tmp_path / 'j.db'}", clock),
        clock=clock,
        sleep=clock.sleep,
    )
    role = azure_role(collect(engine.binding(n) for n in engine.policies))
    keyvault.request_log.clear()
    monkeypatch.setenv("ROTATOR_FAULT", "fail:verify")
    [rolled] = engine.rotate("billing-db").outcomes
    monkeypatch.delenv("ROTATOR_FAULT")
    ended = []
    for _round in range(2):
        engine.rotate("billing-db")
        clock.advance(timedelta(hours=2))
        ended += [o.state for o in engine.run_once().outcomes]
    assert rolled.state is State.ROLLED_BACK and ended == [State.DONE, State.DONE]
    operations = {
        keyvault_operation(r.method, r.path.split("?")[0])
        for r in keyvault.request_log
        if r.authorization
    }
    needed = {PREFIX + BY_OPERATION[o] for o in operations}
    assert needed <= set(role["DataActions"])
    # The rotations used most of what the role grants (the rest: replays and recovery).
    assert set(role["DataActions"]) - needed <= {PREFIX + "recover/action"}
