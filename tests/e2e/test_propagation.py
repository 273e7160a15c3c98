"""Propagation end to end: an AWS secret replicated to Vault, Azure Key Vault and a file.

The CLI runs as a subprocess against moto_server, the Vault emulator (in a KV
mount of the test's own) and the Key Vault emulator, through the real SDKs.
A check that fails rolls every target back; a run killed between two targets
converges on the next run; no value appears anywhere but where it is meant to be.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Rotator, client, secret_client
from tests.providers.vault.backends import Backend

OLD = "initial-shared-token-0123456789"
POLICY = """
secrets:
  - name: shared
    store: {{provider: aws-secretsmanager, secret_id: shared}}
    issuer: {{kind: random, length: 32}}
    schedule: {{every: 30d}}
    grace: 1h
    targets:
      - provider: vault-kv
        mount: {mount}
        path: replicas/shared
        key: token
      - provider: azure-keyvault
        vault_url: "{url}"
        name: shared
      - kind: file
        path: {file}
        format: env
        key: SHARED_TOKEN
{extra}"""
LATER = datetime.now(UTC) + timedelta(days=31)
# The emulator only, to keep CI time: a Vault target on OpenBao (propagated, then retired
# at grace end) is proven in process by tests/providers/test_replica_retire.py.
pytestmark = pytest.mark.parametrize("vault_server", ["emulator"], indirect=True)


@pytest.fixture
def vault_kv(vault_server: Backend) -> tuple[Any, str]:
    """The admin client of the test's Vault and a KV mount of the test's own there."""
    return vault_server.admin(), vault_server.enable_kv("kv")


@pytest.fixture
def everywhere(keyvault: Any, vault_server_cli: Rotator) -> Rotator:
    """The CLI able to reach moto_server, the Vault and the Key Vault emulator."""
    vault_cli = vault_server_cli
    vault_cli.env = {
        **vault_cli.env,
        "AZURE_CA_BUNDLE": str(keyvault.ca_path),
        "IDENTITY_ENDPOINT": keyvault.identity_endpoint,
        "IDENTITY_HEADER": keyvault.identity_header,
        "ROTATOR_AZURE_CREDENTIAL": "managed",
        "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE": "false",
    }
    return vault_cli


def _setup(cli: Rotator, vault: tuple[Any, str], keyvault: Any, extra: str = "") -> Path:
    """Seed the same value in all four places and write the policy; return the file's path."""
    root, mount = vault
    client("secretsmanager").create_secret(Name="shared", SecretString=OLD)
    root.secrets.kv.v2.create_or_update_secret(
        path="replicas/shared", secret={"token": OLD}, mount_point=mount
    )
    secret_client(keyvault).set_secret("shared", OLD)
    env_file = cli.workdir / "run" / "shared.env"
    env_file.parent.mkdir()
    env_file.write_text(f"OTHER=keep-me\nSHARED_TOKEN={OLD}\n")
    env_file.chmod(0o600)
    cli.config.write_text(
        POLICY.format(url=keyvault.vault_url, file=env_file, extra=extra, mount=mount)
    )
    return env_file


def _values(vault: tuple[Any, str], keyvault: Any, env_file: Path) -> dict[str, str]:
    """Read what each of the four places carries now."""
    sm = client("secretsmanager")
    root, mount = vault
    kv = root.secrets.kv.v2.read_secret_version(
        path="replicas/shared", mount_point=mount, raise_on_deleted_version=True
    )
    lines = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line)
    return {
        "aws": sm.get_secret_value(SecretId="shared", VersionStage="AWSCURRENT")["SecretString"],
        "vault": kv["data"]["data"]["token"],
        "azure": secret_client(keyvault).get_secret("shared").value,
        "file": lines["SHARED_TOKEN"],
    }


def _journal_bytes(cli: Rotator) -> bytes:
    db = cli.workdir / "rotator.db"
    return b"".join(p.read_bytes() for p in db.parent.glob("rotator.db*"))


