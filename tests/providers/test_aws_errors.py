"""Translation of botocore exceptions into rotator errors, and what messages may hold."""

from __future__ import annotations

import traceback
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from providers.aws.clients import client
from providers.aws.errors import aws_errors
from providers.aws.secretsmanager import SecretsManagerConfig, SecretsManagerStore
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Runtime
from rotator.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)
from tests.providers.helpers import error_reply, inject, new_rotation_id

LEAK = "hunter2-very-secret-value"


def client_error(
    code: str, status: int = 400, headers: dict[str, str] | None = None
) -> ClientError:
    """Build a ClientError whose AWS message quotes a secret, as some services do."""
    response: Any = {
        "Error": {"Code": code, "Message": f"value {LEAK} rejected"},
        "ResponseMetadata": {
            "HTTPStatusCode": status,
            "RequestId": "req-1",
            "HTTPHeaders": headers or {},
        },
    }
    return ClientError(response, "PutSecretValue")


def translate(exc: BaseException) -> ProviderError:
    """Run ``exc`` through aws_errors and return what comes out."""
    with pytest.raises(ProviderError) as caught, aws_errors("aws-test", "PutSecretValue"):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("Throttling", 400, TransientError),
        ("ThrottlingException", 400, TransientError),
        ("TooManyRequestsException", 429, TransientError),
        ("RequestLimitExceeded", 503, TransientError),
        ("LimitExceededException", 429, TransientError),
        ("InternalFailure", 500, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("SomethingNew", 502, TransientError),
        ("AccessDenied", 403, PermissionDeniedError),
        ("AccessDeniedException", 400, PermissionDeniedError),
        ("UnauthorizedOperation", 403, PermissionDeniedError),
        ("InvalidClientTokenId", 403, PermissionDeniedError),
        ("UnrecognizedClientException", 400, PermissionDeniedError),
        ("ResourceNotFoundException", 400, NotFoundError),
        ("NoSuchEntity", 404, NotFoundError),
        ("NotFoundException", 404, NotFoundError),
        ("LimitExceeded", 409, LimitExceededError),
        ("ConflictException", 409, ConflictError),
        ("ResourceExistsException", 400, ConflictError),
        ("InvalidParameterException", 400, PermanentError),
    ],
)
def test_client_error_codes(code: str, status: int, expected: type[ProviderError]) -> None:
    """Each AWS error code maps to its rotator error, with code, status and request id."""
    error = translate(client_error(code, status))
    assert type(error) is expected
    assert error.retryable is (expected is TransientError)
    assert error.provider == "aws-test" and error.operation == "PutSecretValue"
    assert code in str(error) and str(status) in str(error) and "req-1" in str(error)


def test_retry_after_becomes_the_delay() -> None:
    """A Retry-After header on a throttle becomes TransientError.delay."""
    error = translate(client_error("TooManyRequestsException", 429, {"retry-after": "7"}))
    assert isinstance(error, TransientError) and error.delay == 7.0


def test_an_http_date_retry_after_is_counted_from_the_answers_date() -> None:
    """An HTTP-date Retry-After is the seconds from the answer's own Date to it."""
    headers = {
        "date": "Thu, 01 Jan 2026 12:00:00 GMT",
        "retry-after": "Thu, 01 Jan 2026 12:00:30 GMT",
    }
    error = translate(client_error("TooManyRequestsException", 429, headers))
    assert isinstance(error, TransientError) and error.delay == 30.0


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [("", 408, TransientError), ("NotImplemented", 501, PermanentError)],
)
def test_statuses_alone_are_judged_as_every_provider_judges_them(
    code: str, status: int, expected: type[ProviderError]
) -> None:
    """A 408 may pass and a 501 will not, whatever code (or none) AWS adds."""
    assert type(translate(client_error(code, status))) is expected


def test_the_replaced_exception_loses_its_response_and_its_own_chain() -> None:
    """The ClientError kept as context holds neither AWS's answer nor what it was raised in."""
    original = client_error("ValidationException")
    try:
        try:
            raise ValueError(f"parameters {LEAK}")
        except ValueError:
            raise original from None
    except ClientError:
        error = translate(original)
    assert error.__context__ is original
    assert original.response is None
    assert original.__context__ is None and original.__cause__ is None


