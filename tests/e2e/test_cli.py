"""The command line end to end: a subprocess against moto_server, AWS_ENDPOINT_URL set."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import Rotator, client

POLICIES = """
defaults:
  schedule: {every: 30d}
  grace: 1h

secrets:
  - name: app/db
    store: {provider: aws-secretsmanager, secret_id: app/db, field: password}
    issuer: {kind: random, length: 24}
  - name: partner-key
    store: {provider: aws-secretsmanager, secret_id: partner-key}
    issuer: {kind: aws-apigateway-api-key, usage_plans: ["PLAN"], delete_after: 1d}
  - name: later
    store: {provider: aws-secretsmanager, secret_id: later}
    schedule: {every: 90d}
"""


def _seed(config: Path) -> str:
    sm = client("secretsmanager")
    sm.create_secret(Name="app/db", SecretString=json.dumps({"user": "app", "password": "o" * 24}))
    sm.create_secret(Name="later", SecretString="l" * 24)
    apigw = client("apigateway")
    plan = apigw.create_usage_plan(name="partners")["id"]
    key = apigw.create_api_key(name="partner-initial", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=plan, keyId=key["id"], keyType="API_KEY")
    sm.create_secret(Name="partner-key", SecretString=key["value"])
    config.write_text(POLICIES.replace("PLAN", plan))
    return plan


@pytest.mark.e2e
def test_validate_plan_run_status_history(rotator_cli: Rotator) -> None:
    """validate, plan, run --once, status and history agree on what was due and what happened."""
    plan_id = _seed(rotator_cli.config)
    assert rotator_cli("validate").code == 0
    # The secrets were created just now; 31 days later the 30-day ones are due.
    t1 = datetime.now(UTC) + timedelta(days=31)

    planned = rotator_cli("plan", "--json", now=t1)
    assert planned.code == 0, planned.stderr
    due = {i["secret"] for i in planned.json() if i["due"]}
    assert due == {"app/db", "partner-key"}
    assert not (rotator_cli.workdir / "rotator.db").exists(), "plan created the journal"

    ran = rotator_cli("run", "--once", "--json", now=t1)
    assert ran.code == 0, ran.stderr
    assert {o["secret"]: o["state"] for o in ran.json()} == {
        "app/db": "grace",
        "partner-key": "grace",
    }
    keys = client("apigateway").get_usage_plan_keys(usagePlanId=plan_id)["items"]
    assert len(keys) == 2

    status = {r["secret"]: r for r in rotator_cli("status", "--json", now=t1).json()}
    assert status["app/db"]["state"] == "grace"
    assert status["later"]["state"] == "never rotated"
    assert status["app/db"]["old_grace_deadline"] is not None

    after_grace = rotator_cli("run", "--once", "--json", now=t1 + timedelta(hours=1, seconds=1))
    assert after_grace.code == 0, after_grace.stderr
    states = {o["secret"]: o["state"] for o in after_grace.json()}
    assert states == {"app/db": "done", "partner-key": "revoked"}
    old = client("apigateway").get_api_keys(nameQuery="partner-initial")["items"][0]
    assert old["enabled"] is False

    history = rotator_cli("history", "app/db", "--json").json()
    [rotation] = history
    assert [s["step"] for s in rotation["steps"] if s["outcome"] == "ok"] == [
        "plan",
        "mint",
        "store",
        "propagate",
        "verify",
        "promote",
        "revoke",
        "delete",
    ]
    assert rotation["state"] == "done"
    human = rotator_cli("history", "app/db")
    assert "promote" in human.stdout and human.code == 0


@pytest.mark.e2e
def test_invalid_policy_exits_2_and_changes_nothing(rotator_cli: Rotator) -> None:
    """A bad policy is reported with file, line and reason; exit 2; no journal, no AWS call."""
    rotator_cli.config.write_text(
        "secrets:\n  - name: x\n    store: {provider: aws-secretmanager, secret_id: x}\n"
        "    schedule: {every: 30d}\n    grace: 1h\n"
    )
    for command in (("validate",), ("plan",), ("run", "--once"), ("rotate", "x")):
        result = rotator_cli(*command)
        assert result.code == 2, (command, result.stderr)
        assert f"{rotator_cli.config}:3:" in result.stderr
        assert "did you mean 'aws-secretsmanager'" in result.stderr
    assert not (rotator_cli.workdir / "rotator.db").exists()
    assert client("secretsmanager").list_secrets()["SecretList"] == []


@pytest.mark.e2e
def test_unknown_secret_name_exits_2(rotator_cli: Rotator) -> None:
    """rotate and history of a name no policy has exit 2."""
    _seed(rotator_cli.config)
    assert rotator_cli("rotate", "nope").code == 2
    assert rotator_cli("history", "nope").code == 2


@pytest.mark.e2e
def test_failed_rotation_exits_1_and_others_still_run(rotator_cli: Rotator) -> None:
    """One secret whose store is missing fails (exit 1) while the others rotate."""
    _seed(rotator_cli.config)
    client("secretsmanager").delete_secret(SecretId="later", ForceDeleteWithoutRecovery=True)
    result = rotator_cli("run", "--once", "--json", now=datetime.now(UTC) + timedelta(days=91))
    assert result.code == 1, result.stderr
    outcomes = {o["secret"]: o["result"] for o in result.json()}
    assert outcomes == {"app/db": "ok", "partner-key": "ok", "later": "failed"}


@pytest.mark.e2e
def test_db_upgrade_brings_the_journal_to_the_current_schema(rotator_cli: Rotator) -> None:
    """`rotator db upgrade` creates or upgrades the journal, and a second run changes nothing."""
    from rotator.journal.schema import SCHEMA_VERSION

    for _ in range(2):
        done = rotator_cli("db", "upgrade")
        assert done.code == 0, done.stderr
        assert f"schema version {SCHEMA_VERSION}" in done.stdout
    assert (rotator_cli.workdir / "rotator.db").exists()
