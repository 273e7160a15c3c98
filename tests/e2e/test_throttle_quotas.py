"""The throttling proxy's per-account-and-Region quotas, against the session's moto_server.

Each test runs a :class:`~tests.throttle.ThrottlingProxy` with
:data:`~tests.throttle.SECRETS_MANAGER_WRITES` on a clock that never moves,
so a bucket holds its burst and never refills: what gets through and what is
throttled depends on the counting alone, never on timing. Secrets are made
straight in moto (not through the proxy), and clients make one attempt
unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryContext, ThrottlingErrorDetector
from moto.core import DEFAULT_ACCOUNT_ID

from providers.aws.errors import THROTTLING_CODES
from tests.throttle import SECRETS_MANAGER_WRITES, Meter, QuotaUse, ThrottlingProxy

WRITES = SECRETS_MANAGER_WRITES.name
ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


@contextmanager
def frozen_proxy(aws: dict[str, str], burst: int) -> Iterator[ThrottlingProxy]:
    """A proxy with Secrets Manager's write quota, ``burst`` writes a bucket, never refilled."""
    quota = dataclasses.replace(SECRETS_MANAGER_WRITES, burst=burst)
    with ThrottlingProxy(aws["AWS_ENDPOINT_URL"], quotas=[quota], clock=lambda: 0.0) as proxy:
        yield proxy


def secretsmanager(region: str, endpoint: str, *, config: Config = ONE_ATTEMPT, **kw: str) -> Any:
    """A Secrets Manager client for ``region`` at ``endpoint`` (moto's, or the proxy's)."""
    return boto3.client(
        "secretsmanager", region_name=region, endpoint_url=endpoint, config=config, **kw
    )


@pytest.fixture
def seed(aws: dict[str, str]) -> str:
    """Create ``app/key`` in us-east-1 straight in moto; return its first version id."""
    created = secretsmanager("us-east-1", aws["AWS_ENDPOINT_URL"]).create_secret(
        Name="app/key", SecretString="seed"
    )
    return str(created["VersionId"])


def throttled(call: Any) -> dict[str, Any]:
    """Make ``call``; return the error response it must fail with."""
    with pytest.raises(ClientError) as raised:
        call()
    response: dict[str, Any] = {**raised.value.response}
    assert response["Error"]["Code"] == "ThrottlingException", response["Error"]
    return response


def uses(proxy: ThrottlingProxy) -> dict[Meter, tuple[int, int]]:
    """Return (forwarded, throttled) per meter."""
    return {meter: (use.forwarded, use.throttled) for meter, use in proxy.usage().items()}


@pytest.mark.e2e
def test_writes_of_two_regions_are_metered_apart(aws: dict[str, str]) -> None:
    """Each Region has its own bucket: emptying us-east-1's leaves eu-west-1's whole."""
    moto = aws["AWS_ENDPOINT_URL"]
    for region in ("us-east-1", "eu-west-1"):
        secretsmanager(region, moto).create_secret(Name="app/key", SecretString="seed")
    with frozen_proxy(aws, burst=1) as proxy:
        east = secretsmanager("us-east-1", proxy.url)
        west = secretsmanager("eu-west-1", proxy.url)
        east.put_secret_value(SecretId="app/key", SecretString="east-1")
        throttled(lambda: east.put_secret_value(SecretId="app/key", SecretString="east-2"))
        west.put_secret_value(SecretId="app/key", SecretString="west-1")
        throttled(lambda: west.put_secret_value(SecretId="app/key", SecretString="west-2"))

        assert uses(proxy) == {
            Meter(DEFAULT_ACCOUNT_ID, "us-east-1", WRITES): (1, 1),
            Meter(DEFAULT_ACCOUNT_ID, "eu-west-1", WRITES): (1, 1),
        }


@pytest.mark.e2e
@pytest.mark.usefixtures("seed")
def test_reads_do_not_consume_the_write_quota(aws: dict[str, str]) -> None:
    """Reads pass uncounted; the one write token is still there after them."""
    with frozen_proxy(aws, burst=1) as proxy:
        sm = secretsmanager("us-east-1", proxy.url)
        for _ in range(3):
            sm.get_secret_value(SecretId="app/key", VersionStage="AWSCURRENT")
            sm.describe_secret(SecretId="app/key")
            sm.list_secret_version_ids(SecretId="app/key")
        sm.list_secrets()
        sm.put_secret_value(SecretId="app/key", SecretString="new")
        throttled(lambda: sm.update_secret(SecretId="app/key", Description="changed"))

        assert uses(proxy) == {Meter(DEFAULT_ACCOUNT_ID, "us-east-1", WRITES): (1, 1)}
        assert proxy.forwarded()["secretsmanager", "GetSecretValue"] == 3
        assert proxy.total(proxy.throttled(), "secretsmanager") == 1


