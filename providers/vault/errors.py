"""Translate hvac and requests exceptions into :mod:`rotator.errors` at the adapter boundary.

Every Vault call an adapter makes runs inside :func:`vault_errors` (usually
through :meth:`providers.vault.client.VaultSession.call`), so nothing above
an adapter ever sees an hvac exception.

The translated message holds the HTTP status and a reason of our own. Vault's
error strings are server-generated, but some of them quote request fields
(a JSON parse error, a field validation error, an accessor, a path), so they
are never copied: a message Vault sends is only *recognised* against a short
list of known texts (:data:`KNOWN_MESSAGES`) and replaced by our canonical
wording; anything else gets a generic reason for its status. For the same
reason the hvac exception is not chained as the cause, and is emptied
(:func:`providers.transport.failures.defuse`) before Python records it as
the context.

A 429 (a rate-limit quota) becomes a ``TransientError`` whose ``delay`` is the
answer's ``Retry-After``, when Vault sent one (the metered adapter of
:mod:`providers.vault.client` reads it with
:func:`providers.transport.retry_after.asked_wait` and notes it on the hvac
exception as ``retry_after``). The same classification gives each request
its outcome for ``runtime.on_request`` (:func:`request_outcome`).

hvac and requests are imported inside the functions: adapter modules import
this module at load time, and loading the registry must not import the SDK.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from providers.transport.failures import Outcome, defuse, error_outcome
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)


class TokenRejectedError(PermissionDeniedError):
    """Vault answered 401 or 403 ``permission denied``.

    Either the token lacks a capability, or it has expired or been revoked;
    :class:`providers.vault.client.VaultSession` tells them apart by logging
    in again once. Above the adapters it is a ``PermissionDeniedError`` like
    any other.
    """


@dataclass(frozen=True)
class Known:
    """A Vault error text we recognise: how to match it and what it means."""

    #: Stable name adapters test for (``"accessor-missing"``, ``"cas-mismatch"``...).
    code: str
    pattern: re.Pattern[str]
    reason: str
    kind: type[ProviderError]


def _known(code: str, regex: str, reason: str, kind: type[ProviderError]) -> Known:
    return Known(code, re.compile(regex, re.IGNORECASE), reason, kind)


#: Vault error texts we recognise, matched against each (unwrapped) error
#: string. The first match decides the rotator error and its wording; the
#: Vault text itself is never copied into a message.
KNOWN_MESSAGES: tuple[Known, ...] = (
    _known(
        "cas-mismatch",
        r"^check-and-set parameter did not match the current version",
        "check-and-set parameter did not match the current version "
        "(someone else wrote this secret meanwhile)",
        ConflictError,
    ),
    _known(
        "cas-required",
        r"^check-and-set parameter required for this call",
        "check-and-set parameter required for this call",
        PermanentError,
    ),
    _known(
        "cas-invalid",
        r"^error parsing check-and-set parameter",
        "error parsing check-and-set parameter",
        PermanentError,
    ),
    _known("permission-denied", r"^permission denied", "permission denied", TokenRejectedError),
    _known("no-token", r"^missing client token", "missing client token", TokenRejectedError),
    _known(
        "login-refused",
        r"^invalid role or secret id|^invalid secret id$|^invalid role id",
        "login refused: invalid role or secret ID",
        PermissionDeniedError,
    ),
    _known(
        "sudo-required",
        r"^root or sudo privileges required",
        "root or sudo privileges required (grant the sudo capability on this path)",
        PermissionDeniedError,
    ),
    _known(
        "policy-not-subset",
        r"^child policies must be subset of parent",
        "child policies must be subset of parent (the rotator's token lacks a policy "
        "it is asked to grant)",
        PermissionDeniedError,
    ),
    _known("token-missing", r"^invalid accessor", "no token has this accessor", NotFoundError),
    _known("token-missing", r"^token not found", "token not found", NotFoundError),
    _known(
        "accessor-missing",
        r"^failed to find accessor entry for secret_id_accessor",
        "no secret-id has this accessor",
        NotFoundError,
    ),
    _known(
        "accessor-missing",
        r"^invalid secret id accessor",
        "no secret-id has this accessor",
        NotFoundError,
    ),
    _known(
        "role-missing",
        r'^role ".*" does not exist',
        "the AppRole role does not exist",
        NotFoundError,
    ),
    _known(
        "namespace-missing",
        r"^namespace not found",
        "namespace not found: check VAULT_NAMESPACE (Vault has no such namespace)",
        NotFoundError,
    ),
    _known(
        "no-route",
        r"^no handler for route",
        "no handler for route (is the secrets engine or auth method mounted there?)",
        NotFoundError,
    ),
    _known("sealed", r"^vault is sealed", "Vault is sealed", TransientError),
)

#: hvac exception class name -> (HTTP status, rotator error, generic reason).
_BY_CLASS: dict[str, tuple[int | None, type[ProviderError], str]] = {
    "InvalidRequest": (400, PermanentError, "Vault refused the request as invalid"),
    "Unauthorized": (401, TokenRejectedError, "Vault refused the credentials"),
    "Forbidden": (
        403,
        TokenRejectedError,
        "permission denied (check the token's policies, or that it has not expired)",
    ),
    "InvalidPath": (404, NotFoundError, "no such path"),
    "RateLimitExceeded": (429, TransientError, "rate limited by Vault; retry later"),
    "InternalServerError": (500, TransientError, "Vault failed to serve the request"),
    "VaultNotInitialized": (501, PermanentError, "Vault is not initialized"),
    "BadGateway": (502, TransientError, "bad gateway in front of Vault; retry later"),
    "VaultDown": (503, TransientError, "Vault is sealed or in standby; retry later"),
    "UnexpectedError": (None, PermanentError, "unexpected answer from Vault"),
    "ParamValidationError": (None, PermanentError, "the request failed client-side validation"),
}


def unwrap(text: str) -> list[str]:
    """Split Go's multierror ``1 error occurred:\\n\\t* msg\\n\\n`` into its messages."""
    items = re.findall(r"^\s*\*\s*(.+?)\s*$", text, flags=re.MULTILINE)
    return items if items else [text.strip()]


