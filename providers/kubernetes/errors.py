"""Translate the ``kubernetes`` client's exceptions into :mod:`rotator.errors`.

Every request the adapter makes runs inside :func:`kubernetes_errors`, so
nothing above an adapter ever sees an ``ApiException`` or a urllib3 error.

The translated message holds the operation, the HTTP status, the Kubernetes
``Status`` reason when it is one of the API's fixed CamelCase words
(``NotFound``, ``AlreadyExists``, ``Forbidden``...) and a reason of our own. It
never carries the response body, the response headers or the server's
``message``: a Secret's body holds its data, and a validation error can quote
the submitted value. For the same reason the client's exception is not
chained as the cause, and is emptied
(:func:`providers.transport.failures.defuse`) before Python records it as
the context.

Mapping:

- 401, 403 -> ``PermissionDeniedError``;
- 404 -> ``NotFoundError``;
- 409 -> :class:`ConflictRetry`, a ``TransientError``: the object changed
  between our read and our write (a ``resourceVersion`` precondition failed)
  or someone created it first; reading again and retrying is the fix, and the
  adapter does so itself a few times before giving up;
- 429, 5xx (not 501), 408, a timeout or a lost connection -> ``TransientError``,
  with ``delay`` from ``Retry-After`` when the server sent one (the API
  server's priority-and-fairness throttling does), read by
  :func:`providers.transport.retry_after.asked_wait`;
- a failed TLS handshake, a kubeconfig that cannot be loaded, a client-side
  validation error and any other status -> ``PermanentError``.

The ``kubernetes`` package is imported inside the functions: the adapter
module imports this module at load time, and loading the registry must not
import the SDK.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from providers.transport import failures
from providers.transport.failures import Outcome, defuse, error_outcome, vetted
from providers.transport.retry_after import asked_wait
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

PROVIDER = "kubernetes"

# A Status reason is a fixed CamelCase word of the API (metav1.StatusReason);
# anything else in that field is not ours to repeat.
_STATUS_REASON = re.compile(r"[A-Z][A-Za-z]{1,63}")


def sdk(module: str) -> Any:
    """Import a module of the ``kubernetes`` client on first use, typed ``Any``.

    The client ships no type information before release 37 and only partial
    annotations since (its config loaders are untyped), so the adapter holds
    it as ``Any`` at this one boundary: ``mypy --strict`` passes with every
    supported release and no per-module configuration.
    """
    return importlib.import_module(module)


class ConflictRetry(TransientError):
    """HTTP 409: the object changed under us, or was created by someone else first.

    Transient: reading the object again and redoing the change is the fix.
    The adapter retries it itself a few times; a persistent conflict reaches
    the engine as an ordinary ``TransientError``.
    """


def status_reason(body: Any) -> str:
    """Return the ``reason`` of a Kubernetes ``Status`` body, or ``""`` if absent or unusual."""
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return ""
    if not isinstance(body, Mapping) or body.get("kind") != "Status":
        return ""
    reason = body.get("reason")
    if not isinstance(reason, str):
        return ""
    # Scrubbed first (vetted): an echoed value made of letters alone looks like a reason.
    return vetted(reason, _STATUS_REASON, 64)


#: The status the adapter retries itself besides the shared ones: a conflict.
CONFLICT = 409


def status_outcome(status: int) -> Outcome:
    """Return how an answer with HTTP ``status`` ends for ``rotator_provider_requests_total``.

    The rule every adapter shares (:func:`providers.transport.failures.status_outcome`),
    with a 409 ``transient`` too (:class:`ConflictRetry`); a status 0 (no
    answer: a failed TLS handshake) is ``permanent``. It agrees with the
    error :func:`from_status` raises.
    """
    return failures.status_outcome(status, passing_statuses=(CONFLICT,))


def from_status(
    status: int,
    reason: str,
    headers: Any,
    operation: str,
    target: str,
) -> ProviderError:
    """Translate one error answer into the matching rotator error.

    ``reason`` is the ``Status`` reason (already vetted by
    :func:`status_reason`); ``target`` names what was addressed, such as
    ``secrets payments/payments-db`` (identifiers only).
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    detail = f"{target}: HTTP {status} {phrase}" if target else f"HTTP {status} {phrase}"
    if reason and reason.replace(" ", "") != phrase.replace(" ", ""):
        detail += f" ({reason})"
    common: dict[str, Any] = {"provider": PROVIDER, "operation": operation}
    if status in (401, 403):
        why = (
            "the API server refused the credentials (check the kubeconfig user or the "
            "service-account token)"
            if status == 401
            else "the identity rotator runs as may not do this (check its RBAC Role)"
        )
        return PermissionDeniedError(f"{detail}: {why}", **common)
    if status == 404:
        return NotFoundError(f"{detail}: it does not exist", **common)
    if status == CONFLICT:
        return ConflictRetry(
            f"{detail}: the object changed or was created meanwhile; retry",
            delay=asked_wait(headers),
            **common,
        )
    outcome = status_outcome(status)
    if outcome == "throttled":
        return TransientError(
            f"{detail}: throttled by the API server; retry later",
            delay=asked_wait(headers),
            **common,
        )
    if outcome == "transient":
        return TransientError(
            f"{detail}: the API server failed to serve the request; retry later",
            delay=asked_wait(headers),
            **common,
        )
    if status == 422:
        return PermanentError(f"{detail}: the API server found the change invalid", **common)
    return PermanentError(f"{detail}: the API server refused the request", **common)


