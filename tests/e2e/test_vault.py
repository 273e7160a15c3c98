"""Vault end to end: the CLI as a subprocess against the Vault emulator and OpenBao (and moto).

Each test runs on a fresh emulator and on a real server (the session's
OpenBao, or the Vault ``VAULT_ADDR`` names), in a KV v2 mount and an AppRole
mount of its own: each Vault issuer and the vault-kv store rotated through
grace to revoke, crash safety at the step boundaries for an AppRole
secret-id kept in KV v2, the secret canary, and AWS and Vault policies side
by side in one run. rotator's clock is pinned (``tests/harness.py``), so a
grace window is crossed without waiting; Vault's own clock is the wall clock.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import hvac
import pytest

from rotator.engine.faults import POINTS
from tests.e2e.conftest import Rotator, client
from tests.providers.vault.backends import REAL_VAULT, Backend

ROLE = "ci-app"
POLICY = """
secrets:
  - name: ci-approle
    store: {{provider: vault-kv, mount: {kv}, path: ci/approle, key: credentials}}
    issuer: {{kind: vault-approle-secret-id, mount: {approle}, role: ci-app}}
    schedule: {{every: 30d}}
    grace: 1h
"""
AFTER_PROMOTE = ("revoke", "delete", "revoke:revoked")
HAPPY_POINTS = [p for p in POINTS if "rollback" not in p]
#: rotator's fault points are its own, the same on any server: on OpenBao one per phase
#: (minted, staged, promoted, revoked) proves the real server's side; the emulator runs all.
REAL_POINTS = ["mint:issued", "store:written", "promote:moved", "revoke:revoked"]
CRASH_CASES = [("emulator", p) for p in HAPPY_POINTS] + [(REAL_VAULT, p) for p in REAL_POINTS]


@dataclass
class CiVault:
    """The test's KV and AppRole mounts on a Vault, with role ``ci-app`` and its secret."""

    server: Backend
    kv: str
    approle: str

    @property
    def root(self) -> Any:
        """A client holding the admin token."""
        return self.server.admin()

    def policies(self, extra: str = "", **names: str) -> str:
        """Return the policy file: ``ci-approle`` then ``extra``, with the mounts filled in."""
        return (POLICY + extra).format(kv=self.kv, approle=self.approle, **names)

    def accessors(self) -> set[str]:
        """Return the accessors of the role's secret-ids."""
        try:
            listed = self.root.auth.approle.list_secret_id_accessors(
                role_name=ROLE, mount_point=self.approle
            )
        except hvac.exceptions.InvalidPath:
            return set()
        return set(listed["data"]["keys"])

    def latest(self, path: str = "ci/approle") -> dict[str, Any]:
        """Return the data of the latest version at ``path``."""
        read = self.root.secrets.kv.v2.read_secret_version(
            path=path, mount_point=self.kv, raise_on_deleted_version=True
        )
        data: dict[str, Any] = read["data"]["data"]
        return data

    def logs_in(self, creds: dict[str, str]) -> bool:
        """Tell whether a fresh client logs in with the role-id and secret-id pair."""
        login = self.server.client(token="")
        try:
            login.auth.approle.login(
                role_id=creds["role_id"], secret_id=creds["secret_id"], mount_point=self.approle
            )
        except hvac.exceptions.VaultError:
            return False
        alive = bool(login.is_authenticated())
        login.auth.token.revoke_self()
        return alive

    def token_alive(self, token: str) -> bool:
        """Tell whether ``token`` can still look itself up."""
        try:
            self.server.client(token=token).auth.token.lookup_self()
        except hvac.exceptions.VaultError:
            return False
        return True


@pytest.fixture
def ci(vault_server: Backend) -> CiVault:
    """The test's KV and AppRole mounts, and role ``ci-app`` (no secret-id yet)."""
    kv, approle = vault_server.enable_kv("secret"), vault_server.enable_approle()
    root = vault_server.admin()
    policy = vault_server.policy("ci-app", f'path "{kv}/data/ci/*" {{ capabilities = ["read"] }}')
    root.auth.approle.create_or_update_approle(
        role_name=ROLE, token_policies=[policy], mount_point=approle
    )
    return CiVault(vault_server, kv, approle)


def _seed(ci: CiVault) -> dict[str, str]:
    """Give ``ci-app`` its first secret-id and store the pair; return it."""
    approle = ci.root.auth.approle
    role_id = approle.read_role_id(role_name=ROLE, mount_point=ci.approle)["data"]["role_id"]
    secret_id = approle.generate_secret_id(role_name=ROLE, mount_point=ci.approle)["data"][
        "secret_id"
    ]
    creds = {"role_id": role_id, "secret_id": secret_id}
    ci.root.secrets.kv.v2.create_or_update_secret(
        path="ci/approle", secret={"credentials": creds, "owner": "ci"}, mount_point=ci.kv
    )
    return creds


