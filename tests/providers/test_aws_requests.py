"""Every AWS request is reported to ``runtime.on_request``, one report per HTTP attempt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore import exceptions as bx
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.parsers import create_parser
from moto import mock_aws

from providers.aws.clients import client
from providers.aws.errors import attempt_outcome
from providers.aws.iam import AccessKeyConfig, AccessKeyIssuer
from providers.aws.secretsmanager import SecretsManagerConfig, SecretsManagerStore
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import OUTCOMES, Runtime
from rotator.service.metrics import OPERATION_PATTERN
from tests.providers.helpers import new_rotation_id
from tests.providers.threads import run_together

SECRET_ID = "prod/deployer/key"
USER = "deployer"

Call = tuple[str, str, str]


class _Raw:
    """The raw body botocore reads an ``AWSResponse`` from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def calls(runtime: Runtime) -> list[Call]:
    """Record every request the adapters report, as (provider, operation, outcome)."""
    seen: list[Call] = []
    runtime.on_request = lambda provider, operation, outcome: seen.append(
        (provider, operation, outcome)
    )
    return seen


@pytest.mark.usefixtures("aws")
def test_a_rotation_reports_each_call_of_its_store_and_issuer(
    runtime: Runtime, calls: list[Call]
) -> None:
    """An IAM key rotation into Secrets Manager reports every call, by service, all ok."""
    boto3.client("iam", region_name="us-east-1").create_user(UserName=USER)
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=SECRET_ID, SecretString="{}"
    )
    store = SecretsManagerStore(SecretsManagerConfig(secret_id=SECRET_ID), runtime, "deployer")
    issuer = AccessKeyIssuer(AccessKeyConfig(user=USER), runtime, "deployer")
    rid = new_rotation_id()

    issuer.inventory()
    credential = issuer.mint(rid)
    store.put_pending(rid, credential.value)
    pending = store.pending(rid)
    assert pending is not None
    issuer.verify(credential)
    store.promote(rid)

    assert calls == [
        ("aws-iam", "ListAccessKeys", "ok"),
        ("aws-iam", "CreateAccessKey", "ok"),
        ("aws-secretsmanager", "PutSecretValue", "ok"),
        ("aws-secretsmanager", "GetSecretValue", "ok"),
        ("aws-iam", "GetUser", "ok"),
        ("aws-sts", "GetCallerIdentity", "ok"),
        ("aws-iam", "ListAccessKeys", "ok"),
        ("aws-secretsmanager", "DescribeSecret", "ok"),
        ("aws-secretsmanager", "UpdateSecretVersionStage", "ok"),
        ("aws-secretsmanager", "UpdateSecretVersionStage", "ok"),
    ]
    secret = credential.value.reveal()
    assert isinstance(secret, dict)
    assert all(secret["SecretAccessKey"] not in str(call) for call in calls)


@pytest.mark.usefixtures("aws")
def test_a_throttled_attempt_is_reported_then_retried(runtime: Runtime, calls: list[Call]) -> None:
    """A throttling answer botocore retries is reported as throttled, the retry as ok."""
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name=SECRET_ID, SecretString="initial-value-00000001")
    store = SecretsManagerStore(SecretsManagerConfig(secret_id=SECRET_ID), runtime, "deployer")
    sdk = client(runtime, "secretsmanager")
    throttled: list[str] = []

    def throttle_once(request: Any, **_: Any) -> Any:
        # A real wire answer, parsed by botocore like one from Secrets Manager.
        if throttled:
            return None
        throttled.append(request.url)
        headers = HTTPHeaders()
        headers["x-amzn-ErrorType"] = "ThrottlingException"
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(request.url, 400, headers, _Raw(body))

    def no_wait(attempts: int, **_: Any) -> float | None:
        # Retry the injected throttle at once: botocore's own delay is a real sleep.
        return 0.0 if attempts == 1 and throttled else None

    sdk.meta.events.register_first("before-send.secrets-manager.GetSecretValue", throttle_once)
    events: Any = sdk.meta.events  # its stubs expect handlers returning None; botocore does not
    events.register_first("needs-retry.secrets-manager.GetSecretValue", no_wait)
    current = store.current()

    assert current is not None and throttled
    assert calls == [
        ("aws-secretsmanager", "GetSecretValue", "throttled"),
        ("aws-secretsmanager", "GetSecretValue", "ok"),
    ]


@pytest.mark.usefixtures("aws")
def test_a_failing_observer_does_not_fail_the_call(runtime: Runtime) -> None:
    """An observer that raises is logged; the write it was told about still succeeds."""

    def broken(_provider: str, _operation: str, _outcome: str) -> None:
        raise ValueError("counter broke")

    runtime.on_request = broken
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=SECRET_ID, SecretString="initial-value-00000001"
    )
    store = SecretsManagerStore(SecretsManagerConfig(secret_id=SECRET_ID), runtime, "deployer")
    rid = new_rotation_id()
    assert store.put_pending(rid, SecretValue("new-value-0000000001")) == rid


def _parsed(service: str, operation: str, status: int, headers: dict[str, str], body: bytes) -> Any:
    """Parse a wire answer with botocore's own parser for ``service``'s protocol."""
    make: Any = boto3.client  # its overloads want a literal service name
    model = make(service, region_name="us-east-1").meta.service_model
    op = model.operation_model(operation)
    parser = create_parser(model.metadata["protocol"])
    response = {"status_code": status, "headers": headers, "body": body}
    parsed = parser.parse(response, op.output_shape)
    http = AWSResponse("https://aws.invalid/", status, HTTPHeaders(), _Raw(body))
    return http, parsed


