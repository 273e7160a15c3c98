"""The AWS sandbox: a real moto_server subprocess, seeded, used through AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from providers.aws.apigateway import ApiKeyConfig, ApiKeyIssuer
from providers.aws.iam import AccessKeyConfig, AccessKeyIssuer
from providers.aws.secretsmanager import SecretsManagerConfig, SecretsManagerStore
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Runtime
from rotator.sandbox.aws.sandbox import AwsSandbox
from tests.providers.helpers import new_rotation_id

pytestmark = pytest.mark.e2e


def test_start_seed_stop(tmp_path: Path, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """start() serves moto, seed() creates the demo, the adapters reach it, stop() ends it."""
    sandbox = AwsSandbox()
    env = sandbox.start(tmp_path)
    try:
        endpoint = env["AWS_ENDPOINT_URL"]
        assert endpoint.startswith("http://127.0.0.1:")
        assert env["AWS_DEFAULT_REGION"] == "us-east-1"
        assert env["AWS_ACCESS_KEY_ID"] == "testing"
        sandbox.seed(env)
        plans = sandbox.usage_plan_ids()
        assert len(plans) == 1
        assert sandbox.policy_substitutions()["DEMO_USAGE_PLAN_ID"] == plans[0]

        sm = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

        def read(name: str) -> str:
            return str(
                sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
            )

        db = json.loads(read("demo/db-password"))
        assert db["username"] == "app" and len(db["password"]) >= 16
        pair = json.loads(read("demo/deployer-key"))
        assert set(pair) == {"AccessKeyId", "SecretAccessKey"}
        partner = read("demo/partner-api-key")

        # The adapters know nothing of the sandbox: boto3 follows AWS_ENDPOINT_URL.
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime = Runtime(clock=lambda: datetime.now(UTC), sleep=lambda _: None, cache={})
        store = SecretsManagerStore(
            SecretsManagerConfig(secret_id="demo/db-password", field="password"), runtime, "db"
        )
        current = store.current()
        assert current is not None and current.value.reveal() == db["password"]
        keys = AccessKeyIssuer(AccessKeyConfig(user="demo-deployer"), runtime, "deployer")
        assert keys.prepare([pair["AccessKeyId"]]) == []
        new = keys.mint(new_rotation_id())
        keys.verify(new)
        keys.revoke(str(new.ref))
        keys.delete(str(new.ref))
        api = ApiKeyIssuer(ApiKeyConfig(usage_plans=plans), runtime, "partner")
        assert api.ref_of(current.value) is None
        assert api.ref_of(SecretValue(partner)) is not None
    finally:
        sandbox.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
    sandbox.stop()
    assert (tmp_path / "moto_server.log").exists()
