"""Translate Azure SDK exceptions into :mod:`rotator.errors` at the adapter boundary.

Every Key Vault call an adapter makes runs inside :func:`azure_errors`, so
nothing above an adapter ever sees an ``azure.core`` or ``azure.identity``
exception.

The translated message holds the HTTP status, Key Vault's error code (and
inner error code, such as ``SecretDisabled`` or
``ObjectIsDeletedButRecoverable``) and a reason of our own. Key Vault's own
message text is never copied: it names the secret at best, and the SDK's
rendering of an error appends the response body, or (for a transport error)
the request it failed to send, whose body may hold the value being set. For
the same reason the SDK exception is not chained as the cause, and is
emptied (:func:`providers.transport.failures.defuse`: text, response, parsed
error, inner exception, traceback) before Python records it as the context.

The same classification gives each HTTP request its outcome for
``runtime.on_request`` (:func:`status_outcome`, the rule every adapter
shares with Key Vault's busy 409 added, and :func:`exception_outcome`),
and :func:`keyvault_operation` names the request by the Key Vault REST call
it is (``secrets.get``, ``secrets.set``...), read from its verb and path.

The same machinery serves the other Azure services an adapter calls (Azure
Resource Manager, for API Management): a :class:`Service` passed as
``service=`` says how messages name the service and what they advise;
:data:`KEY_VAULT` is the default.

``azure.core`` and ``azure.identity`` are imported inside the functions:
adapter modules import this module at load time, and loading the registry
must not import the SDK.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from providers.transport import failures
from providers.transport.failures import Outcome, defuse, error_outcome, may_pass, vetted
from providers.transport.retry_after import asked_wait, delay_seconds, header_value
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

#: Inner error codes of a 409 that pass by themselves: retry later.
BUSY_CODES = frozenset({"ObjectIsBeingDeleted", "ObjectIsBeingRecovered"})
#: Inner error code of a 409 on a name whose secret is soft-deleted.
DELETED_CODE = "ObjectIsDeletedButRecoverable"
#: Inner error codes of a 403 about the version read, not the caller's rights.
DISABLED_CODE = "SecretDisabled"
EXPIRED_CODE = "SecretExpired"
#: What an error code looks like; a "code" that does not is not copied into a message.
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
#: DNS zones of Key Vault in the Azure clouds (public, China, US Government).
KEYVAULT_ZONES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net")

#: What to say when no credential of the chain can get a token.
IDENTITY_HINT = (
    "no Azure identity could get a token (none is configured, or the one configured is "
    "unavailable or was refused): on AKS use workload identity (AZURE_CLIENT_ID, "
    "AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE), on Azure VMs and App Service a managed "
    "identity (AZURE_CLIENT_ID for a user-assigned one), elsewhere a service principal "
    "(AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH) "
    "or `az login`; pin one with ROTATOR_AZURE_CREDENTIAL=workload|managed|environment|cli"
)


class SoftDeletedError(PermanentError):
    """The secret is deleted but recoverable: its name cannot be reused until recovered or purged.

    Key Vault answers 409 ``ObjectIsDeletedButRecoverable`` to a write. The
    message names the ``az`` commands that clear it. Above the adapters it
    is a ``PermanentError`` like any other.
    """


@dataclass(frozen=True)
class Service:
    """How translated errors name the Azure service called, and what they advise.

    Every field is a phrase of a message; none may hold a value (identifiers
    of the resource called are fine).
    """

    #: The service as a sentence names it: ``Key Vault``.
    name: str
    #: Where requests go, as a sentence names it: ``the vault``.
    endpoint: str
    #: The reason given for a 404.
    not_found: str
    #: The reason given for a 401 (the service refused the token).
    unauthenticated: str
    #: The reason given for a 403 about the caller's rights.
    denied: str
    #: The reason given for a 409 with no more precise meaning.
    conflict: str
    #: What to check when the TLS handshake fails.
    tls_hint: str
    #: What to say when the SDK refuses a plain-HTTP URL.
    https_hint: str


#: Key Vault's wording (the default of every function here).
KEY_VAULT = Service(
    name="Key Vault",
    endpoint="the vault",
    not_found="not found in the vault",
    unauthenticated=(
        "authentication failed: the identity could not get a token, or Key Vault "
        "refused it (check the identity's tenant and configuration)"
    ),
    denied=(
        "the Azure identity rotator runs as may not do this (grant it the "
        "'Key Vault Secrets Officer' role on the vault, or check the vault's firewall)"
    ),
    conflict="the secret is not in the expected state",
    tls_hint="check vault_url, and AZURE_CA_BUNDLE or REQUESTS_CA_BUNDLE for a private CA",
    https_hint="Key Vault needs an https:// vault URL",
)


@dataclass(frozen=True)
class AzureFailure:
    """What an Azure exception says, reduced to identifiers (never message text)."""

    status: int | None
    code: str
    inner_code: str
    retry_after: float | None = None

    def describe(self, name: str) -> str:
        """Return ``HTTP 409 Conflict/ObjectIsDeletedButRecoverable`` (or the exception name)."""
        parts = [f"HTTP {self.status}" if self.status is not None else name]
        codes = "/".join(c for c in (self.code, self.inner_code) if c)
        if codes:
            parts.append(codes)
        return " ".join(parts)


#: The names :func:`keyvault_operation` gives, one per Key Vault REST call.
OPERATIONS = frozenset(
    {
        "secrets.get",
        "secrets.set",
        "secrets.update",
        "secrets.delete",
        "secrets.list",
        "secrets.list_versions",
        "secrets.backup",
        "secrets.restore",
        "secrets.get_deleted",
        "secrets.purge_deleted",
        "secrets.recover_deleted",
        "secrets.list_deleted",
        "other",
    }
)


def keyvault_operation(method: str, path: str) -> str:
    """Name a Key Vault request by its REST call (one of :data:`OPERATIONS`), never its path.

    Secret names cannot hold a ``/``, so the path's shape tells the call
    apart: ``GET /secrets/{name}/{version}`` is ``secrets.get``, ``PUT
    /secrets/{name}`` ``secrets.set``, ``POST /deletedsecrets/{name}/recover``
    ``secrets.recover_deleted``, and so on.
    """
    verb = method.upper()
    parts = [p.lower() for p in path.split("/") if p]
    if not parts:
        return "other"
    head, rest = parts[0], parts[1:]
    if head == "secrets":
        if not rest:
            return "secrets.list" if verb == "GET" else "other"
        if rest == ["restore"] and verb == "POST":
            return "secrets.restore"
        tail = rest[1] if len(rest) > 1 else ""
        if tail == "versions" and verb == "GET":
            return "secrets.list_versions"
        if tail == "backup" and verb == "POST":
            return "secrets.backup"
        by_verb = {
            "GET": "secrets.get",
            "PUT": "secrets.set",
            "PATCH": "secrets.update",
            "DELETE": "secrets.delete",
        }
        return by_verb.get(verb, "other")
    if head == "deletedsecrets":
        if not rest:
            return "secrets.list_deleted" if verb == "GET" else "other"
        if len(rest) > 1 and rest[1] == "recover" and verb == "POST":
            return "secrets.recover_deleted"
        return {"GET": "secrets.get_deleted", "DELETE": "secrets.purge_deleted"}.get(verb, "other")
    return "other"


def status_outcome(status: int, inner_code: str = "") -> Outcome:
    """Return how a Key Vault answer ends, as :func:`from_http_error` would judge it.

    The rule every adapter shares (:func:`providers.transport.failures.status_outcome`),
    with a 409 while the secret is being deleted or recovered ``transient``
    too; an expected 404 is ``permanent`` (see :mod:`providers.metering`).
    """
    return failures.status_outcome(status, inner_code if status == 409 else "", passing=BUSY_CODES)


def exception_outcome(exc: BaseException) -> Outcome:
    """Return how a request that got no answer ended: transient, unless retrying cannot help."""
    return error_outcome(from_azure_error(exc, "", ""))


def inner_code(body: Any) -> str:
    """Return the inner error code of a Key Vault error body (``""`` if it has none)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    inner = error.get("innererror") if isinstance(error, Mapping) else None
    return _safe_code(inner.get("code")) if isinstance(inner, Mapping) else ""