@pytest.mark.e2e
def test_the_three_write_operations_share_one_bucket(aws: dict[str, str], seed: str) -> None:
    """PutSecretValue, UpdateSecret and UpdateSecretVersionStage draw on one bucket of 3."""
    with frozen_proxy(aws, burst=3) as proxy:
        sm = secretsmanager("us-east-1", proxy.url)
        pending = sm.put_secret_value(
            SecretId="app/key", SecretString="next", VersionStages=["AWSPENDING"]
        )["VersionId"]
        sm.update_secret(SecretId="app/key", Description="rotated")
        move = {
            "SecretId": "app/key",
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": pending,
            "RemoveFromVersionId": seed,
        }
        sm.update_secret_version_stage(**move)
        throttled(lambda: sm.put_secret_value(SecretId="app/key", SecretString="again"))
        throttled(lambda: sm.update_secret(SecretId="app/key", Description="again"))
        throttled(lambda: sm.update_secret_version_stage(**move))

        writes = {"PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage"}
        assert proxy.throttled() == {("secretsmanager", op): 1 for op in writes}
        assert {op: n for (_, op), n in proxy.forwarded().items() if op in writes} == {
            op: 1 for op in writes
        }
        assert uses(proxy) == {Meter(DEFAULT_ACCOUNT_ID, "us-east-1", WRITES): (3, 3)}


@pytest.mark.e2e
@pytest.mark.usefixtures("seed")
def test_an_over_quota_write_is_answered_as_aws_throttles(aws: dict[str, str]) -> None:
    """HTTP 400 ThrottlingException, which botocore classifies as throttling (and retries)."""
    with frozen_proxy(aws, burst=1) as proxy:
        sm = secretsmanager("us-east-1", proxy.url)
        sm.put_secret_value(SecretId="app/key", SecretString="first")
        response = throttled(lambda: sm.put_secret_value(SecretId="app/key", SecretString="2nd"))

        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == (
            "ThrottlingException"
        )
        context = RetryContext(attempt_number=1, parsed_response=response)
        assert ThrottlingErrorDetector(None).is_throttling_error_from_context(context)
        assert "ThrottlingException" in THROTTLING_CODES
        # botocore's standard mode retries throttling (a plain 400 it would not):
        # three attempts, all throttled, as the bucket never refills.
        three = Config(retries={"mode": "standard", "total_max_attempts": 3})
        retrying = secretsmanager("us-east-1", proxy.url, config=three)
        throttled(lambda: retrying.put_secret_value(SecretId="app/key", SecretString="3rd"))
        assert uses(proxy) == {Meter(DEFAULT_ACCOUNT_ID, "us-east-1", WRITES): (1, 4)}


@pytest.mark.e2e
def test_the_account_is_the_one_moto_serves_the_key_as(aws: dict[str, str]) -> None:
    """Two keys of one account share its bucket; another account's key has its own."""
    moto = aws["AWS_ENDPOINT_URL"]
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto)
    iam.create_user(UserName="deployer")
    user_key = iam.create_access_key(UserName="deployer")["AccessKey"]
    role = f"arn:aws:iam::{'2' * 12}:role/rotator"
    assumed = boto3.client("sts", region_name="us-east-1", endpoint_url=moto).assume_role(
        RoleArn=role, RoleSessionName="quota-test"
    )["Credentials"]
    keys = {
        "default": {},
        "iam user": {
            "aws_access_key_id": user_key["AccessKeyId"],
            "aws_secret_access_key": user_key["SecretAccessKey"],
        },
        "assumed role": {
            "aws_access_key_id": assumed["AccessKeyId"],
            "aws_secret_access_key": assumed["SecretAccessKey"],
            "aws_session_token": assumed["SessionToken"],
        },
    }
    arns = {
        name: secretsmanager("us-east-1", moto, **key).create_secret(
            Name=f"app/{uuid.uuid4().hex}", SecretString="seed"
        )["ARN"]
        for name, key in keys.items()
    }
    with frozen_proxy(aws, burst=1) as proxy:
        for name in ("default", "assumed role"):
            secretsmanager("us-east-1", proxy.url, **keys[name]).put_secret_value(
                SecretId=arns[name], SecretString="next"
            )
        user = secretsmanager("us-east-1", proxy.url, **keys["iam user"])
        throttled(lambda: user.put_secret_value(SecretId=arns["iam user"], SecretString="next"))

        # The accounts moto put the secrets in, read from their ARNs.
        account = {name: arn.split(":")[4] for name, arn in arns.items()}
        assert account["default"] == account["iam user"] == DEFAULT_ACCOUNT_ID
        assert account["assumed role"] == "2" * 12
        assert uses(proxy) == {
            Meter(DEFAULT_ACCOUNT_ID, "us-east-1", WRITES): (1, 1),
            Meter("2" * 12, "us-east-1", WRITES): (1, 0),
        }


@pytest.mark.e2e
@pytest.mark.usefixtures("seed")
def test_admissions_are_stamped_with_the_proxy_clock(aws: dict[str, str]) -> None:
    """Each write let through is stamped with the clock's reading; the bucket refills with it."""
    now = [100.0]
    quota = dataclasses.replace(SECRETS_MANAGER_WRITES, rate=2.0, burst=1)
    with ThrottlingProxy(aws["AWS_ENDPOINT_URL"], quotas=[quota], clock=lambda: now[0]) as proxy:
        sm = secretsmanager("us-east-1", proxy.url)
        sm.update_secret(SecretId="app/key", Description="a")
        throttled(lambda: sm.update_secret(SecretId="app/key", Description="b"))
        now[0] += 0.5  # one token at 2 a second
        sm.update_secret(SecretId="app/key", Description="c")

        assert proxy.usage() == {
            Meter(DEFAULT_ACCOUNT_ID, "us-east-1", WRITES): QuotaUse([100.0, 100.5], 1)
        }
