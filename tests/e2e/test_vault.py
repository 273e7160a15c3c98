"""Vault end to end: the CLI as a subprocess against the Vault emulator (and moto_server).

Crash safety at every step boundary for an AppRole secret-id kept in KV v2,
the secret canary, and AWS and Vault policies side by side in one run.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import hvac
import pytest

from rotator.engine.faults import POINTS
from tests.e2e.conftest import Rotator, client, hvac_client

ROLE = "ci-app"
POLICY = """
secrets:
  - name: ci-approle
    store: {provider: vault-kv, path: ci/approle, key: credentials}
    issuer: {kind: vault-approle-secret-id, role: ci-app}
    schedule: {every: 30d}
    grace: 1h
"""
AFTER_PROMOTE = ("revoke", "delete", "revoke:revoked")
HAPPY_POINTS = [p for p in POINTS if "rollback" not in p]


def _seed(vault: Any) -> dict[str, str]:
    root = hvac_client(vault)
    root.sys.create_or_update_policy(
        name=ROLE, policy='path "secret/data/ci/*" { capabilities = ["read"] }'
    )
    root.auth.approle.create_or_update_approle(role_name=ROLE, token_policies=[ROLE])
    role_id = root.auth.approle.read_role_id(role_name=ROLE)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role_name=ROLE)["data"]["secret_id"]
    creds = {"role_id": role_id, "secret_id": secret_id}
    root.secrets.kv.v2.create_or_update_secret(
        path="ci/approle", secret={"credentials": creds, "owner": "ci"}
    )
    return creds


def _accessors(vault: Any) -> set[str]:
    try:
        listed = hvac_client(vault).auth.approle.list_secret_id_accessors(role_name=ROLE)
    except hvac.exceptions.InvalidPath:
        return set()
    return set(listed["data"]["keys"])


def _latest(vault: Any) -> dict[str, Any]:
    read = hvac_client(vault).secrets.kv.v2.read_secret_version(
        path="ci/approle", raise_on_deleted_version=True
    )
    data: dict[str, Any] = read["data"]["data"]
    return data


def _logs_in(vault: Any, creds: dict[str, str]) -> bool:
    login = hvac.Client(url=vault.url)
    try:
        login.auth.approle.login(role_id=creds["role_id"], secret_id=creds["secret_id"])
    except hvac.exceptions.VaultError:
        return False
    return bool(login.is_authenticated())


def _assert_invariants(vault: Any) -> dict[str, str]:
    latest = _latest(vault)
    assert latest["owner"] == "ci", "other fields of the secret were lost"
    assert _logs_in(vault, latest["credentials"]), "the latest version does not log in"
    assert len(_accessors(vault)) <= 2, "an orphaned secret-id was left behind"
    creds: dict[str, str] = latest["credentials"]
    return creds


@pytest.mark.e2e
@pytest.mark.parametrize("point", HAPPY_POINTS)
def test_vault_kill_at_step_boundary_converges(vault: Any, vault_cli: Rotator, point: str) -> None:
    """A run killed here is finished by the next: one new secret-id, old destroyed at grace end."""
    vault_cli.config.write_text(POLICY)
    old = _seed(vault)
    t0 = datetime.now(UTC).replace(microsecond=0)
    late = any(point.endswith(s) or point == s for s in AFTER_PROMOTE)

    first = vault_cli("rotate", "ci-approle", now=t0, fault=None if late else point)
    if not late:
        assert first.code == 137, first.stderr
        current = _assert_invariants(vault)
        # Until promote, consumers reading the latest version still see the old secret-id.
        if point not in ("after:promote", "promote:moved"):
            assert current == old, "an unverified secret-id became the latest version"
        resumed = vault_cli("run", "--once", now=t0)
        assert resumed.code == 0, resumed.stderr
    else:
        assert first.code == 0, first.stderr

    current = _assert_invariants(vault)
    assert current != old, "the rotation did not converge"
    assert len(_accessors(vault)) == 2
    assert _logs_in(vault, old), "old secret-id destroyed before its grace ended"

    early = vault_cli("run", "--once", now=t0 + timedelta(hours=1) - timedelta(seconds=1))
    assert early.code == 0, early.stderr
    assert _logs_in(vault, old), "old secret-id destroyed before its grace ended"

    at_deadline = t0 + timedelta(hours=1, seconds=1)
    if late:
        killed = vault_cli("run", "--once", now=at_deadline, fault=point)
        assert killed.code == 137, killed.stderr
    final = vault_cli("run", "--once", now=at_deadline + timedelta(seconds=1))
    assert final.code == 0, final.stderr
    assert _assert_invariants(vault) == current
    assert not _logs_in(vault, old), "old secret-id still works after its grace"
    assert len(_accessors(vault)) == 1
    history = vault_cli("history", "ci-approle", "--json").json()
    assert [r["state"] for r in history] == ["done"]
    staging = hvac_client(vault).secrets.kv.v2
    with pytest.raises(hvac.exceptions.InvalidPath):
        staging.list_secrets(path=".rotator-pending/ci/approle")


@pytest.mark.e2e
def test_vault_canary(vault: Any, vault_cli: Rotator) -> None:
    """After Vault rotations at DEBUG, no old or new value is in any output or the journal."""
    old = _seed(vault)
    hvac_client(vault).secrets.kv.v2.create_or_update_secret(
        path="ci/db", secret={"password": "CanaryVaultPassword" * 2}
    )
    vault_cli.config.write_text(
        POLICY
        + """
  - name: ci-db
    store: {provider: vault-kv, path: ci/db, key: password}
    schedule: {every: 30d}
    grace: 0s
