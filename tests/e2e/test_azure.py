"""Azure Key Vault end to end: the CLI as a subprocess against the HTTPS emulator.

The rotator logs in with the real ManagedIdentityCredential (the emulator's
token endpoint). Crash safety at every step boundary and the secret canary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rotator.engine.faults import POINTS
from tests.e2e.conftest import Rotator, secret_client

POLICY = """
secrets:
  - name: api-token
    store: {{provider: azure-keyvault, vault_url: "{url}", name: api-token}}
    issuer: {{kind: random, length: 32}}
    schedule: {{every: 30d}}
    grace: 1h
"""
HAPPY_POINTS = [p for p in POINTS if "rollback" not in p]
AFTER_PROMOTE = ("before:revoke", "after:revoke", "revoke:revoked", "before:delete", "after:delete")


def _versions(client: Any) -> dict[str, bool]:
    return {
        p.version: bool(p.enabled) for p in client.list_properties_of_secret_versions("api-token")
    }


def _latest(client: Any) -> Any:
    return client.get_secret("api-token")


def _pending_exists(client: Any) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.get_secret("api-token--pending")
    except ResourceNotFoundError:
        return False
    return True


@pytest.mark.e2e
@pytest.mark.parametrize("point", HAPPY_POINTS)
def test_azure_kill_at_step_boundary_converges(
    keyvault: Any, azure_cli: Rotator, point: str
) -> None:
    """A run killed here is finished by the next; the old version is disabled at grace end."""
    client = secret_client(keyvault)
    old = client.set_secret("api-token", "initial-token-value-0123456789")
    azure_cli.config.write_text(POLICY.format(url=keyvault.vault_url))
    t0 = datetime.now(UTC).replace(microsecond=0)
    late = point in AFTER_PROMOTE

    first = azure_cli("rotate", "api-token", now=t0, fault=None if late else point)
    if not late:
        assert first.code == 137, first.stderr
        if point not in ("promote:moved", "after:promote"):
            assert _latest(client).value == old.value, "an unverified value became the latest"
        resumed = azure_cli("run", "--once", now=t0)
        assert resumed.code == 0, resumed.stderr
    else:
        assert first.code == 0, first.stderr

    latest = _latest(client)
    assert latest.value != old.value, "the rotation did not converge"
    assert latest.properties.tags["rotator-previous-version"] == old.properties.version
    assert not _pending_exists(client), "the companion pending secret was left behind"
    assert _versions(client) == {old.properties.version: True, latest.properties.version: True}

    at_deadline = t0 + timedelta(hours=1, seconds=1)
    if late:
        killed = azure_cli("run", "--once", now=at_deadline, fault=point)
        assert killed.code == 137, killed.stderr
    final = azure_cli("run", "--once", now=at_deadline + timedelta(seconds=1))
    assert final.code == 0, final.stderr
    assert _versions(client) == {old.properties.version: False, latest.properties.version: True}
    assert _latest(client).value == latest.value
    history = azure_cli("history", "api-token", "--json").json()
    assert [r["state"] for r in history] == ["done"]


@pytest.mark.e2e
def test_azure_canary(keyvault: Any, azure_cli: Rotator) -> None:
    """After Azure rotations at DEBUG, no old or new value is in any output or the journal."""
    client = secret_client(keyvault)
    client.set_secret("api-token", "CanaryAzureInitialValue" * 2)
    azure_cli.config.write_text(POLICY.format(url=keyvault.vault_url))
    runs = [
        azure_cli("rotate", "api-token", log_level="debug"),
        azure_cli("rotate", "api-token", "--emergency", log_level="debug"),
        azure_cli("status", "--json", log_level="debug"),
        azure_cli("history", "api-token", "--json", log_level="debug"),
    ]
    assert [r.code for r in runs] == [0, 0, 0, 0], [r.stderr[-2000:] for r in runs]
    logs = "\n".join(r.stdout + r.stderr for r in runs)
    values = {
        client.get_secret("api-token", p.version).value
        for p in client.list_properties_of_secret_versions("api-token")
        if p.enabled
    } | {"CanaryAzureInitialValue" * 2}
    journal = b"".join(p.read_bytes() for p in azure_cli.workdir.glob("rotator.db*"))
    assert len(values) >= 2
    for value in values:
        assert value not in logs, "a secret value reached a log line or command output"
        assert value.encode() not in journal, "a secret value reached the journal"
