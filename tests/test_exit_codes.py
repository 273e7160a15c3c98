"""Exit codes say what happened: a pipeline gating on a command stops where it should."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rotator.cli.main import cli
from rotator.sandbox.vault import VaultEmulator
from tests.conftest import restored_logging

#: One secret whose store can be read, one on a KV mount that does not exist.
POLICIES = """\
secrets:
  - name: app/readable
    store: {provider: vault-kv, path: app/readable, key: password}
    schedule: {every: 30d}
    grace: 1h
  - name: app/unreadable
    store: {provider: vault-kv, mount: no-such-mount, path: app/db, key: password}
    schedule: {every: 30d}
    grace: 1h
"""
#: The same files without the unreadable secret.
READABLE_ONLY = POLICIES.split("  - name: app/unreadable", maxsplit=1)[0]


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[VaultEmulator]:
    """A Vault emulator the adapters are pointed at, holding the readable secret."""
    with restored_logging(), VaultEmulator() as emulator:
        for name in ("VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_SKIP_VERIFY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("VAULT_ADDR", emulator.url)
        monkeypatch.setenv("VAULT_TOKEN", emulator.root_token)
        import hvac

        hvac.Client(
            url=emulator.url, token=emulator.root_token
        ).secrets.kv.v2.create_or_update_secret(
            path="app/readable", secret={"password": "a-readable-password-01"}
        )
        yield emulator


def _plan(tmp_path: Path, policies: str, *extra: str) -> tuple[int, str]:
    config = tmp_path / "policies"
    config.mkdir(exist_ok=True)
    (config / "app.yaml").write_text(policies)
    state = f"sqlite:///{tmp_path / 'journal.db'}"
    result = CliRunner().invoke(
        cli, ["plan", *extra, "--config", str(config), "--state", state, "--log-format", "json"]
    )
    return result.exit_code, result.stdout


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_plan_exits_1_when_a_secret_could_not_be_planned(
    vault: VaultEmulator, tmp_path: Path, as_json: bool
) -> None:
    """A store that cannot be read is a row that "could not be planned", and exit 1, not 0."""
    code, stdout = _plan(tmp_path, POLICIES, *(["--json"] if as_json else []))
    assert code == 1, stdout
    if as_json:
        actions = {row["secret"]: row["action"] for row in json.loads(stdout)}
        assert actions["app/unreadable"] == "error"
        assert actions["app/readable"] != "error"
    else:
        assert "1 could not be planned" in stdout


def test_plan_exits_0_when_every_secret_was_planned(vault: VaultEmulator, tmp_path: Path) -> None:
    """The same files without the unreadable secret: exit 0."""
    code, stdout = _plan(tmp_path, READABLE_ONLY)
    assert code == 0, stdout


def _check(tmp_path: Path, policies: str) -> tuple[int, str]:
    config = tmp_path / "policies"
    config.mkdir(exist_ok=True)
    (config / "app.yaml").write_text(policies)
    state = f"sqlite:///{tmp_path / 'journal.db'}"
    result = CliRunner().invoke(
        cli, ["check", "--config", str(config), "--state", state, "--log-format", "json"]
    )
    return result.exit_code, result.stdout


def test_check_says_unknown_and_exits_1_for_what_it_could_not_check(
    vault: VaultEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token Vault refuses sys/capabilities-self: "store write" is unknown, never ok; exit 1."""
    import hvac

    root = hvac.Client(url=vault.url, token=vault.root_token)
    root.sys.create_or_update_policy(
        name="reader", policy='path "secret/*" { capabilities = ["read", "update", "create"] }'
    )
    token = root.auth.token.create(policies=["reader"], no_default_policy=True)["auth"]
    monkeypatch.setenv("VAULT_TOKEN", token["client_token"])
    code, stdout = _check(tmp_path, READABLE_ONLY)
    assert code == 1, stdout
    assert "unknown" in stdout and "could not be checked" in stdout
    assert "1 could not be checked" in stdout


def test_check_exits_0_when_everything_was_checked(vault: VaultEmulator, tmp_path: Path) -> None:
    """The root token may ask for its capabilities: every check is ok or skipped; exit 0."""
    code, stdout = _check(tmp_path, READABLE_ONLY)
    assert code == 0, stdout
    assert "0 failed, 0 could not be checked" in stdout


def test_rotate_during_grace_prints_one_row_under_its_own_title(
    vault: VaultEmulator, tmp_path: Path
) -> None:
    """A second `rotate NAME` in grace: one failed row titled by the command, counts by result."""
    config = tmp_path / "policies"
    config.mkdir()
    (config / "app.yaml").write_text(READABLE_ONLY)
    args = ["--config", str(config), "--state", f"sqlite:///{tmp_path / 'journal.db'}"]
    with restored_logging():
        first = CliRunner().invoke(cli, ["rotate", "app/readable", *args, "--log-format", "json"])
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(cli, ["rotate", "app/readable", *args, "--log-format", "json"])
    assert again.exit_code == 1
    lines = again.stdout.splitlines()
    assert lines[0].strip() == "rotate app/readable"
    assert sum("app/readable" in line for line in lines[1:]) == 1
    assert "is in grace until" in again.stdout
    assert lines[-1] == "1 handled: 1 failed"
