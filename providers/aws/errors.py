"""Translate botocore exceptions into :mod:`rotator.errors` at the adapter boundary.

Every AWS call an adapter makes runs inside :func:`aws_errors`, so nothing
above an adapter ever sees a botocore exception. The translated message holds
the AWS error code, the HTTP status, the request id (for CloudTrail and AWS
support) and a short reason of our own. It never carries the AWS message text
or the request parameters, since either could echo a secret value. For the
same reason the botocore exception is not chained as the cause, and is
emptied (:func:`providers.transport.failures.defuse`) before Python records
it as the context.

Statuses are judged by the rule every adapter shares
(:func:`providers.transport.failures.status_outcome`), with AWS's error codes
added: a throttling code is throttled and a server-side code transient
whatever the status.

botocore is imported inside the functions: adapter modules import this module
at load time, and loading the registry must not import the SDK.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from providers.transport.failures import (
    Outcome,
    defuse,
    error_outcome,
    status_outcome,
    vetted,
)
from providers.transport.retry_after import asked_wait
from rotator.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError

#: Error codes that mean "slow down": trying again later helps.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        # Secrets Manager and API Gateway use this for request-rate quotas
        # (botocore's standard retry mode retries it too); IAM's own
        # ``LimitExceeded`` is a hard quota and maps to LimitExceededError.
        "LimitExceededException",
    }
)

#: Error codes of a service-side failure that may pass.
SERVER_CODES = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "InternalServiceError",
        "InternalServerError",
        "InternalServerErrorException",
        "InternalServiceErrorException",
        "ServiceFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ConcurrentModification",
        "ConcurrentModificationException",
        "EntityTemporarilyUnmodifiable",
    }
)

PERMISSION_CODES = frozenset(
    {
        "UnauthorizedOperation",
        "UnauthorizedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
    }
)

NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NoSuchEntity", "NotFoundException"})

CONFLICT_CODES = frozenset(
    {
        "ConflictException",
        "ResourceExistsException",
        "EntityAlreadyExists",
        "DeleteConflict",
    }
)

#: IAM's hard quotas (two access keys per user, for instance).
LIMIT_CODES = frozenset({"LimitExceeded"})


def error_code(exc: BaseException) -> str:
    """Return the AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return ""
    error = response.get("Error")
    if not isinstance(error, Mapping):
        return ""
    return vetted(error.get("Code", ""), _IDENTIFIER, 100)


#: What an AWS error code or request id looks like; anything else is not copied.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:#/+=-]{0,99}")


def answer_outcome(status: int, code: str) -> Outcome:
    """Return how an AWS answer ends for ``rotator_provider_requests_total``.

    The shared rule, with AWS's codes: ``throttled`` for a throttling code,
    ``transient`` for a server-side code, ``permanent`` for any other code
    (a 404 probe included: see :mod:`providers.metering`). The same judgement
    decides the error :func:`from_client_error` raises.
    """
    return status_outcome(status, code, throttling=THROTTLING_CODES, passing=SERVER_CODES)


def attempt_outcome(response: Any, caught: BaseException | None) -> Outcome:
    """Return how one botocore attempt ended, from what ``needs-retry`` hands its handlers.

    ``response`` is botocore's ``(http_response, parsed)`` pair (``None``
    when no answer came); ``caught`` the exception raised instead (a lost
    connection, a timeout).
    """
    if caught is not None:
        from botocore.exceptions import BotoCoreError

        if isinstance(caught, BotoCoreError):
            return error_outcome(from_botocore_error(caught, "", ""))
        return "permanent"
    if not isinstance(response, tuple) or len(response) != 2:
        return "transient"
    http, parsed = response
    status = getattr(http, "status_code", 0)
    status = status if isinstance(status, int) else 0
    error = parsed.get("Error") if isinstance(parsed, Mapping) else None
    code = str(error.get("Code", "")) if isinstance(error, Mapping) else ""
    return answer_outcome(status, code)


