"""``VaultKvStore.check``: the token's capabilities on the store's paths, asked without a write."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hvac.exceptions import InvalidPath

from providers.vault.kv import SAMPLE_ROTATION_ID, VaultKvConfig, VaultKvStore, lacking
from rotator.adapters.values import Runtime, Unchecked
from rotator.errors import PermissionDeniedError, TransientError
from tests.providers.vault.backends import (
    Backend,
    clean_vault_env,
    kv_policy,
    point_at,
    runtime_for,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

PATH = "apps/payments/db"
OLD = "old-password-0000000001"
STAGING = f".rotator-pending/{PATH}/<rotation-id>"


@dataclass
class CheckSetup:
    """A KV v2 mount holding the secret, and the environment to point the store at it."""

    backend: Backend
    mount: str
    runtime: Runtime
    monkeypatch: pytest.MonkeyPatch

    def use(self, *policies: str, **extra: Any) -> str:
        """Point the environment at a new token holding ``policies`` (plus default); return it."""
        token = self.backend.token(*policies, **extra)
        point_at(self.monkeypatch, self.backend, token)
        return token

    def store(self, **extra: Any) -> VaultKvStore:
        """Build the store for ``mount/PATH`` (a fresh runtime, so the new token is used)."""
        self.runtime = runtime_for(self.backend)
        config = VaultKvConfig(mount=self.mount, path=PATH, key="password", **extra)
        return VaultKvStore(config, self.runtime, "payments-db")

    def state(self) -> tuple[dict[str, Any], list[str]]:
        """Return the path's metadata and the staging keys, as admin reads them."""
        kv = self.backend.admin().secrets.kv.v2
        meta = dict(kv.read_secret_metadata(path=PATH, mount_point=self.mount)["data"])
        try:
            listed = kv.list_secrets(path=".rotator-pending", mount_point=self.mount)
        except InvalidPath:
            return meta, []
        return meta, list(listed["data"]["keys"])