#: Headers Azure counts a wait in milliseconds in, read before ``Retry-After``.
MILLISECOND_HEADERS = ("retry-after-ms", "x-ms-retry-after-ms")


def _retry_after(headers: Any) -> float | None:
    """Read ``retry-after-ms`` (or ``x-ms-retry-after-ms``), else ``Retry-After``."""
    for name in MILLISECOND_HEADERS:
        asked = delay_seconds(header_value(headers, name), unit=0.001)
        if asked is not None:
            return asked
    return asked_wait(headers)


def _safe_code(raw: object) -> str:
    """Return an error code if it looks like one (an identifier); anything else is dropped."""
    # Scrubbed first (vetted): an echoed value made of letters and digits looks like a code.
    return vetted(raw, _CODE, 64)


def inspect(exc: BaseException) -> AzureFailure:
    """Return the status, the error codes and ``Retry-After`` of an Azure exception."""
    status = getattr(exc, "status_code", None)
    code = ""
    inner = ""
    error = getattr(exc, "error", None)
    if error is not None:
        code = _safe_code(getattr(error, "code", ""))
        innererror = getattr(error, "innererror", None)
        if isinstance(innererror, Mapping):
            inner = _safe_code(innererror.get("code"))
    if not code:
        model = getattr(exc, "model", None)
        body = getattr(model, "error", None)
        code = _safe_code(getattr(body, "code", ""))
        nested = getattr(body, "inner_error", None)
        inner = inner or _safe_code(getattr(nested, "code", ""))
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return AzureFailure(
        status if isinstance(status, int) else None, code, inner, _retry_after(headers)
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield ``exc``, its inner exception and their causes and contexts (bounded)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 16:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (getattr(item, "inner_exception", None), item.__cause__, item.__context__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        for arg in item.args:
            if isinstance(arg, BaseException):
                todo.append(arg)


def _is_tls_failure(exc: BaseException) -> bool:
    return any(
        type(item).__name__ in {"SSLError", "SSLCertVerificationError"} for item in _chain(exc)
    )


def recover_command(vault: str, name: str) -> str:
    """Return the az commands that get a soft-deleted secret out of the way."""
    return (
        f"recover it with `az keyvault secret recover --vault-name {vault} --name {name}` "
        f"or, to drop it for good, `az keyvault secret purge --vault-name {vault} --name {name}`"
    )


def deleted_but_recoverable(
    vault: str, name: str, *, provider: str, operation: str
) -> SoftDeletedError:
    """Return the error for a secret that is soft-deleted (its name cannot be reused)."""
    return SoftDeletedError(
        f"secret {name} is deleted but recoverable (soft-deleted); {recover_command(vault, name)}",
        provider=provider,
        operation=operation,
    )


def vault_name(vault_url: str) -> str:
    """Return the vault name ``az`` wants (``myvault`` of ``https://myvault.vault.azure.net``).

    For a host outside Key Vault's DNS zones (an emulator) the whole host is returned.
    """
    from urllib.parse import urlsplit

    host = urlsplit(vault_url).hostname or vault_url
    if any(host.endswith(zone) for zone in KEYVAULT_ZONES):
        return host.split(".", 1)[0]
    return host


def from_http_error(
    exc: BaseException,
    provider: str,
    operation: str,
    *,
    vault: str = "",
    secret: str = "",
    service: Service = KEY_VAULT,
) -> ProviderError:
    """Translate an ``HttpResponseError`` (or one of its subclasses) into a rotator error.

    The message is built from the status and the error codes only, in
    ``service``'s words; ``vault`` and ``secret`` (identifiers) make the
    recovery command of a soft-deleted secret concrete.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ResourceExistsError,
        ResourceNotFoundError,
    )

    failure = inspect(exc)
    detail = failure.describe(type(exc).__name__)
    status = failure.status or 0

    def make(kind: type[ProviderError], reason: str) -> ProviderError:
        return kind(f"{detail}: {reason}", provider=provider, operation=operation)

    if failure.status is None and not isinstance(exc, ClientAuthenticationError):
        # Raised by the transport for an answer cut off mid-body: no status at all.
        return TransientError(
            f"{detail}: {service.endpoint}'s answer was cut off; retry later",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        return make(NotFoundError, service.not_found)
    if isinstance(exc, ClientAuthenticationError) or status == 401:
        return make(PermissionDeniedError, service.unauthenticated)
    if isinstance(exc, ResourceExistsError) or status == 409:
        if failure.inner_code == DELETED_CODE:
            return make(
                SoftDeletedError,
                "the secret is deleted but recoverable (soft-deleted); "
                + recover_command(vault or "VAULT", secret or "NAME"),
            )
        if failure.inner_code in BUSY_CODES:
            return TransientError(
                f"{detail}: the secret is being deleted or recovered; retry later",
                provider=provider,
                operation=operation,
                delay=failure.retry_after,
            )
        return make(ConflictError, service.conflict)
    if status == 403:
        if failure.inner_code == DISABLED_CODE:
            return make(PermanentError, "the secret version is disabled")
        if failure.inner_code == EXPIRED_CODE:
            return make(PermanentError, "the secret version is expired")
        return make(PermissionDeniedError, service.denied)
    if status == 429:
        return TransientError(
            f"{detail}: throttled by {service.name}; retry later",
            provider=provider,
            operation=operation,
            delay=failure.retry_after,
        )
    if may_pass(status):
        return TransientError(
            f"{detail}: {service.name} failed to serve the request; retry later",
            provider=provider,
            operation=operation,
            delay=failure.retry_after,
        )
    if 400 <= status < 500:
        return make(PermanentError, f"{service.name} refused the request")
    return make(PermanentError, f"unexpected answer from {service.name}")


def from_azure_error(
    exc: BaseException,
    provider: str,
    operation: str,
    *,
    vault: str = "",
    secret: str = "",
    service: Service = KEY_VAULT,
) -> ProviderError:
    """Translate any ``azure.core`` or ``azure.identity`` exception into a rotator error."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.identity import CredentialUnavailableError

    name = type(exc).__name__
    # CredentialUnavailableError is a ClientAuthenticationError: test it first.
    if isinstance(exc, CredentialUnavailableError):
        return PermanentError(f"{name}: {IDENTITY_HINT}", provider=provider, operation=operation)
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # Raised by a credential (the token endpoint refused), not by the service.
        return PermissionDeniedError(
            f"{name}: the Azure identity could not get a token for {service.name} "
            "(check the identity's configuration and its federated credential or secret)",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, HttpResponseError):
        return from_http_error(
            exc, provider, operation, vault=vault, secret=secret, service=service
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        if _is_tls_failure(exc):
            return PermanentError(
                f"{name}: TLS handshake with {service.endpoint} failed ({service.tls_hint})",
                provider=provider,
                operation=operation,
            )
        if "non-TLS" in str(getattr(exc, "message", "")):
            return PermanentError(
                f"{name}: {service.https_hint}",
                provider=provider,
                operation=operation,
            )
        if isinstance(exc, ServiceResponseError):
            return TransientError(
                f"{name}: {service.endpoint} did not answer (timeout or lost connection); "
                "retry later",
                provider=provider,
                operation=operation,
            )
        return TransientError(
            f"{name}: could not reach {service.endpoint}; retry later",
            provider=provider,
            operation=operation,
        )
    return PermanentError(f"{name}: the Azure SDK failed", provider=provider, operation=operation)


@contextmanager
def azure_errors(
    provider: str,
    operation: str,
    *,
    vault: str = "",
    secret: str = "",
    service: Service = KEY_VAULT,
) -> Iterator[None]:
    """Run the block, translating Azure SDK exceptions into rotator errors.

    ``provider`` names the adapter (``azure-keyvault``) and ``operation`` the
    Key Vault call (``set_secret payments-db``); both end up in the error's
    prefix. ``vault`` (the vault's name, see :func:`vault_name`) and
    ``secret`` (the secret's name) fill in the recovery command of a
    soft-deleted secret. ``service`` words the messages for another Azure
    service (see :class:`Service`).

    Raises:
        TransientError: 408, 429 (with ``Retry-After`` as ``delay``), 5xx, a
            409 while the secret is being deleted or recovered, a timeout or a
            lost connection.
        PermissionDeniedError: 401, a 403 that is about the caller's rights,
            or a token the identity could not get.
        NotFoundError: 404 (no such secret or version).
        ConflictError: any other 409.
        PermanentError: a soft-deleted secret (409
            ``ObjectIsDeletedButRecoverable``), a disabled or expired version
            (403 ``SecretDisabled``/``SecretExpired``), no identity available
            (with a hint listing the options), a TLS failure, any other 4xx.
    """
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        error = from_azure_error(
            exc, provider, operation, vault=vault, secret=secret, service=service
        )
        defuse(exc, f"{type(exc).__name__} when calling {operation}")
        raise error from None
    except ValueError as exc:
        # The challenge policy refuses a vault whose host does not match the
        # resource Key Vault names; its text names hosts only.
        if "challenge resource" not in str(exc):
            raise
        defuse(exc, "ValueError")
        raise PermanentError(
            "the vault's authentication challenge names a resource that does not match "
            "vault_url (set ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE=false only for a local "
            "emulator)",
            provider=provider,
            operation=operation,
        ) from None