def _assert_invariants(ci: CiVault) -> dict[str, str]:
    latest = ci.latest()
    assert latest["owner"] == "ci", "other fields of the secret were lost"
    assert ci.logs_in(latest["credentials"]), "the latest version does not log in"
    assert len(ci.accessors()) <= 2, "an orphaned secret-id was left behind"
    creds: dict[str, str] = latest["credentials"]
    return creds


@pytest.mark.e2e
@pytest.mark.parametrize(("vault_server", "point"), CRASH_CASES, indirect=["vault_server"])
def test_vault_kill_at_step_boundary_converges(
    ci: CiVault, vault_server_cli: Rotator, point: str
) -> None:
    """A run killed here is finished by the next: one new secret-id, old destroyed at grace end."""
    cli = vault_server_cli
    cli.config.write_text(ci.policies())
    old = _seed(ci)
    t0 = datetime.now(UTC).replace(microsecond=0)
    late = any(point.endswith(s) or point == s for s in AFTER_PROMOTE)

    first = cli("rotate", "ci-approle", now=t0, fault=None if late else point)
    if not late:
        assert first.code == 137, first.stderr
        current = _assert_invariants(ci)
        # Until promote, consumers reading the latest version still see the old secret-id.
        if point not in ("after:promote", "promote:moved"):
            assert current == old, "an unverified secret-id became the latest version"
        resumed = cli("run", "--once", now=t0)
        assert resumed.code == 0, resumed.stderr
    else:
        assert first.code == 0, first.stderr

    current = _assert_invariants(ci)
    assert current != old, "the rotation did not converge"
    assert len(ci.accessors()) == 2
    assert ci.logs_in(old), "old secret-id destroyed before its grace ended"

    early = cli("run", "--once", now=t0 + timedelta(hours=1) - timedelta(seconds=1))
    assert early.code == 0, early.stderr
    assert ci.logs_in(old), "old secret-id destroyed before its grace ended"

    at_deadline = t0 + timedelta(hours=1, seconds=1)
    if late:
        killed = cli("run", "--once", now=at_deadline, fault=point)
        assert killed.code == 137, killed.stderr
    final = cli("run", "--once", now=at_deadline + timedelta(seconds=1))
    assert final.code == 0, final.stderr
    assert _assert_invariants(ci) == current
    assert not ci.logs_in(old), "old secret-id still works after its grace"
    assert len(ci.accessors()) == 1
    history = cli("history", "ci-approle", "--json").json()
    assert [r["state"] for r in history] == ["done"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        ci.root.secrets.kv.v2.list_secrets(path=".rotator-pending/ci/approle", mount_point=ci.kv)


EVERY_KIND = """
  - name: ci-db
    store: {{provider: vault-kv, mount: {kv}, path: ci/db, key: password}}
    issuer: {{kind: random, length: 32}}
    schedule: {{every: 30d}}
    grace: 1h
  - name: ci-token
    store: {{provider: vault-kv, mount: {kv}, path: ci/token, key: token}}
    issuer: {{kind: vault-token, policies: [{reader}]}}
    schedule: {{every: 30d}}
    grace: 1h
"""


@pytest.mark.e2e
def test_each_vault_issuer_and_the_kv_store_rotate_through_grace(
    ci: CiVault, vault_server_cli: Rotator
) -> None:
    """A random password, a secret-id and a token, each in KV v2: rotated, then revoked after grace.

    The old secret-id and token keep working through the grace window and stop
    at its end; the password's old version is soft-deleted, still there to undelete.
    """
    cli = vault_server_cli
    reader = ci.server.policy(
        "reader", f'path "{ci.kv}/data/reports/*" {{ capabilities = ["read"] }}'
    )
    old_pair = _seed(ci)
    kv = ci.root.secrets.kv.v2
    old_password = "initial-ci-password-0123456789"
    kv.create_or_update_secret(path="ci/db", secret={"password": old_password}, mount_point=ci.kv)
    old_token = ci.root.auth.token.create_orphan(policies=[reader], period="24h")["auth"]
    ci.server.accessors.append(old_token["accessor"])
    kv.create_or_update_secret(
        path="ci/token", secret={"token": old_token["client_token"]}, mount_point=ci.kv
    )
    cli.config.write_text(ci.policies(EVERY_KIND, reader=reader))
    t0 = datetime.now(UTC).replace(microsecond=0)

    rotated = [cli("rotate", name, now=t0) for name in ("ci-db", "ci-approle", "ci-token")]
    assert [r.code for r in rotated] == [0, 0, 0], [r.stderr[-2000:] for r in rotated]
    status = {s["secret"]: s["state"] for s in cli("status", "--json", now=t0).json()}
    assert status == {"ci-db": "grace", "ci-approle": "grace", "ci-token": "grace"}
    new_pair, new_token = ci.latest()["credentials"], ci.latest("ci/token")["token"]
    assert ci.latest("ci/db")["password"] not in (old_password, "")
    assert new_pair != old_pair and new_token != old_token["client_token"]
    assert ci.logs_in(new_pair) and ci.logs_in(old_pair), "grace: both secret-ids log in"
    assert ci.token_alive(new_token) and ci.token_alive(old_token["client_token"])
    minted = ci.root.auth.token.lookup(new_token)["data"]
    ci.server.accessors.append(minted["accessor"])
    assert reader in minted["policies"]

    done = cli("run", "--once", "--json", now=t0 + timedelta(hours=1, seconds=1))
    assert done.code == 0, done.stderr[-2000:]
    states = {s["secret"]: s["state"] for s in cli("status", "--json", now=t0).json()}
    assert states == {"ci-db": "done", "ci-approle": "done", "ci-token": "done"}
    assert not ci.logs_in(old_pair), "the old secret-id outlived its grace"
    assert not ci.token_alive(old_token["client_token"]), "the old token outlived its grace"
    assert ci.logs_in(new_pair) and ci.token_alive(new_token)
    versions = kv.read_secret_metadata(path="ci/db", mount_point=ci.kv)["data"]["versions"]
    assert versions["1"]["deletion_time"] != "" and versions["1"]["destroyed"] is False
    assert versions["2"]["deletion_time"] == ""


@pytest.mark.e2e
def test_vault_canary(ci: CiVault, vault_server_cli: Rotator) -> None:
    """After Vault rotations at DEBUG, no old or new value is in any output or the journal."""
    cli = vault_server_cli
    old = _seed(ci)
    ci.root.secrets.kv.v2.create_or_update_secret(
        path="ci/db", secret={"password": "CanaryVaultPassword" * 2}, mount_point=ci.kv
    )
    cli.config.write_text(
        ci.policies(
            """
  - name: ci-db
    store: {{provider: vault-kv, mount: {kv}, path: ci/db, key: password}}
    schedule: {{every: 30d}}
    grace: 0s
"""
        )
    )
    runs = [
        cli("rotate", "ci-approle", "--emergency", log_level="debug"),
        cli("rotate", "ci-db", log_level="debug"),
        cli("status", "--json", log_level="debug"),
        cli("history", "ci-approle", "--json", log_level="debug"),
    ]
    assert [r.code for r in runs] == [0, 0, 0, 0], [r.stderr[-2000:] for r in runs]
    logs = "\n".join(r.stdout + r.stderr for r in runs)
    values = {old["secret_id"], "CanaryVaultPassword" * 2}
    values.add(ci.latest()["credentials"]["secret_id"])
    values.add(ci.latest("ci/db")["password"])
    journal = b"".join(p.read_bytes() for p in cli.workdir.glob("rotator.db*"))
    assert len(values) == 4
    for value in values:
        assert value not in logs, "a secret value reached a log line or command output"
        assert value.encode() not in journal, "a secret value reached the journal"
    assert ci.server.root_token not in logs, "the admin token reached a log line"


@pytest.mark.e2e
def test_aws_and_vault_side_by_side(ci: CiVault, vault_server_cli: Rotator) -> None:
    """One run --once rotates an AWS secret and a Vault secret."""
    cli = vault_server_cli
    _seed(ci)
    client("secretsmanager").create_secret(Name="aws-db", SecretString="initial-aws-value")
    cli.config.write_text(
        ci.policies(
            """
  - name: aws-db
    store: {{provider: aws-secretsmanager, secret_id: aws-db}}
    schedule: {{every: 30d}}
    grace: 1h
"""
        )
    )
    result = cli("run", "--once", "--json", now=datetime.now(UTC) + timedelta(days=31))
    assert result.code == 0, result.stderr
    assert {o["secret"]: o["state"] for o in result.json()} == {
        "aws-db": "grace",
        "ci-approle": "grace",
    }
    aws_value = client("secretsmanager").get_secret_value(
        SecretId="aws-db", VersionStage="AWSCURRENT"
    )["SecretString"]
    assert aws_value != "initial-aws-value"
    with sqlite3.connect(cli.workdir / "rotator.db") as db:
        assert db.execute("SELECT count(DISTINCT secret) FROM rotations").fetchone() == (2,)
    assert json.dumps(ci.latest())  # the Vault secret still reads whole
