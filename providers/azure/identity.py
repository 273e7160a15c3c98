"""Azure identities and Key Vault clients for the Azure adapters, built once per process.

Credentials come from the environment and the platform, never from policy
files. ``ROTATOR_AZURE_CREDENTIAL`` picks one:

==============  ==============================================================
``default``     (the default) ``DefaultAzureCredential``: environment service
                principal, AKS workload identity (``AZURE_CLIENT_ID``,
                ``AZURE_TENANT_ID``, ``AZURE_FEDERATED_TOKEN_FILE``), managed
                identity (``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` on App
                Service and Container Apps, IMDS on VMs), then the developer
                logins (Azure CLI, PowerShell, azd...). azure-identity's own
                ``AZURE_TOKEN_CREDENTIALS=prod|dev|<name>`` narrows that chain.
``workload``    ``WorkloadIdentityCredential`` only (AKS workload identity).
``managed``     ``ManagedIdentityCredential`` only (``AZURE_CLIENT_ID`` selects
                a user-assigned identity).
``environment`` ``EnvironmentCredential`` only (a service principal:
                ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and a secret or a
                certificate).
``cli``         ``AzureCliCredential`` only (``az login``; for a workstation).
==============  ==============================================================

In production, pin it: a chain that silently falls through to another
identity (a developer's ``az login`` on a shared host, say) is hard to
debug and may hold more rights than the service should.

TLS: ``AZURE_CA_BUNDLE`` (or else ``REQUESTS_CA_BUNDLE``) names a CA bundle
the Key Vault client trusts instead of the system's (a TLS-inspecting proxy,
the local emulator).

``ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE=false`` turns off the SDK's check
that the vault's host lies under the resource its 401 challenge names
(``vault.azure.net``). **Only for the local emulator and the sandbox**,
whose vault lives on ``127.0.0.1``: against a real vault the check is what
stops a look-alike host from collecting a token for Key Vault.

Every ``SecretClient`` carries one more pipeline policy (:func:`request_meter`),
right after the SDK's retry policy, so it sees each attempt:

- it takes a token from the ``keyvault`` rate limit of the vault's host
  first: 200 requests a second by default. Key Vault allows 4,000
  transactions per 10 seconds per vault and region for secrets (Azure Key
  Vault service limits), shared with every application reading the same
  vault (and the subscription as a whole gets five times one vault's
  limit), so rotator keeps to half of it. ``ROTATOR_RATE_LIMITS=keyvault=N``
  changes it (``0`` turns it off);
- it reports the attempt to ``runtime.on_request`` as provider
  ``azure-keyvault``, named by its REST call (``secrets.get``,
  ``secrets.set``...: :func:`providers.azure.errors.keyvault_operation`),
  with its outcome (a 429 the SDK then retries is ``throttled``, the retry
  counted on its own). The authentication challenge a first request
  elicits is handled after it in the pipeline, so it is not counted apart.
  The credential's own token requests (to Entra ID or the managed-identity
  endpoint) are not Key Vault requests and are not reported.

Test seam (not configuration): :func:`credential` returns whatever object is
already cached in ``runtime.cache`` under :data:`CREDENTIAL_KEY`, so a test
may put a credential there before the first call. Production code never
sets it; the real identities above are the only ones rotator builds.

The Azure SDK is imported inside the functions, so importing this module is
cheap.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from providers.azure.errors import (
    IDENTITY_HINT,
    exception_outcome,
    inner_code,
    keyvault_operation,
    status_outcome,
)
from providers.metering import answered, report, take
from providers.transport.failures import defuse
from rotator.adapters import USER_AGENT, Quota, Runtime, Setting, limits, rates, redact
from rotator.errors import PermanentError

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
    from azure.keyvault.secrets import SecretClient

PROVIDER = "azure"
#: The provider label of Key Vault requests reported to ``runtime.on_request``.
REQUESTS_PROVIDER = "azure-keyvault"

#: Requests per second rotator allows itself per vault host (the ``keyvault``
#: quota of ``ROTATOR_RATE_LIMITS``), every attempt counted: half of Key
#: Vault's 4,000 per 10 seconds, which every application of the vault shares.
KEYVAULT = Quota(
    "keyvault",
    200.0,
    "vault",
    documented="secrets: 4,000 transactions per 10 s per vault and Region "
    "(Azure Key Vault service limits)",
)
QUOTAS = (KEYVAULT,)
RATE_LIMITS = rates(QUOTAS)
QUOTA = KEYVAULT.name

#: ``runtime.cache`` key of the process's credential (also the test seam).
CREDENTIAL_KEY = "azure:credential"
_CLIENT_KEY = "azure:secret-client:"
_LOCK_KEY = "azure:lock"

CREDENTIAL_ENV = "ROTATOR_AZURE_CREDENTIAL"
VERIFY_CHALLENGE_ENV = "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE"
CA_BUNDLE_ENVS = ("AZURE_CA_BUNDLE", "REQUESTS_CA_BUNDLE")
CREDENTIAL_KINDS = ("default", "workload", "managed", "environment", "cli")

#: Seconds to wait for a connection and for an answer, per attempt.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
#: Retries of the SDK's own policy (408, 429, 5xx, connection errors), on
#: top of which the engine retries a failed step. Kept low so a step fails
#: in seconds and the engine's backoff (and journal record) takes over.
SDK_RETRIES = 2

_FALSE = frozenset({"0", "false", "no", "off"})
_TRUE = frozenset({"1", "true", "yes", "on"})
#: Variables holding rotator's own Azure secrets (read by azure-identity itself).
SECRET_ENVS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
    "IDENTITY_HEADER",
    "MSI_SECRET",
)
#: Variables naming a file that holds one (the workload identity's federated token).
SECRET_FILE_ENVS = ("AZURE_FEDERATED_TOKEN_FILE",)


def _lock(runtime: Runtime) -> threading.Lock:
    lock: threading.Lock = runtime.cache.setdefault(_LOCK_KEY, threading.Lock())
    return lock


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def credential_kind(environ: Mapping[str, str] | None = None) -> str:
    """Return the credential ``ROTATOR_AZURE_CREDENTIAL`` asks for (``default`` if unset).

    Raises:
        PermanentError: the variable names no known credential.
    """
    kind = _env(environ).get(CREDENTIAL_ENV, "").strip().lower() or "default"
    if kind not in CREDENTIAL_KINDS:
        raise PermanentError(
            f"{CREDENTIAL_ENV}={kind!r} is not one of {', '.join(CREDENTIAL_KINDS)}",
            provider=PROVIDER,
            operation="credential",
        )
    return kind


def build_credential(environ: Mapping[str, str] | None = None) -> TokenCredential:
    """Build the credential ``ROTATOR_AZURE_CREDENTIAL`` names (uncached).

    The azure-identity credentials read their own variables from
    ``os.environ``; ``environ`` only overrides rotator's.

    Raises:
        PermanentError: an unknown credential kind, or one whose
            configuration is incomplete (with the variables it needs).
    """
    from azure import identity

    env = _env(environ)
    kind = credential_kind(environ)
    register_own_secrets(env)
    try:
        if kind == "workload":
            return identity.WorkloadIdentityCredential()
        if kind == "managed":
            client_id = env.get("AZURE_CLIENT_ID", "").strip() or None
            return identity.ManagedIdentityCredential(client_id=client_id)
        if kind == "environment":
            return identity.EnvironmentCredential()
        if kind == "cli":
            return identity.AzureCliCredential()
        return identity.DefaultAzureCredential()
    except ValueError as exc:
        # azure-identity's text names the missing variables, never their values;
        # it is still the SDK's text, so it goes through the one door.
        reason = redact.outside_text(str(exc).split("\n", 1)[0], 300) or type(exc).__name__
        defuse(exc, type(exc).__name__)
        raise PermanentError(
            f"the {kind} Azure credential is not configured ({reason}); {IDENTITY_HINT}",
            provider=PROVIDER,
            operation="credential",
        ) from None


def register_own_secrets(environ: Mapping[str, str]) -> None:
    """Register rotator's own Azure secrets (client secret, MSI header, federated token)."""
    for name in SECRET_ENVS:
        value = environ.get(name, "").strip()
        if value:
            redact.register(value)
    for name in SECRET_FILE_ENVS:
        path = environ.get(name, "").strip()
        if not path:
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
        except (OSError, UnicodeError):
            continue  # azure-identity reports an unreadable file itself
        if token:
            redact.register(token)


