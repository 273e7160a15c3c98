"""The kubernetes client's exceptions become rotator errors, without the answer's body."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("kubernetes")

from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import NewConnectionError, ReadTimeoutError, SSLError

from providers.kubernetes.client import session
from providers.kubernetes.errors import (
    ConflictRetry,
    from_exception,
    kubernetes_errors,
    status_outcome,
    status_reason,
)
from rotator.adapters.values import Runtime
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)
from rotator.sandbox.kubernetes import KubernetesEmulator
from tests.providers.kubernetes.helpers import NAMESPACE, SECRET

CANARY = "canary-Hw3Jk8Lp2Qs6Vx9Z"


def api_exception(status: int, reason: str = "", message: str = "", **headers: str) -> ApiException:
    """Return the client's exception for an answer carrying a Status body and ``headers``."""
    exc = ApiException(status=status, reason="Some Reason")
    exc.body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": status,
        }
    )
    exc.headers = headers
    return exc


@pytest.mark.parametrize(
    ("status", "kind", "outcome"),
    [
        (400, PermanentError, "permanent"),
        (401, PermissionDeniedError, "permanent"),
        (403, PermissionDeniedError, "permanent"),
        (404, NotFoundError, "permanent"),
        (408, TransientError, "transient"),
        (409, ConflictRetry, "transient"),
        (422, PermanentError, "permanent"),
        (429, TransientError, "throttled"),
        (500, TransientError, "transient"),
        (302, PermanentError, "permanent"),
        (501, PermanentError, "permanent"),
        (503, TransientError, "transient"),
        (504, TransientError, "transient"),
    ],
)
def test_status_maps_to_error_and_outcome(
    status: int, kind: type[ProviderError], outcome: str
) -> None:
    """Each HTTP status gives the documented error class and metering outcome, and they agree."""
    error = from_exception(api_exception(status), "secrets.patch", "secrets a/b")

    assert type(error) is kind
    assert status_outcome(status) == outcome
    assert isinstance(error, TransientError) == (outcome in ("transient", "throttled"))
    assert f"HTTP {status}" in str(error) and "secrets a/b" in str(error)


def test_the_body_and_the_server_message_are_never_repeated() -> None:
    """An answer quoting the value in its message and body leaves no trace in the error or its
    context."""
    exc = api_exception(
        422, "Invalid", f'Secret "x" is invalid: data[k]: Invalid value: "{CANARY}"'
    )

    with pytest.raises(PermanentError) as caught, kubernetes_errors("secrets.patch", "secrets a/b"):
        raise exc

    error = caught.value
    assert CANARY not in str(error) and CANARY not in repr(error)
    assert "(Invalid)" in str(error)
    assert error.__cause__ is None
    context = error.__context__
    assert context is exc and CANARY not in str(context) and context.body is None
    assert context.__traceback__ is None


def test_retry_after_becomes_the_delay() -> None:
    """A 429's Retry-After header is the TransientError's delay."""
    error = from_exception(api_exception(429, "TooManyRequests", **{"Retry-After": "4"}), "op", "")

    assert isinstance(error, TransientError) and error.delay == 4.0


def test_an_http_date_retry_after_is_counted_from_the_answers_date() -> None:
    """An HTTP-date Retry-After is the seconds from the answer's own Date to it."""
    headers = {
        "Date": "Thu, 01 Jan 2026 12:00:00 GMT",
        "Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT",
    }
    error = from_exception(api_exception(503, "ServiceUnavailable", **headers), "op", "")

    assert isinstance(error, TransientError) and error.delay == 30.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"kind":"Status","reason":"AlreadyExists"}', "AlreadyExists"),
        (b'{"kind":"Status","reason":"Conflict"}', "Conflict"),
        ('{"kind":"Secret","reason":"AlreadyExists"}', ""),
        (json.dumps({"kind": "Status", "reason": f"bad {CANARY}"}), ""),
        ("not json", ""),
        (None, ""),
    ],
)
def test_only_a_status_reason_word_is_taken(body: object, expected: str) -> None:
    """The Status reason is used only when it is one CamelCase word of a Status body."""
    assert status_reason(body) == expected


def test_tls_failure_reported_as_status_zero_is_permanent() -> None:
    """The client's status-0 ApiException (a failed TLS handshake) is a PermanentError."""
    error = from_exception(ApiException(status=0, reason=f"SSLError {CANARY}"), "op", "")

    assert type(error) is PermanentError and "TLS" in str(error) and CANARY not in str(error)


def test_transport_errors_are_transient_and_tls_permanent() -> None:
    """A refused connection or a read timeout is transient; urllib3's SSLError is permanent."""
    refused = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    timeout = ReadTimeoutError(None, "/api", "read timed out")  # type: ignore[arg-type]

    assert type(from_exception(refused, "op", "")) is TransientError
    assert type(from_exception(timeout, "op", "")) is TransientError
    assert type(from_exception(SSLError("bad cert"), "op", "")) is PermanentError


def test_a_configuration_problem_is_permanent() -> None:
    """A kubeconfig the client cannot load is a PermanentError that names where to look."""
    error = from_exception(ConfigException(f"exec plugin said {CANARY}"), "op", "")

    assert type(error) is PermanentError
    assert "KUBECONFIG" in str(error) and CANARY not in str(error)


def test_rotator_errors_pass_through_untouched() -> None:
    """A rotator error raised inside the block is not translated again."""
    original = NotFoundError("already ours")
    with pytest.raises(NotFoundError) as caught, kubernetes_errors("op"):
        raise original
    assert caught.value is original


def test_a_client_side_refusal_keeps_the_value_out(
    kube_env: KubernetesEmulator, runtime: Runtime
) -> None:
    """A request body the client refuses to send (or the server refuses) is a PermanentError with
    no trace of it."""
    kube = session(runtime, None)

    with pytest.raises(PermanentError) as caught:
        kube.call(
            "secrets.patch",
            "secrets x",
            kube.core.patch_namespaced_secret,
            SECRET,
            NAMESPACE,
            CANARY,
        )

    assert CANARY not in str(caught.value) and caught.value.__context__ is None