@pytest.mark.parametrize(
    ("exc", "expected", "hint"),
    [
        (EndpointConnectionError(endpoint_url="https://x.invalid"), TransientError, "reach"),
        (ConnectTimeoutError(endpoint_url="https://x.invalid"), TransientError, "reach"),
        (ReadTimeoutError(endpoint_url="https://x.invalid"), TransientError, "reach"),
        (NoCredentialsError(), PermanentError, "AWS_PROFILE"),
        (NoRegionError(), PermanentError, "AWS_REGION"),
        (ParamValidationError(report=f"Invalid value {LEAK}"), PermanentError, "validation"),
    ],
)
def test_botocore_errors(exc: Exception, expected: type[ProviderError], hint: str) -> None:
    """Connection errors are transient; missing credentials or region say how to fix them."""
    error = translate(exc)
    assert type(error) is expected
    assert hint in str(error)
    assert LEAK not in str(error)


@pytest.mark.parametrize(
    "exc", [client_error("ValidationException"), ParamValidationError(report=f"bad {LEAK}")]
)
def test_nothing_quoted_reaches_the_error_or_its_traceback(exc: Exception) -> None:
    """Neither the error, its chain nor its printed traceback holds AWS's text or parameters."""
    error = translate(exc)
    assert LEAK not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert LEAK not in "".join(traceback.format_exception(error))
    assert error.__context__ is not None
    assert LEAK not in str(error.__context__)
    assert error.__context__.__traceback__ is None


def test_other_exceptions_pass_through() -> None:
    """Exceptions that are not botocore's (rotator's own, for one) are not touched."""
    with pytest.raises(ConflictError, match="ours"), aws_errors("aws-test", "X"):
        raise ConflictError("ours")


@pytest.mark.usefixtures("aws")
class TestInjectedFailures:
    """Failures injected into in-process moto at botocore's before-call hook."""

    @pytest.fixture
    def store(self, runtime: Runtime) -> SecretsManagerStore:
        """Return a store on a secret that exists with one value."""
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="app/token", SecretString="initial-value-00000001"
        )
        return SecretsManagerStore(SecretsManagerConfig(secret_id="app/token"), runtime, "app")

    def test_throttling_is_transient_and_leaks_nothing(
        self, store: SecretsManagerStore, runtime: Runtime
    ) -> None:
        """A throttled PutSecretValue is a TransientError whose message lacks the value."""
        sdk = client(runtime, "secretsmanager")

        def throttle(params: dict[str, Any]) -> Any:
            # Like a service that echoes the request in its message.
            body = params["body"]
            text = body.decode() if isinstance(body, bytes) else str(body)
            return error_reply("ThrottlingException", 400, f"Rate exceeded for {text}")

        value = SecretValue(LEAK)
        with (
            inject(sdk, "PutSecretValue", throttle) as seen,
            pytest.raises(TransientError) as caught,
        ):
            store.put_pending(new_rotation_id(), value)
        assert seen and LEAK in seen[0]["body"].decode()
        assert caught.value.retryable
        assert LEAK not in str(caught.value)
        assert LEAK not in "".join(traceback.format_exception(caught.value))
        assert LEAK not in str(caught.value.__context__)

    def test_access_denied_is_permission_denied(
        self, store: SecretsManagerStore, runtime: Runtime
    ) -> None:
        """An AccessDeniedException on GetSecretValue is a PermissionDeniedError."""
        sdk = client(runtime, "secretsmanager")
        deny = inject(sdk, "GetSecretValue", lambda _: error_reply("AccessDeniedException", 400))
        with deny, pytest.raises(PermissionDeniedError) as caught:
            store.current()
        assert "AccessDeniedException" in str(caught.value)
        assert "initial-value" not in str(caught.value)

    def test_server_error_is_transient(self, store: SecretsManagerStore, runtime: Runtime) -> None:
        """An InternalServiceError on DescribeSecret is a TransientError."""
        sdk = client(runtime, "secretsmanager")
        fail = inject(sdk, "DescribeSecret", lambda _: error_reply("InternalServiceError", 500))
        with fail, pytest.raises(TransientError):
            store.promote(new_rotation_id())


def test_no_region_is_a_permanent_error_with_a_hint(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, runtime: Runtime
) -> None:
    """With no region anywhere, the store raises PermanentError telling where to set one."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    store = SecretsManagerStore(SecretsManagerConfig(secret_id="x"), runtime, "x")
    with pytest.raises(PermanentError, match="region"):
        store.current()