class TokenRegistrar:
    """A credential handing out the tokens of another, each registered with the scrubber.

    rotator's own access tokens are credentials like the values it rotates:
    a token an SDK logs, or a server echoes in an error, is masked. The
    credential built (or seeded in the cache) is wrapped as the clients
    are built, so the cached object stays the SDK's own.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the inner credential's token for ``scopes``, registered."""
        token = self.inner.get_token(*scopes, **kwargs)
        redact.register(token.token)
        return token  # type: ignore[no-any-return]

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """Return the inner credential's token information for ``scopes``, registered."""
        from azure.core.credentials import AccessTokenInfo

        ask = getattr(self.inner, "get_token_info", None)
        if ask is not None:
            info = ask(*scopes, options=options)
        else:
            # An older credential: get_token takes the same options as keywords.
            plain = self.inner.get_token(*scopes, **dict(options or {}))
            info = AccessTokenInfo(plain.token, plain.expires_on)
        redact.register(info.token)
        return info  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the inner credential (its transport)."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> TokenRegistrar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def credential(runtime: Runtime, environ: Mapping[str, str] | None = None) -> TokenCredential:
    """Return the process's Azure credential, built on first use and cached in ``runtime.cache``.

    A credential already cached under :data:`CREDENTIAL_KEY` is returned
    as is (the test seam described in the module docstring).

    Raises:
        PermanentError: the credential cannot be built (see :func:`build_credential`).
    """
    cached = runtime.cache.get(CREDENTIAL_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    with _lock(runtime):
        cached = runtime.cache.get(CREDENTIAL_KEY)
        if cached is None:
            cached = build_credential(environ)
            runtime.cache[CREDENTIAL_KEY] = cached
    return cached


def ca_bundle(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the CA bundle path from ``AZURE_CA_BUNDLE`` or ``REQUESTS_CA_BUNDLE``, if set."""
    env = _env(environ)
    for name in CA_BUNDLE_ENVS:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def verify_challenge_resource(environ: Mapping[str, str] | None = None) -> bool:
    """Tell whether the challenge resource is checked (False only if the variable says so)."""
    return _env(environ).get(VERIFY_CHALLENGE_ENV, "").strip().lower() not in _FALSE


def _known_kind(value: str) -> None:
    """Refuse a ``ROTATOR_AZURE_CREDENTIAL`` that names no credential (ValueError)."""
    kind = value.strip().lower()
    if kind and kind not in CREDENTIAL_KINDS:
        raise ValueError(f"not one of {', '.join(CREDENTIAL_KINDS)}")


def _yes_or_no(value: str) -> None:
    """Refuse a switch that is neither on nor off (ValueError): a typo must not pass as "on"."""
    if value.strip().lower() not in _FALSE | _TRUE | {""}:
        raise ValueError("expected true or false")


#: What rotator checks at start of the variables above.
SETTINGS = (
    Setting(
        CREDENTIAL_ENV,
        f"Azure credential to use: {', '.join(CREDENTIAL_KINDS)} (default: default).",
        check=_known_kind,
    ),
    Setting(
        VERIFY_CHALLENGE_ENV,
        "false only for a local emulator: skip the check that a vault lies under "
        "vault.azure.net (default: true).",
        check=_yes_or_no,
    ),
)


def client_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the keyword arguments every ``SecretClient`` is built with."""
    options: dict[str, Any] = {
        "connection_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "retry_total": SDK_RETRIES,
        "user_agent": USER_AGENT,
    }
    bundle = ca_bundle(environ)
    if bundle is not None:
        options["connection_verify"] = bundle
    if not verify_challenge_resource(environ):
        options["verify_challenge_resource"] = False
    return options


@functools.cache
def _meter_class() -> type[Any]:
    """Return the pipeline policy class of :func:`request_meter` (built on first use).

    Built lazily so that importing this module does not import azure-core.
    """
    from azure.core.pipeline.policies import HTTPPolicy

    class RequestMeter(HTTPPolicy[Any, Any]):
        """Paces and reports each attempt of one vault's client."""

        def __init__(self, runtime: Runtime, host: str) -> None:
            super().__init__()
            self.runtime = runtime
            self.host = host
            # Read once, when the client is built: a malformed
            # ROTATOR_RATE_LIMITS fails then, not in the middle of a request.
            self.limits = limits(RATE_LIMITS)

        def send(self, request: Any) -> Any:
            http = request.http_request
            name = keyvault_operation(http.method, urlsplit(http.url).path)
            take(self.runtime, self.limits, QUOTA, self.host)
            try:
                response = self.next.send(request)
            except Exception as exc:
                report(self.runtime, REQUESTS_PROVIDER, name, exception_outcome(exc))
                raise
            status = response.http_response.status_code
            code = _inner_code(response.http_response) if status == 409 else ""
            answered(
                self.runtime,
                REQUESTS_PROVIDER,
                name,
                status_outcome(status, code),
                limits=self.limits,
                quota=QUOTA,
                scope=self.host,
            )
            return response

    return RequestMeter


def _inner_code(http_response: Any) -> str:
    """Return the inner error code of a Key Vault answer (``""`` if unreadable)."""
    try:
        return inner_code(json.loads(http_response.text()))
    except Exception:  # noqa: BLE001 (a body we cannot read only loses the detail)
        return ""


def request_meter(runtime: Runtime, vault_url: str) -> Any:
    """Return the pipeline policy pacing and reporting the requests to ``vault_url``."""
    host = (urlsplit(vault_url).netloc or vault_url).lower()
    return _meter_class()(runtime, host)


def secret_client(
    runtime: Runtime, vault_url: str, environ: Mapping[str, str] | None = None
) -> SecretClient:
    """Return the ``SecretClient`` for ``vault_url``, built once and cached in ``runtime.cache``.

    Authentication is lazy: the credential gets a token at the first call.

    Raises:
        PermanentError: the credential cannot be built.
    """
    key = _CLIENT_KEY + vault_url.rstrip("/")
    cached = runtime.cache.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token_credential = credential(runtime, environ)
    with _lock(runtime):
        cached = runtime.cache.get(key)
        if cached is None:
            from azure.keyvault.secrets import SecretClient

            cached = SecretClient(
                vault_url=vault_url,
                credential=TokenRegistrar(token_credential),
                # After the retry policy (each attempt is seen) and before the
                # authentication policy (its challenge round trip is not).
                per_retry_policies=[request_meter(runtime, vault_url)],
                **client_options(environ),
            )
            runtime.cache[key] = cached
    return cached