def from_exception(exc: BaseException, operation: str, target: str) -> ProviderError:
    """Translate any exception the client raised for one request into a rotator error."""
    from urllib3.exceptions import HTTPError, SSLError

    exceptions = sdk("kubernetes.client.exceptions")
    ApiException = exceptions.ApiException
    OpenApiException = exceptions.OpenApiException
    ConfigException = sdk("kubernetes.config.config_exception").ConfigException

    common: dict[str, Any] = {"provider": PROVIDER, "operation": operation}
    where = f"{target}: " if target else ""
    name = type(exc).__name__
    if isinstance(exc, ApiException):
        status = exc.status if isinstance(exc.status, int) else 0
        if status == 0:
            # The client reports a failed TLS handshake (and a request it
            # cannot even build) as status 0, with urllib3's text as reason.
            return PermanentError(
                f"{where}{name}: no answer from the API server (TLS handshake failed, or the "
                "request could not be built; check the kubeconfig's server and CA)",
                **common,
            )
        return from_status(status, status_reason(exc.body), exc.headers, operation, target)
    if isinstance(exc, SSLError):
        return PermanentError(
            f"{where}{name}: TLS handshake with the API server failed "
            "(check the kubeconfig's certificate-authority)",
            **common,
        )
    if isinstance(exc, HTTPError | ConnectionError | TimeoutError):
        return TransientError(
            f"{where}{name}: could not reach the API server; retry later", **common
        )
    if isinstance(exc, ConfigException):
        return PermanentError(
            f"{name}: no usable Kubernetes configuration (in a cluster: the pod's "
            "service-account token; elsewhere: KUBECONFIG or ~/.kube/config, and the "
            "policy's context)",
            **common,
        )
    if isinstance(exc, OpenApiException):
        return PermanentError(f"{where}{name}: the request failed client-side validation", **common)
    return PermanentError(f"{where}{name}: the Kubernetes client failed", **common)


def request_outcome(exc: BaseException) -> Outcome:
    """Return how a request that raised ``exc`` ended, for ``runtime.on_request``."""
    if isinstance(exc, sdk("kubernetes.client.exceptions").ApiException):
        return status_outcome(exc.status if isinstance(exc.status, int) else 0)
    return error_outcome(from_exception(exc, "", ""))


@contextmanager
def kubernetes_errors(operation: str, target: str = "") -> Iterator[None]:
    """Run the block, translating the client's exceptions into rotator errors.

    ``operation`` is the fixed request name (``secrets.patch``); ``target``
    names what was addressed (``secrets payments/payments-db``). Rotator
    errors raised inside pass through untouched.

    Raises:
        PermissionDeniedError: 401 or 403.
        NotFoundError: 404.
        ConflictRetry: 409 (a ``TransientError``).
        TransientError: 408, 429, 5xx but 501, a timeout or a lost connection
            (``delay`` from ``Retry-After`` when sent).
        PermanentError: anything else, including a kubeconfig that cannot be
            loaded, a TLS failure and client-side validation errors.
    """
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:  # noqa: BLE001 (every SDK failure is translated, none escapes)
        error = from_exception(exc, operation, target)
        defuse(exc, type(exc).__name__)
        raise error from None
