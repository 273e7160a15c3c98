"""``rotator permissions`` for Azure Key Vault: the role, and each of its data actions needed.

The Key Vault emulator has no RBAC (every token it issued may do anything),
so nothing here can show a rotation refused for a missing data action. What
is shown instead:

- every Key Vault SDK call the store's code makes (read from its source) maps
  to a data action, and the generated actions are exactly those, ``purge``
  (and reading the deleted companion) only with ``purge_pending``;
- every REST request a rotation really sends to the emulator (a rolled-back
  rotation, then two whole ones, with and without ``purge_pending``) maps to
  a data action the role assigned at that very secret's scope holds;
- the roles are scoped to each secret and its companion, never a vault, and
  the secret consumers read gets neither ``delete`` nor ``purge``.

The mapping from REST operation to data action is Key Vault's, as Azure's
RBAC documentation lists the secret data actions.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from providers.azure import keyvault as keyvault_module
from providers.azure.errors import keyvault_operation
from providers.azure.keyvault import KeyVaultConfig, KeyVaultStore
from providers.azure.rbac import azure_role, azure_roles, vault_name
from rotator.adapters.values import Runtime
from rotator.engine import faults
from rotator.engine.runner import Engine
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.reports.permissions import collect
from rotator.sandbox.azure import KeyVaultEmulator
from tests.conftest import FakeClock
from tests.providers.azure.backends import emulator_admin, managed_emulator

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
    secret, companion = f"{url}/secrets/billing-db", f"{url}/secrets/billing-db--pending"
    assert {p.resource for p in _store(url).permissions()} == {secret, companion}
    purge = [p for p in _store(url).permissions() if PREFIX + "purge/action" in p.actions]
    assert [p.resource for p in purge] == [companion]


def _scope(vault: str, secret: str) -> str:
    return (
        "/subscriptions/<subscription-id>/resourceGroups/<resource-group>"
        f"/providers/Microsoft.KeyVault/vaults/{vault}/secrets/{secret}"
    )


def _role_at(roles: list[dict[str, Any]], scope: str) -> dict[str, Any]:
    """Return the one role assignable at ``scope``."""
    [role] = [r for r in roles if scope in r["AssignableScopes"]]
    return role


def test_roles_scope_each_secret_and_purge_only_a_purged_companion() -> None:
    """Each secret and companion is one scope; delete and purge reach only companions asking."""
    first = _store("https://billing-prod.vault.azure.net")
    second = _store("https://orders-prod.vault.azure.net", purge_pending=False)
    needed = [*first.permissions(), *second.permissions()]
    roles = azure_roles(needed)
    scopes = [s for role in roles for s in role["AssignableScopes"]]
    assert sorted(scopes) == sorted(
        _scope(vault, name)
        for vault in ("billing-prod", "orders-prod")
        for name in ("billing-db", "billing-db--pending")
    )
    assert all("/secrets/" in scope for scope in scopes)
    for role in roles:
        assert role["IsCustom"] is True and role["Actions"] == [] and role["NotActions"] == []
    read = {PREFIX + a for a in ("getSecret/action", "readMetadata/action", "setSecret/action")}
    for vault in ("billing-prod", "orders-prod"):
        assert set(_role_at(roles, _scope(vault, "billing-db"))["DataActions"]) == read | {
            PREFIX + "update/action"
        }
    purged = set(_role_at(roles, _scope("billing-prod", "billing-db--pending"))["DataActions"])
    kept = set(_role_at(roles, _scope("orders-prod", "billing-db--pending"))["DataActions"])
    # Without a purge nothing reads the deleted companion (nor waits for its delete).
    assert purged - kept == {PREFIX + "purge/action", PREFIX + "readMetadata/action"}
    assert {PREFIX + "delete", PREFIX + "recover/action"} <= kept
    assert not any(
        PREFIX + "purge/action" in r["DataActions"] for r in azure_roles(second.permissions())
    )
    union = azure_role(needed)
    assert union["DataActions"] == sorted(_actions_of(_sdk_methods()))
    assert "secrets/update/action: store: retire" in union["Description"]
    assert azure_roles(list(reversed(needed))) == roles
    assert len({r["Name"] for r in roles}) == len(roles) == 3


@pytest.fixture
def keyvault(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultEmulator]:
    """A started emulator the store reaches with the real managed-identity credential."""
    with managed_emulator(monkeypatch) as emulator:
        yield emulator


@pytest.mark.parametrize("purge_pending", [True, False])
def test_every_request_a_rotation_sends_is_covered(
    keyvault: KeyVaultEmulator, tmp_path: Path, purge_pending: bool
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
                            "purge_pending": purge_pending,
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
    roles = azure_roles(collect(engine.binding(n) for n in engine.policies))
    keyvault.request_log.clear()
    with faults.armed("fail:verify"):
        [rolled] = engine.rotate("billing-db").outcomes
    ended = []
    for _round in range(2):
        engine.rotate("billing-db")
        clock.advance(timedelta(hours=2))
        ended += [o.state for o in engine.run_once().outcomes]
    assert rolled.state is State.ROLLED_BACK and ended == [State.DONE, State.DONE]
    vault = vault_name(keyvault.vault_url)
    used: dict[str, set[str]] = {}
    for request in keyvault.request_log:
        if request.authorization:
            path = request.path.split("?")[0]
            action = PREFIX + BY_OPERATION[keyvault_operation(request.method, path)]
            used.setdefault(_scope(vault, path.split("/")[2]), set()).add(action)
    assert set(used) == {_scope(vault, "billing-db"), _scope(vault, "billing-db--pending")}
    for scope, actions in used.items():
        assert actions <= set(_role_at(roles, scope)["DataActions"]), scope
    # The rotations used most of what the roles grant; the rest serves recovering
    # a soft-deleted companion, a missing secret's soft-delete check and replays.
    granted = {(s, a) for r in roles for s in r["AssignableScopes"] for a in r["DataActions"]}
    unused = {(s.rsplit("/", 1)[1], a.removeprefix(PREFIX)) for s, a in granted if a not in used[s]}
    assert unused <= {
        ("billing-db--pending", "recover/action"),
        ("billing-db", "readMetadata/action"),
    }
