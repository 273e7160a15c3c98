"""Canary: rotate secrets whose values we know, at DEBUG, then look for them everywhere.

Invariant 5 of docs/design.md: no secret value in logs (rotator's or the SDKs'),
command output, or the journal database files.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import Rotator, client

POLICIES = """
notifiers:
  everything:
    kind: exec
    command: [{python}, -c, "import sys; open({alerts!r}, 'a').write(sys.stdin.read())"]
    events: [rotation-succeeded, emergency-rotation, rotation-failed, overdue]
defaults: {{schedule: {{every: 30d}}, grace: 0s, alerts: [everything]}}
secrets:
  - name: db
    store: {{provider: aws-secretsmanager, secret_id: db, field: password}}
  - name: deployer
    store: {{provider: aws-secretsmanager, secret_id: deployer}}
    issuer: {{kind: aws-iam-access-key, user: deployer}}
  - name: partner
    store: {{provider: aws-secretsmanager, secret_id: partner}}
    issuer: {{kind: aws-apigateway-api-key, usage_plans: ["{plan}"]}}
"""


def _every_value_ever_stored(secret_id: str) -> set[str]:
    sm = client("secretsmanager")
    values: set[str] = set()
    versions = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]
    for version in versions:
        text = sm.get_secret_value(SecretId=secret_id, VersionId=version["VersionId"])[
            "SecretString"
        ]
        values.add(text)
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, dict):
            values |= {v for k, v in doc.items() if k != "user" and isinstance(v, str)}
    return values


@pytest.mark.e2e
def test_no_secret_value_in_logs_output_or_journal(rotator_cli: Rotator) -> None:
    """After rotations at DEBUG, no old or new value appears in any log line or journal byte."""
    sm, iam, apigw = client("secretsmanager"), client("iam"), client("apigateway")
    sm.create_secret(Name="db", SecretString=json.dumps({"user": "app", "password": "Canary" * 4}))
    iam.create_user(UserName="deployer")
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    sm.create_secret(
        Name="deployer",
        SecretString=json.dumps(
            {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
        ),
    )
    plan = apigw.create_usage_plan(name="p")["id"]
    api_key = apigw.create_api_key(name="initial", enabled=True, value="CanaryApiKey" * 3)
    apigw.create_usage_plan_key(usagePlanId=plan, keyId=api_key["id"], keyType="API_KEY")
    sm.create_secret(Name="partner", SecretString=api_key["value"])
    alerts = Path(rotator_cli.workdir) / "alerts.jsonl"
    shipped = Path(rotator_cli.workdir) / "audit.jsonl"
    rotator_cli.env["ROTATOR_AUDIT_LOG"] = str(shipped)
    rotator_cli.config.write_text(
        POLICIES.format(plan=plan, python=sys.executable, alerts=str(alerts))
    )

    now = datetime.now(UTC)
    runs = [
        rotator_cli("rotate", "db", "--json", log_level="debug"),
        rotator_cli("rotate", "deployer", "--emergency", log_level="debug"),
        rotator_cli("run", "--once", "--json", now=now + timedelta(days=31), log_level="debug"),
        rotator_cli("status", "--json", log_level="debug"),
        rotator_cli("history", "deployer", "--json", log_level="debug"),
        rotator_cli("audit", "export", log_level="debug"),
        rotator_cli("audit", "export", "--format", "csv", log_level="debug"),
        rotator_cli("audit", "verify", log_level="debug"),
    ]
    assert [r.code for r in runs] == [0] * 8, [r.stderr[-2000:] for r in runs]
    logs = "\n".join(r.stdout + r.stderr for r in runs)
    # The alerts and the shipped audit trail are scanned like the logs.
    assert "emergency-rotation" in alerts.read_text() and '"rotation-succeeded"' in (
        alerts.read_text()
    )
    assert '"action":"promoted"' in shipped.read_text()
    logs += alerts.read_text() + shipped.read_text()
    assert '"level": "debug"' in logs or '"level":"debug"' in logs, "no debug line was written"

    secrets = set()
    for secret_id in ("db", "deployer", "partner"):
        secrets |= _every_value_ever_stored(secret_id)
    secrets = {s for s in secrets if len(s) >= 16 and not s.startswith("AKIA")}
    assert len(secrets) >= 9, secrets and len(secrets)  # old and new of each, at least

    journal_bytes = b"".join(
        p.read_bytes() for p in Path(rotator_cli.workdir).glob("rotator.db*") if p.is_file()
    )
    for value in secrets:
        assert value not in logs, "a secret value reached a log line or command output"
        assert value.encode() not in journal_bytes, "a secret value reached the journal"
        assert json.dumps(value)[1:-1].encode() not in journal_bytes