@pytest.fixture
def setup(vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CheckSetup:
    """A KV mount seeded with OLD at PATH; no token chosen yet."""
    clean_vault_env(monkeypatch, tmp_path)
    mount = vault_backend.enable_kv("kv")
    vault_backend.admin().secrets.kv.v2.create_or_update_secret(
        path=PATH, secret={"password": OLD}, mount_point=mount
    )
    return CheckSetup(vault_backend, mount, runtime_for(vault_backend), monkeypatch)


def test_the_documented_policy_passes_and_nothing_is_written(setup: CheckSetup) -> None:
    """The docs' policy passes; the answer names every path; nothing changes."""
    setup.use(setup.backend.policy("store", kv_policy(setup.mount, PATH)))
    before = setup.state()
    answer = setup.store().check()
    m = setup.mount
    assert answer == (
        f"sys/capabilities-self: the token may create, read, update on {m}/data/{PATH}; "
        f"read, update on {m}/metadata/{PATH}; update on {m}/delete/{PATH}; "
        f"read, update on {m}/data/{STAGING}; "
        f"create, read, update, delete on {m}/metadata/{STAGING}"
    )
    assert setup.state() == before
    assert OLD not in answer


def test_destroy_on_retire_asks_for_the_destroy_path(setup: CheckSetup) -> None:
    """With destroy_on_retire the check wants update on destroy/, which the plain policy lacks."""
    setup.use(setup.backend.policy("store", kv_policy(setup.mount, PATH)))
    with pytest.raises(PermissionDeniedError) as caught:
        setup.store(destroy_on_retire=True).check()
    assert str(caught.value).startswith(
        "vault-kv:update sys/capabilities-self: the Vault token lacks "
        f"update on {setup.mount}/destroy/{PATH} (asked"
    )
    setup.use(setup.backend.policy("full", kv_policy(setup.mount, PATH, destroy_on_retire=True)))
    assert f"update on {setup.mount}/destroy/{PATH}" in setup.store(destroy_on_retire=True).check()


def test_a_missing_capability_is_named_with_its_path(setup: CheckSetup) -> None:
    """A policy short of two capabilities fails, naming each with its path, never the token."""
    m = setup.mount
    policy = kv_policy(m, PATH)
    policy = policy.replace(
        f'path "{m}/metadata/{PATH}" {{ capabilities = ["read", "update"] }}',
        f'path "{m}/metadata/{PATH}" {{ capabilities = ["read"] }}',
    ).replace('["create", "read", "update", "delete"]', '["create", "read", "update"]')
    token = setup.use(setup.backend.policy("short", policy))
    with pytest.raises(PermissionDeniedError) as caught:
        setup.store().check()
    message = str(caught.value)
    assert (
        f"lacks update on {m}/metadata/{PATH}; delete on {m}/metadata/{STAGING} (asked" in message
    )
    assert token not in message
    assert SAMPLE_ROTATION_ID not in message


def test_a_read_only_token_lacks_every_write(setup: CheckSetup) -> None:
    """A token that may only read the secret lacks the writes, and everything on staging paths."""
    m = setup.mount
    setup.use(
        setup.backend.policy("reader", f'path "{m}/data/{PATH}" {{ capabilities = ["read"] }}\n')
    )
    with pytest.raises(PermissionDeniedError) as caught:
        setup.store().check()
    assert str(caught.value).startswith(
        "vault-kv:update sys/capabilities-self: the Vault token lacks "
        f"create, update on {m}/data/{PATH}; read, update on {m}/metadata/{PATH}; "
        f"update on {m}/delete/{PATH}; read, update on {m}/data/{STAGING}; "
        f"create, read, update, delete on {m}/metadata/{STAGING} (asked"
    )


def test_a_deny_rule_wins_over_the_policy(setup: CheckSetup) -> None:
    """A deny on the same staging glob, in a second policy, overrides the documented grant."""
    m = setup.mount
    store_policy = setup.backend.policy("store", kv_policy(m, PATH))
    block = setup.backend.policy(
        "block", f'path "{m}/metadata/.rotator-pending/{PATH}/*" {{ capabilities = ["deny"] }}\n'
    )
    setup.use(store_policy, block)
    with pytest.raises(PermissionDeniedError) as caught:
        setup.store().check()
    assert f"lacks create, read, update, delete on {m}/metadata/{STAGING} (asked" in str(
        caught.value
    )


def test_a_separate_staging_mount_is_checked(setup: CheckSetup) -> None:
    """With staging_mount the staging paths are asked about in that mount, not in the secret's."""
    m = setup.mount
    staging = setup.backend.enable_kv("staging")
    setup.use(setup.backend.policy("store", kv_policy(m, PATH)))
    with pytest.raises(PermissionDeniedError) as caught:
        setup.store(staging_mount=staging).check()
    assert str(caught.value).startswith(
        "vault-kv:update sys/capabilities-self: the Vault token lacks "
        f"read, update on {staging}/data/{STAGING}; "
        f"create, read, update, delete on {staging}/metadata/{STAGING} (asked"
    )
    setup.use(setup.backend.policy("split", kv_policy(m, PATH, staging_mount=staging)))
    assert f"on {staging}/metadata/{STAGING}" in setup.store(staging_mount=staging).check()


def test_a_token_refused_capabilities_self_cannot_be_checked(setup: CheckSetup) -> None:
    """Without the default policy Vault refuses sys/capabilities-self: said, not raised."""
    setup.use(setup.backend.policy("store", kv_policy(setup.mount, PATH)), no_default_policy=True)
    said = setup.store().check()
    assert isinstance(said, Unchecked), "reported as unknown by rotator check, never ok"
    assert said.startswith(
        "write access could not be checked: Vault refused sys/capabilities-self to the token"
    )


def test_the_request_is_reported_by_its_kind(setup: CheckSetup) -> None:
    """The check is one request, reported as sys.capabilities_self (never a path)."""
    setup.use(setup.backend.policy("store", kv_policy(setup.mount, PATH)))
    store = setup.store()
    calls: list[tuple[str, str, str]] = []
    store.runtime.on_request = lambda *call: calls.append(call)
    store.check()
    assert calls == [
        ("vault", "token.lookup_self", "ok"),
        ("vault", "sys.capabilities_self", "ok"),
    ]


def test_a_root_token_may_write_everything(setup: CheckSetup) -> None:
    """Vault answers ["root"] for a root token on every path: the check passes."""
    admin = setup.backend.admin()
    if "root" not in admin.auth.token.lookup_self()["data"]["policies"]:
        pytest.skip("the VAULT_TOKEN given to the tests is not a root token")
    point_at(setup.monkeypatch, setup.backend, setup.backend.root_token)
    assert setup.store().check() == (
        "sys/capabilities-self: the token is a root token; it may write every path"
    )


@pytest.fixture
def emulated(
    emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> CheckSetup:
    """The emulator only (to inject faults), with a KV mount and the docs' policy in use."""
    clean_vault_env(monkeypatch, tmp_path)
    mount = emulator_backend.enable_kv("kv")
    setup = CheckSetup(emulator_backend, mount, runtime_for(emulator_backend), monkeypatch)
    setup.use(emulator_backend.policy("store", kv_policy(mount, PATH)))
    return setup


def test_an_unavailable_vault_is_transient_not_unchecked(emulated: CheckSetup) -> None:
    """A 503 from sys/capabilities-self is raised as TransientError, not passed off as unchecked."""
    store = emulated.store()
    store.runtime.on_request = lambda *call: None
    emulated.backend.emulator.inject_fault("/v1/sys/capabilities-self", status=503)
    with pytest.raises(TransientError) as caught:
        store.check()
    assert "sys/capabilities-self" in str(caught.value)


@pytest.mark.parametrize(
    ("granted", "needed", "missing"),
    [
        (["root"], ("create", "read"), []),
        (["deny"], ("read", "update"), ["read", "update"]),
        (["list", "read"], ("create", "read", "update"), ["create", "update"]),
        (["create", "delete", "read", "update"], ("create", "read", "update", "delete"), []),
        (["sudo"], ("update",), ["update"]),
    ],
)
def test_lacking(granted: list[str], needed: tuple[str, ...], missing: list[str]) -> None:
    """root grants everything, deny nothing, and sudo stands for no other capability."""
    assert lacking(granted, needed) == missing