@pytest.mark.e2e
def test_a_rotation_reaches_every_cloud_and_the_file(
    vault_kv: tuple[Any, str], keyvault: Any, everywhere: Rotator
) -> None:
    """One rotation puts the same new value in AWS, Vault, Key Vault and the file, nowhere else."""
    env_file = _setup(everywhere, vault_kv, keyvault)
    done = everywhere("run", "--once", "--json", now=LATER, log_level="debug")
    assert done.code == 0, done.stderr[-2000:]
    values = _values(vault_kv, keyvault, env_file)
    new = values["aws"]
    assert new != OLD and set(values.values()) == {new}
    assert "OTHER=keep-me" in env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # the canary: neither value in any output or journal byte
    for text in (OLD, new):
        assert text not in done.stdout and text not in done.stderr
        assert text.encode() not in _journal_bytes(everywhere)


@pytest.mark.e2e
def test_a_failing_check_rolls_back_every_target(
    vault_kv: tuple[Any, str], keyvault: Any, everywhere: Rotator, tmp_path: Path
) -> None:
    """A verifier refusing the new value leaves all four places carrying the old one."""
    check = tmp_path / "check-login"
    check.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\nsys.exit(1)\n")
    check.chmod(0o755)
    extra = f"    verify:\n      - kind: exec\n        command: [{json.dumps(str(check))}]\n"
    env_file = _setup(everywhere, vault_kv, keyvault, extra)
    done = everywhere("run", "--once", "--json", now=LATER)
    assert done.code == 1
    [outcome] = done.json()
    assert outcome["state"] == "rolled_back" and "check exec" in outcome["message"]
    assert set(_values(vault_kv, keyvault, env_file).values()) == {OLD}
    assert "OTHER=keep-me" in env_file.read_text()


@pytest.mark.e2e
def test_a_run_killed_between_targets_converges(
    vault_kv: tuple[Any, str], keyvault: Any, everywhere: Rotator
) -> None:
    """Killed after target 2 of 3, the next run finishes the same rotation everywhere."""
    env_file = _setup(everywhere, vault_kv, keyvault)
    killed = everywhere("run", "--once", now=LATER, fault="propagate:target2")
    assert killed.code == 137
    halfway = _values(vault_kv, keyvault, env_file)
    assert halfway["file"] == OLD and halfway["vault"] == halfway["azure"] != OLD
    done = everywhere("run", "--once", "--json", now=LATER)
    assert done.code == 0, done.stderr[-2000:]
    values = _values(vault_kv, keyvault, env_file)
    assert values["aws"] == halfway["vault"] and set(values.values()) == {values["aws"]}
    with sqlite3.connect(everywhere.workdir / "rotator.db") as conn:
        assert conn.execute("SELECT count(*) FROM rotations").fetchone()[0] == 1


@pytest.mark.e2e
def test_check_passes_everywhere_then_names_a_refusing_check(
    vault_kv: tuple[Any, str], keyvault: Any, everywhere: Rotator, tmp_path: Path
) -> None:
    """`rotator check` passes on the four places, fails on a refusing check, and changes nothing.

    The Secrets Manager store's write access stays unknown: moto's identity is
    one the IAM policy simulator cannot simulate, and what could not be
    checked is no proof, so check exits 1 for it (never "ok").
    """
    env_file = _setup(everywhere, vault_kv, keyvault)
    passed = everywhere("check", "--json")
    checks = {f["check"]: f["verdict"] for f in passed.json()}
    assert len(checks) == 6
    assert checks.pop("store write") == "unknown"
    assert set(checks.values()) == {"ok"}, passed.stdout
    assert passed.code == 1

    refuse = tmp_path / "refuse"
    refuse.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(1)\n")
    refuse.chmod(0o755)
    extra = f"    verify:\n      - kind: exec\n        command: [{json.dumps(str(refuse))}]\n"
    everywhere.config.write_text(
        POLICY.format(url=keyvault.vault_url, file=env_file, extra=extra, mount=vault_kv[1])
    )
    failed = everywhere("check", "shared", "--json")
    assert failed.code == 1
    [refused] = [f for f in failed.json() if f["verdict"] == "failed"]
    assert refused["check"].startswith("verify exec:") and "refuse" in refused["check"]
    assert set(_values(vault_kv, keyvault, env_file).values()) == {OLD}
    assert not (everywhere.workdir / "rotator.db").exists()