_IAM_THROTTLE = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
    b"<Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
)
_IAM_MISSING = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>"
    b"<Message>no such user</Message></Error><RequestId>r-2</RequestId></ErrorResponse>"
)


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    ("service", "operation", "status", "headers", "body", "expected"),
    [
        ("secretsmanager", "GetSecretValue", 200, {}, b'{"Name":"x"}', "ok"),
        (
            "secretsmanager",
            "PutSecretValue",
            400,
            {"x-amzn-ErrorType": "ThrottlingException"},
            b'{"__type":"ThrottlingException"}',
            "throttled",
        ),
        ("iam", "CreateAccessKey", 400, {}, _IAM_THROTTLE, "throttled"),
        (
            "apigateway",
            "CreateApiKey",
            429,
            {"x-amzn-ErrorType": "TooManyRequestsException"},
            b'{"message":"Too Many Requests"}',
            "throttled",
        ),
        (
            "secretsmanager",
            "DescribeSecret",
            500,
            {"x-amzn-ErrorType": "InternalServiceError"},
            b'{"__type":"InternalServiceError"}',
            "transient",
        ),
        ("apigateway", "GetApiKeys", 503, {}, b"", "transient"),
        (
            "secretsmanager",
            "GetSecretValue",
            400,
            {"x-amzn-ErrorType": "ResourceNotFoundException"},
            b'{"__type":"ResourceNotFoundException"}',
            "permanent",
        ),
        ("iam", "GetUser", 404, {}, _IAM_MISSING, "permanent"),
        (
            "secretsmanager",
            "PutSecretValue",
            400,
            {"x-amzn-ErrorType": "AccessDeniedException"},
            b'{"__type":"AccessDeniedException"}',
            "permanent",
        ),
    ],
)
def test_answers_are_classified_like_the_errors_they_raise(
    service: str, operation: str, status: int, headers: dict[str, str], body: bytes, expected: str
) -> None:
    """Wire answers parsed by botocore map to ok, throttled, transient or permanent."""
    assert attempt_outcome(_parsed(service, operation, status, headers, body), None) == expected


@pytest.mark.parametrize(
    ("caught", "expected"),
    [
        (bx.EndpointConnectionError(endpoint_url="https://aws.invalid"), "transient"),
        (bx.ReadTimeoutError(endpoint_url="https://aws.invalid"), "transient"),
        (bx.ConnectionClosedError(endpoint_url="https://aws.invalid"), "transient"),
        (
            bx.SSLError(endpoint_url="https://aws.invalid", error=OSError("bad certificate")),
            "permanent",
        ),
    ],
)
def test_lost_answers_are_classified(caught: BaseException, expected: str) -> None:
    """No answer at all is transient, except a TLS failure, which retrying will not fix."""
    assert attempt_outcome(None, caught) == expected
    assert expected in OUTCOMES


@pytest.mark.usefixtures("aws")
def test_operation_labels_are_api_names(runtime: Runtime, calls: list[Call]) -> None:
    """Every operation reported is an API call name the metric accepts, never an id or a path."""
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name=SECRET_ID)
    store = SecretsManagerStore(SecretsManagerConfig(secret_id=SECRET_ID), runtime, "deployer")
    rid = new_rotation_id()
    store.current()
    store.put_pending(rid, SecretValue("new-value-0000000001"))
    store.discard(rid)
    store.retire(rid)
    assert calls
    for provider, operation, outcome in calls:
        assert provider == "aws-secretsmanager"
        assert OPERATION_PATTERN.fullmatch(operation) and rid not in operation
        assert outcome in OUTCOMES


@pytest.mark.usefixtures("aws")
def test_threads_sharing_a_runtime_share_one_session_and_client(runtime: Runtime) -> None:
    """Sixteen threads asking at once for clients get one session and one client per service."""
    got: list[Any] = []

    def work(i: int) -> None:
        got.append(client(runtime, "secretsmanager" if i % 2 else "iam"))

    assert run_together(work, range(16)) == []
    assert len(got) == 16
    assert len({id(c) for c in got}) == 2
    assert sum(1 for key in runtime.cache if key == "aws:session") == 1


@pytest.mark.usefixtures("aws")
def test_rotations_on_threads_sharing_a_runtime_all_land(
    runtime: Runtime, calls: list[Call]
) -> None:
    """Eight secrets rotated at once on eight threads through one runtime all end promoted."""
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    names = [f"{SECRET_ID}-{i}" for i in range(8)]
    for name in names:
        sm.create_secret(Name=name, SecretString="initial-value-00000001")

    def rotate(name: str) -> None:
        store = SecretsManagerStore(SecretsManagerConfig(secret_id=name), runtime, name)
        rid = new_rotation_id()
        store.put_pending(rid, SecretValue(f"new-value-{rid}"))
        store.promote(rid)

    assert run_together(rotate, names) == []
    for name in names:
        current = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        assert current["SecretString"].startswith("new-value-")
    assert len(calls) == 4 * len(names)
    assert {outcome for _, _, outcome in calls} == {"ok"}


@pytest.mark.usefixtures("aws_env")
def test_clients_signing_with_a_new_key_are_paced_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The uncached STS client of a freshly minted key shares the sts rate limit and reports."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "sts=2")
    slept: list[float] = []
    calls: list[Call] = []
    with mock_aws():
        runtime = Runtime(
            clock=lambda: datetime.now(UTC),
            sleep=slept.append,
            on_request=lambda provider, operation, outcome: calls.append(
                (provider, operation, outcome)
            ),
        )
        keyed = client(
            runtime,
            "sts",
            aws_access_key_id="AKIAEXAMPLE0001",
            aws_secret_access_key="example-secret-0001",
        )
        for _ in range(6):
            keyed.get_caller_identity()
    assert calls == [("aws-sts", "GetCallerIdentity", "ok")] * 6
    assert len(slept) >= 3 and sum(slept) >= 1.5