"""
    )
    runs = [
        vault_cli("rotate", "ci-approle", "--emergency", log_level="debug"),
        vault_cli("rotate", "ci-db", log_level="debug"),
        vault_cli("status", "--json", log_level="debug"),
        vault_cli("history", "ci-approle", "--json", log_level="debug"),
    ]
    assert [r.code for r in runs] == [0, 0, 0, 0], [r.stderr[-2000:] for r in runs]
    logs = "\n".join(r.stdout + r.stderr for r in runs)
    kv = hvac_client(vault).secrets.kv.v2
    values = {old["secret_id"], "CanaryVaultPassword" * 2}
    values.add(_latest(vault)["credentials"]["secret_id"])
    values.add(
        kv.read_secret_version(path="ci/db", raise_on_deleted_version=True)["data"]["data"][
            "password"
        ]
    )
    journal = b"".join(p.read_bytes() for p in vault_cli.workdir.glob("rotator.db*"))
    assert len(values) == 4
    for value in values:
        assert value not in logs, "a secret value reached a log line or command output"
        assert value.encode() not in journal, "a secret value reached the journal"


@pytest.mark.e2e
def test_aws_and_vault_side_by_side(vault: Any, vault_cli: Rotator) -> None:
    """One run --once rotates an AWS secret and a Vault secret."""
    _seed(vault)
    client("secretsmanager").create_secret(Name="aws-db", SecretString="initial-aws-value")
    vault_cli.config.write_text(
        POLICY
        + """
  - name: aws-db
    store: {provider: aws-secretsmanager, secret_id: aws-db}
    schedule: {every: 30d}
    grace: 1h
"""
    )
    result = vault_cli("run", "--once", "--json", now=datetime.now(UTC) + timedelta(days=31))
    assert result.code == 0, result.stderr
    assert {o["secret"]: o["state"] for o in result.json()} == {
        "aws-db": "grace",
        "ci-approle": "grace",
    }
    aws_value = client("secretsmanager").get_secret_value(
        SecretId="aws-db", VersionStage="AWSCURRENT"
    )["SecretString"]
    assert aws_value != "initial-aws-value"
    with sqlite3.connect(vault_cli.workdir / "rotator.db") as db:
        assert db.execute("SELECT count(DISTINCT secret) FROM rotations").fetchone() == (2,)
    assert json.dumps(_latest(vault))  # the Vault secret still reads whole