def answer_body(exc: BaseException) -> Any:
    """Return the JSON answer an hvac exception carries, or ``None`` if it is not JSON.

    hvac parses the body (``exc.json``, and ``exc.errors`` from it) only when
    the Content-Type is exactly ``application/json``. A proxy or gateway that
    answers ``application/json; charset=utf-8`` leaves only the raw text
    (``exc.text``): it is parsed here, so an answer means the same behind one.
    """
    body = getattr(exc, "json", None)
    if body is not None:
        return body
    text = getattr(exc, "text", None)
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:  # a proxy's own page, or no JSON at all
        return None


def _errors(exc: BaseException) -> object:
    """Return the ``errors`` list of the answer: hvac's, else the raw body's (see answer_body)."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        body = answer_body(exc)
        errors = body.get("errors") if isinstance(body, dict) else None
    return errors


def error_strings(exc: BaseException) -> list[str]:
    """Return the error strings Vault sent with an hvac exception (unwrapped).

    Looks at the ``errors`` list of the JSON envelope, and at ``data.error``
    (how Vault shapes an error it answers with a custom status code), whatever
    the Content-Type said (see :func:`answer_body`).
    """
    found: list[str] = []
    errors = _errors(exc)
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, str):
                found.extend(unwrap(item))
    body = answer_body(exc)
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            found.extend(unwrap(data["error"]))
    return found


def recognise(exc: BaseException) -> Known | None:
    """Return the first :data:`KNOWN_MESSAGES` entry matching one of Vault's error strings."""
    for text in error_strings(exc):
        for known in KNOWN_MESSAGES:
            if known.pattern.search(text):
                return known
    return None