def from_client_error(exc: ClientError, provider: str, operation: str) -> ProviderError:
    """Translate one botocore ``ClientError`` into the matching rotator error.

    The result's message is built from the error code, the HTTP status and
    the request id only; AWS's own message text is left out.
    """
    code = error_code(exc)
    meta = exc.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    request_id = vetted(meta.get("RequestId"), _IDENTIFIER, 100)
    detail = f"{code or 'UnknownError'} (HTTP {status or '?'}"
    detail += f", request id {request_id})" if request_id else ")"

    outcome = answer_outcome(status, code)
    if outcome == "throttled":
        return TransientError(
            f"{detail}: throttled by AWS; retry later",
            delay=asked_wait(meta.get("HTTPHeaders")),
            provider=provider,
            operation=operation,
        )
    if outcome == "transient":
        return TransientError(
            f"{detail}: AWS failed to serve the request; retry later",
            provider=provider,
            operation=operation,
        )
    if code.startswith("AccessDenied") or code in PERMISSION_CODES:
        return PermissionDeniedError(
            f"{detail}: the AWS identity rotator runs as may not do this "
            "(check its IAM policy and credentials)",
            provider=provider,
            operation=operation,
        )
    if code in NOT_FOUND_CODES:
        return NotFoundError(
            f"{detail}: the resource does not exist", provider=provider, operation=operation
        )
    if code in LIMIT_CODES:
        return LimitExceededError(
            f"{detail}: an AWS quota is reached", provider=provider, operation=operation
        )
    if code in CONFLICT_CODES:
        return ConflictError(
            f"{detail}: the resource is not in the expected state",
            provider=provider,
            operation=operation,
        )
    return PermanentError(
        f"{detail}: AWS refused the request", provider=provider, operation=operation
    )


def from_botocore_error(exc: BotoCoreError, provider: str, operation: str) -> ProviderError:
    """Translate a botocore error raised before or without an AWS answer."""
    from botocore import exceptions as bx

    name = type(exc).__name__
    if isinstance(exc, bx.SSLError):
        return PermanentError(
            f"{name}: TLS handshake with the AWS endpoint failed "
            "(check AWS_ENDPOINT_URL and AWS_CA_BUNDLE)",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, bx.ConnectionError | bx.HTTPClientError | bx.IncompleteReadError):
        return TransientError(
            f"{name}: could not reach the AWS endpoint; retry later",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return PermanentError(
            f"{name}: no usable AWS credentials; set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an ambient identity "
            "(instance profile, IRSA, ECS task role)",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, bx.CredentialRetrievalError | bx.TokenRetrievalError):
        return PermanentError(
            f"{name}: could not obtain AWS credentials from the configured source "
            "(check the profile's credential_process, SSO session or role settings)",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, bx.NoRegionError):
        return PermanentError(
            f"{name}: no AWS region; set `region` in the policy or AWS_REGION / "
            "AWS_DEFAULT_REGION in the environment",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, bx.ParamValidationError):
        # botocore's report quotes the offending parameter values: leave it out.
        return PermanentError(
            f"{name}: the request failed client-side validation",
            provider=provider,
            operation=operation,
        )
    return PermanentError(f"{name}: the AWS SDK failed", provider=provider, operation=operation)


@contextmanager
def aws_errors(provider: str, operation: str) -> Iterator[None]:
    """Run the block, translating botocore exceptions into rotator errors.

    ``provider`` names the adapter (``aws-secretsmanager``) and ``operation``
    the AWS API call (``PutSecretValue``); both end up in the error's prefix.

    Raises:
        TransientError: throttling, a 5xx, a timeout or a lost connection.
        PermissionDeniedError: access denied or unrecognised credentials.
        NotFoundError: the named resource does not exist.
        LimitExceededError: an IAM quota is reached.
        ConflictError: the resource exists already or changed under us.
        PermanentError: anything else, including missing credentials or region.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = from_client_error(exc, provider, operation)
        defuse(exc, f"An error occurred ({error_code(exc)}) when calling {operation}")
        raise error from None
    except BotoCoreError as exc:
        error = from_botocore_error(exc, provider, operation)
        defuse(exc, type(exc).__name__)
        raise error from None
