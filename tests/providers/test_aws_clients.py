"""Client construction and caching for the AWS adapters, and their lazy SDK import."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws

from providers.aws.clients import client
from rotator.adapters.ratelimit import Pacing
from rotator.adapters.values import Runtime

pytestmark = pytest.mark.usefixtures("aws_env")


def test_clients_are_cached_per_service_and_region(runtime: Runtime) -> None:
    """The same service and region give the same client; another region a new one."""
    first = client(runtime, "secretsmanager", "us-east-1")
    assert client(runtime, "secretsmanager", "us-east-1") is first
    other = client(runtime, "secretsmanager", "eu-west-1")
    assert other is not first and other.meta.region_name == "eu-west-1"
    assert client(runtime, "iam") is client(runtime, "iam")
    sessions = [v for k, v in runtime.cache.items() if k == "aws:session"]
    assert len(sessions) == 1


def test_default_region_comes_from_the_chain(runtime: Runtime) -> None:
    """With no region given, the client takes boto3's default (AWS_DEFAULT_REGION)."""
    assert client(runtime, "secretsmanager").meta.region_name == "us-east-1"


def test_retries_use_standard_mode(runtime: Runtime) -> None:
    """Clients retry in botocore's standard mode."""
    retries = getattr(client(runtime, "apigateway").meta.config, "retries", None)
    assert retries is not None and retries["mode"] == "standard"


def test_aws_endpoint_url_is_honoured(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_ENDPOINT_URL (boto3's own setting) points every client at another endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert client(runtime, "secretsmanager").meta.endpoint_url == "http://127.0.0.1:4566"
    assert client(runtime, "sts").meta.endpoint_url == "http://127.0.0.1:4566"


def test_clients_with_keys_are_uncached_and_sign_with_them(runtime: Runtime) -> None:
    """A client built with explicit keys is new each time, same endpoint, and signs with them."""
    shared = client(runtime, "sts")
    keyed = client(
        runtime, "sts", aws_access_key_id="AKIAEXAMPLE0001", aws_secret_access_key="example-secret"
    )
    again = client(
        runtime, "sts", aws_access_key_id="AKIAEXAMPLE0001", aws_secret_access_key="example-secret"
    )
    assert keyed is not shared and keyed is not again
    assert keyed.meta.endpoint_url == shared.meta.endpoint_url
    assert keyed.meta.region_name == shared.meta.region_name
    signer: Any = getattr(keyed, "_request_signer")
    assert signer._credentials.access_key == "AKIAEXAMPLE0001"
    assert keyed not in runtime.cache.values()


def test_adapter_modules_do_not_import_the_sdk() -> None:
    """Importing the AWS adapter modules (as the registry does) imports no AWS SDK."""
    code = (
        "import sys\n"
        "import providers.aws.secretsmanager, providers.aws.iam, providers.aws.apigateway\n"
        "import rotator.sandbox.aws.sandbox\n"
        "bad = [m for m in ('boto3', 'botocore', 'moto') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_api_gateway_calls_are_paced_below_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten API Gateway calls through the shared client: a burst of 5, then one each 0.2 s.

    The bucket's clock is the injected one, advanced only by its sleeps, so
    no real time refills it between moto's answers.
    """
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("ROTATOR_RATE_LIMITS", raising=False)
    with mock_aws():
        runtime = Runtime(
            clock=lambda: datetime.now(UTC), sleep=sleep, pacing=Pacing(monotonic=lambda: now[0])
        )
        apigw = client(runtime, "apigateway", "us-east-1")
        for _ in range(10):
            apigw.get_api_keys()
    assert slept == pytest.approx([0.2] * 5)


def test_rate_limit_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROTATOR_RATE_LIMITS=apigateway=0 lets calls through without waiting."""
    slept: list[float] = []
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "apigateway=0")
    with mock_aws():
        runtime = Runtime(clock=lambda: datetime.now(UTC), sleep=slept.append)
        apigw = client(runtime, "apigateway", "us-east-1")
        for _ in range(10):
            apigw.get_api_keys()
    assert slept == []