def is_known(exc: BaseException, *codes: str) -> bool:
    """Tell whether Vault's error strings with ``exc`` are one of the known ``codes``."""
    known = recognise(exc)
    return known is not None and known.code in codes


def nothing_there(exc: BaseException) -> bool:
    """Tell whether a 404 means only "nothing there": Vault's empty ``errors`` list.

    Vault answers a read of a missing key, version or list with ``{"errors":[]}``.
    Every other 404 explains itself (``namespace not found``, ``no handler for
    route``), or is not Vault's answer at all (a proxy's page): a problem to
    report, never an absent secret. The list is read from the raw body when
    hvac did not parse it (a Content-Type with a charset: see :func:`answer_body`).
    """
    return _errors(exc) == []


def from_vault_error(exc: BaseException, provider: str, operation: str) -> ProviderError:
    """Translate one hvac ``VaultError`` into the matching rotator error.

    The message is built from the HTTP status and a recognised reason (or a
    generic one for the status); Vault's own text is left out.
    """
    status, kind, reason = _BY_CLASS.get(
        type(exc).__name__, (None, PermanentError, "Vault refused the request")
    )
    known = recognise(exc)
    if known is not None:
        kind, reason = known.kind, known.reason
    detail = f"HTTP {status}" if status is not None else type(exc).__name__
    if issubclass(kind, TransientError):
        delay = getattr(exc, "retry_after", None)
        return TransientError(
            f"{detail}: {reason}",
            provider=provider,
            operation=operation,
            delay=delay if isinstance(delay, float | int) else None,
        )
    return kind(f"{detail}: {reason}", provider=provider, operation=operation)


def request_outcome(exc: BaseException) -> Outcome:
    """Return how a request that raised ``exc`` ended, for ``runtime.on_request``.

    ``throttled`` for a 429, ``transient`` or ``permanent`` as the error
    :func:`vault_errors` raises for it says (an expected 404 is
    ``permanent``: see :mod:`providers.metering`).
    """
    import requests
    from hvac.exceptions import VaultError

    if isinstance(exc, VaultError):
        if type(exc).__name__ == "RateLimitExceeded":
            return "throttled"
        return error_outcome(from_vault_error(exc, "", ""))
    if isinstance(exc, requests.exceptions.RequestException):
        return error_outcome(from_transport_error(exc, "", ""))
    return "permanent"


def from_transport_error(exc: BaseException, provider: str, operation: str) -> ProviderError:
    """Translate a requests exception raised before or without an answer from Vault."""
    import requests

    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError(
            f"{name}: TLS handshake with Vault failed (check VAULT_ADDR and VAULT_CACERT)",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return TransientError(
            f"{name}: could not reach Vault; retry later", provider=provider, operation=operation
        )
    return PermanentError(
        f"{name}: the HTTP request to Vault failed", provider=provider, operation=operation
    )


@contextmanager
def vault_errors(provider: str, operation: str) -> Iterator[None]:
    """Run the block, translating hvac and requests exceptions into rotator errors.

    ``provider`` names the adapter (``vault-kv``) and ``operation`` the Vault
    call (``read secret``); both end up in the error's prefix.

    Raises:
        TransientError: 429 (``delay`` from ``Retry-After``), 500, 502, 503,
            a sealed Vault, a timeout or a lost connection.
        PermissionDeniedError: 401, 403, a refused login or a missing sudo
            capability.
        NotFoundError: 404, or a token, accessor or role that does not exist.
        ConflictError: a check-and-set mismatch (someone else wrote meanwhile).
        PermanentError: anything else (a 400, an uninitialized Vault, a TLS
            failure, a client-side validation error).
    """
    import requests
    from hvac.exceptions import VaultError

    try:
        yield
    except VaultError as exc:
        error = from_vault_error(exc, provider, operation)
        defuse(exc, f"{type(exc).__name__} when calling {operation}")
        raise error from None
    except requests.exceptions.RequestException as exc:
        error = from_transport_error(exc, provider, operation)
        defuse(exc, type(exc).__name__)
        raise error from None
