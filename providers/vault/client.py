"""One authenticated hvac client per Vault address and namespace, kept alive.

Connection details and credentials come from the environment only, never
from a policy file:

- ``VAULT_ADDR`` (required), ``VAULT_NAMESPACE``, ``VAULT_CACERT`` (a CA
  bundle to verify Vault's certificate with) or ``VAULT_SKIP_VERIFY``
  (truthy: do not verify; for a lab only).
- Authentication, first match wins:

  1. ``VAULT_TOKEN``: a token as is.
  2. AppRole: ``VAULT_ROLE_ID`` with ``VAULT_SECRET_ID`` or
     ``VAULT_SECRET_ID_FILE`` (read again at every login), at mount
     ``VAULT_APPROLE_MOUNT`` (default ``approle``).
  3. Kubernetes: ``VAULT_K8S_ROLE``, with the service-account JWT read from
     ``VAULT_K8S_TOKEN_FILE`` (default
     ``/var/run/secrets/kubernetes.io/serviceaccount/token``; read again at
     every login, since projected tokens rotate) at mount ``VAULT_K8S_MOUNT``
     (default ``kubernetes``).
  4. JWT/OIDC (CI pipelines: GitLab ``id_tokens``, GitHub Actions OIDC):
     ``VAULT_JWT_ROLE``, with the JWT read from ``VAULT_JWT_TOKEN_FILE``
     (read again at every login, since a CI job's token is short-lived) or
     given as is in ``VAULT_JWT`` (the file wins when both are set), at
     mount ``VAULT_JWT_MOUNT`` (default ``jwt``). Kubernetes comes first
     when both roles are set: in a pod, the pod's own identity is the
     deliberate one.
  5. ``~/.vault-token`` (what ``vault login`` and Vault Agent's file sink
     write; read again when Vault refuses the token). It comes after the
     explicit AppRole, Kubernetes and JWT settings, so a stray file in a home
     directory never overrides what a deployment configured.

A :class:`VaultSession` owns the client. Before each call it checks the
token's expiry on ``runtime.clock`` (learnt from the login's
``lease_duration`` or from ``lookup-self``): with less than a third of its
TTL left, it renews the token (``renew-self``); if renewal fails, or a call
is refused with 401/403, it logs in again once (AppRole, Kubernetes, JWT,
token file) and retries the call once. Adapters route every call through
:meth:`VaultSession.call`, which also translates errors
(:func:`providers.vault.errors.vault_errors`).

Every HTTP request to Vault, from the session's client and from the
separate clients that log in or verify a new credential, goes through one
hvac adapter (:func:`metered_adapter`), which:

- takes a token from the ``vault`` rate limit first: 50 requests a second
  per Vault address by default. Vault has no built-in quota; operators add
  rate-limit quotas (answered with HTTP 429), so this keeps a large run
  from tripping one, or from crowding out other clients.
  ``ROTATOR_RATE_LIMITS=vault=N`` changes it (``0`` turns it off);
- reports the request to ``runtime.on_request`` as provider ``vault`` with
  the fixed name of its kind (``kv.read``, ``approle.secret_id.generate``,
  ``token.renew_self``...: see :data:`OPERATIONS`), never its path, and its
  outcome (``ok``; ``throttled`` for 429; ``transient`` for a 5xx other
  than 501, a sealed Vault, a lost connection; ``permanent`` otherwise, an
  expected 404 included);
- keeps a 429's ``Retry-After`` (seconds, or an HTTP date from older Vault
  versions; Vault sends it when the quota has
  ``enable_rate_limit_response_headers``), which becomes the
  ``TransientError``'s ``delay``, so the engine waits as long as Vault asked.

hvac is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from providers.metering import answered, take
from providers.transport.failures import status_outcome
from providers.transport.retry_after import asked_wait
from providers.vault.errors import TokenRejectedError, request_outcome, vault_errors
from rotator.adapters import Quota, Runtime, SecretValue, limits, rates, redact
from rotator.errors import PermanentError, PermissionDeniedError, ProviderError

PROVIDER = "vault"
DEFAULT_K8S_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105
#: Seconds to wait for a connection and for an answer.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
#: Renew when less than this fraction of the token's TTL is left.
RENEW_FRACTION = 1 / 3
_TRUTHY = frozenset({"1", "t", "true", "y", "yes", "on"})
_LOCK_KEY = "vault:lock"

#: Requests per second rotator allows itself per Vault address (the ``vault``
#: quota of ``ROTATOR_RATE_LIMITS``), every request counted. Vault has no
#: default quota to stay under.
VAULT = Quota(
    "vault",
    50.0,
    "Vault server",
    documented="none by default; operators add rate limit quotas (Vault resource quotas)",
)
QUOTAS = (VAULT,)
RATE_LIMITS = rates(QUOTAS)
QUOTA = VAULT.name

#: The operation names reported to ``runtime.on_request``, one per kind of call.
OPERATIONS = frozenset(
    {
        "kv.read",
        "kv.write",
        "kv.delete",
        "kv.destroy",
        "kv.metadata.read",
        "kv.metadata.write",
        "kv.metadata.delete",
        "approle.login",
        "approle.role_id.read",
        "approle.secret_id.generate",
        "approle.secret_id.list",
        "approle.secret_id.lookup",
        "approle.secret_id_accessor.lookup",
        "approle.secret_id_accessor.destroy",
        "kubernetes.login",
        "jwt.login",
        "token.lookup_self",
        "token.renew_self",
        "token.revoke_self",
        "token.create_orphan",
        "token.lookup_accessor",
        "token.revoke_accessor",
        "token.accessors.list",
        "sys.capabilities_self",
        "other",
    }
)

# The kind of the call in progress on this thread, read by the metered
# adapter: a context variable, since one client serves every thread.
_OPERATION: ContextVar[str] = ContextVar("rotator_vault_operation", default="other")

log = logging.getLogger(__name__)

T = TypeVar("T")


@contextmanager
def named(name: str) -> Iterator[None]:
    """Name the Vault requests made inside the block (one of :data:`OPERATIONS`)."""
    token = _OPERATION.set(name)
    try:
        yield
    finally:
        _OPERATION.reset(token)


class Meter:
    """Paces and reports the requests to one Vault address (see the module docstring)."""

    def __init__(self, runtime: Runtime, address: str) -> None:
        self.runtime = runtime
        self.address = address
        # Read once, when the session is built: a malformed ROTATOR_RATE_LIMITS
        # is a ConfigError before any request, not in the middle of one.
        self.limits = limits(RATE_LIMITS)

    def pace(self) -> None:
        """Wait for a token of the ``vault`` rate limit of this address."""
        take(self.runtime, self.limits, QUOTA, self.address)

    def record(self, outcome: str) -> None:
        """Report one request, under the kind named on this thread."""
        answered(
            self.runtime,
            PROVIDER,
            _OPERATION.get(),
            outcome,
            limits=self.limits,
            quota=QUOTA,
            scope=self.address,
        )

    def retry_after(self, headers: Any) -> float | None:
        """Return the seconds a 429's ``Retry-After`` asks for (``None`` if absent)."""
        return asked_wait(headers, self.runtime.clock())


@functools.cache
def metered_adapter() -> type[Any]:
    """Return hvac's ``JSONAdapter`` extended to pace and report every request.

    Built on first use, so that importing this module does not import hvac.
    With ``meter=None`` (hvac's own ``from_adapter`` copies) it is hvac's.
    """
    from hvac.adapters import JSONAdapter
    from hvac.exceptions import VaultError

    class MeteredAdapter(JSONAdapter):  # type: ignore[misc]  # hvac is untyped
        def __init__(self, *args: Any, meter: Meter | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.meter = meter

        def request(self, *args: Any, **kwargs: Any) -> Any:
            meter = self.meter
            if meter is None:
                return super().request(*args, **kwargs)
            meter.pace()
            try:
                response = super().request(*args, **kwargs)
            except Exception as exc:
                meter.record(request_outcome(exc))
                raise
            # A dict is a 200 with a JSON body; anything else a Response (a 204, say).
            status = getattr(response, "status_code", 200)
            meter.record(status_outcome(status if isinstance(status, int) else 200))
            return response

        def _raise_for_error(self, method: str, url: str, response: Any) -> None:
            # hvac's exceptions do not keep the headers: note Retry-After on
            # the exception, where vault_errors looks for it.
            try:
                super()._raise_for_error(method, url, response)
            except VaultError as exc:
                meter = self.meter
                if meter is not None:
                    exc.retry_after = meter.retry_after(getattr(response, "headers", None))
                raise

    return MeteredAdapter


@dataclass(frozen=True)
class Connection:
    """Where Vault is and how to talk to it (no credentials)."""

    address: str
    namespace: str | None = None
    #: ``True`` (system CAs), ``False`` (no verification) or a CA bundle path.
    verify: bool | str = True
    #: Paces and reports the requests of every client made from this
    #: connection (set by :class:`VaultSession`; ``None``: plain hvac).
    meter: Meter | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Connection:
        """Read ``VAULT_ADDR``, ``VAULT_NAMESPACE``, ``VAULT_CACERT``, ``VAULT_SKIP_VERIFY``.

        Raises:
            PermanentError: ``VAULT_ADDR`` is not set.
        """
        env = os.environ if environ is None else environ
        address = env.get("VAULT_ADDR", "").strip()
        if not address:
            raise PermanentError(
                "VAULT_ADDR is not set: export the Vault address (e.g. "
                "https://vault.example.com:8200) in rotator's environment",
                provider=PROVIDER,
                operation="connect",
            )
        verify: bool | str = True
        if env.get("VAULT_SKIP_VERIFY", "").strip().lower() in _TRUTHY:
            verify = False
        elif env.get("VAULT_CACERT", "").strip():
            verify = env["VAULT_CACERT"].strip()
        namespace = env.get("VAULT_NAMESPACE", "").strip() or None
        return cls(address.rstrip("/"), namespace, verify)

    def new_client(self, token: str | None = None) -> Any:
        """Return a new hvac client for this connection, with ``token`` or none at all."""
        import hvac

        metered: dict[str, Any] = {}
        if self.meter is not None:
            metered = {"adapter": metered_adapter(), "meter": self.meter}
        # token="" (not None): hvac would otherwise pick VAULT_TOKEN or ~/.vault-token up.
        return hvac.Client(
            url=self.address,
            token=token or "",
            verify=self.verify,
            namespace=self.namespace,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            **metered,
        )


@dataclass(frozen=True)
class Login:
    """What an authentication gave: the token and its lease."""

    token: str
    #: Seconds the token lives from now; 0 means it does not expire.
    ttl: int
    renewable: bool


def _read_secret_file(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PermanentError(
            f"cannot read the {what} file {path}: {exc.strerror or type(exc).__name__}",
            provider=PROVIDER,
            operation="login",
        ) from None
    if not text:
        raise PermanentError(f"the {what} file {path} is empty", provider=PROVIDER)
    redact.register(text)
    return text


class Auth(ABC):
    """One way of getting a Vault token."""

    #: Short name for logs and messages (``token``, ``approle``, ``kubernetes``, ``jwt``).
    method: str = ""
    #: Whether :meth:`login` can get a *new* token when the current one is refused.
    can_login: bool = False

    @abstractmethod
    def login(self, connection: Connection) -> Login | None:
        """Return a token; ``None`` if the token's lease must be looked up (a given token).

        Raises:
            PermissionDeniedError: Vault refused the credentials.
            PermanentError: a credential file cannot be read.
            TransientError: Vault is unreachable or unavailable.
        """

    @abstractmethod
    def token(self) -> str:
        """Return the token a static method holds (raises for login methods)."""


class TokenAuth(Auth):
    """A token given as is (``VAULT_TOKEN``), or read from a file (``~/.vault-token``)."""

    method = "token"

    def __init__(self, token: str | None = None, *, path: str | None = None) -> None:
        if token is None and path is None:
            raise ValueError("TokenAuth needs a token or a path")
        self._token = token
        self._path = path
        self.can_login = path is not None
        if token:
            redact.register(token)

    def token(self) -> str:
        """Return the token (read from the file again, if it comes from one).

        Raises:
            PermanentError: the token file cannot be read or is empty.
        """
        if self._path is not None:
            return _read_secret_file(self._path, "Vault token")
        assert self._token is not None
        return self._token

    def login(self, connection: Connection) -> Login | None:
        """Return ``None``: a given token needs no login (its lease is looked up)."""
        return None


class AppRoleAuth(Auth):
    """AppRole login with a role-id and a secret-id (given, or read from a file)."""

    method = "approle"
    can_login = True

    def __init__(
        self,
        role_id: str,
        *,
        secret_id: str | None = None,
        secret_id_file: str | None = None,
        mount: str = "approle",
    ) -> None:
        if secret_id is None and secret_id_file is None:
            raise ValueError("AppRoleAuth needs a secret_id or a secret_id_file")
        self.role_id = role_id
        self._secret_id = secret_id
        self._secret_id_file = secret_id_file
        self.mount = mount
        if secret_id:
            redact.register(secret_id)

    def token(self) -> str:
        """Not available: AppRole gets its token by logging in (raises NotImplementedError)."""
        raise NotImplementedError("AppRole gets its token by logging in")

    def login(self, connection: Connection) -> Login:
        """Log in with the role-id and the secret-id (the file is read again each time).

        Raises:
            PermissionDeniedError: Vault refused the pair.
            PermanentError: the secret-id file cannot be read, or the answer has no token.
            TransientError: Vault is unreachable or unavailable.
        """
        secret_id = self._secret_id
        if self._secret_id_file is not None:
            secret_id = _read_secret_file(self._secret_id_file, "AppRole secret-id")
        client = connection.new_client()
        try:
            with vault_errors(PROVIDER, f"login auth/{self.mount}"), named("approle.login"):
                answer = client.auth.approle.login(
                    role_id=self.role_id,
                    secret_id=secret_id,
                    use_token=False,
                    mount_point=self.mount,
                )
        finally:
            client.adapter.close()
        return _login_from(answer, self.method)


class KubernetesAuth(Auth):
    """Kubernetes login with the pod's service-account JWT."""

    method = "kubernetes"
    can_login = True

    def __init__(
        self, role: str, *, token_file: str = DEFAULT_K8S_TOKEN_FILE, mount: str = "kubernetes"
    ) -> None:
        self.role = role
        self.token_file = token_file
        self.mount = mount

    def token(self) -> str:
        """Not available: Kubernetes auth gets its token by logging in."""
        raise NotImplementedError("Kubernetes auth gets its token by logging in")

    def login(self, connection: Connection) -> Login:
        """Log in with the service-account JWT (the file is read again each time).

        Raises:
            PermissionDeniedError: Vault refused the JWT or the role.
            PermanentError: the token file cannot be read, or the answer has no token.
            TransientError: Vault is unreachable or unavailable.
        """
        jwt = _read_secret_file(self.token_file, "Kubernetes service-account token")
        client = connection.new_client()
        try:
            with vault_errors(PROVIDER, f"login auth/{self.mount}"), named("kubernetes.login"):
                answer = client.auth.kubernetes.login(
                    role=self.role, jwt=jwt, use_token=False, mount_point=self.mount
                )
        finally:
            client.adapter.close()
        return _login_from(answer, self.method)


class JwtAuth(Auth):
    """JWT auth-method login with a CI job's ID token, from a file or given as is."""

    method = "jwt"
    can_login = True

    def __init__(
        self,
        role: str,
        *,
        jwt: str | None = None,
        token_file: str | None = None,
        mount: str = "jwt",
    ) -> None:
        if jwt is None and token_file is None:
            raise ValueError("JwtAuth needs a jwt or a token_file")
        self.role = role
        self._jwt = jwt
        self.token_file = token_file
        self.mount = mount
        if jwt:
            redact.register(jwt)

    def token(self) -> str:
        """Not available: JWT auth gets its token by logging in."""
        raise NotImplementedError("JWT auth gets its token by logging in")

    def login(self, connection: Connection) -> Login:
        """Log in with the JWT (the file, when there is one, is read again each time).

        Raises:
            PermissionDeniedError: Vault refused the JWT or the role.
            PermanentError: the JWT file cannot be read, or the answer has no token.
            TransientError: Vault is unreachable or unavailable.
        """
        jwt = self._jwt
        if self.token_file is not None:
            jwt = _read_secret_file(self.token_file, "JWT")
        operation = f"login auth/{self.mount}"
        client = connection.new_client()
        try:
            with vault_errors(PROVIDER, operation), named("jwt.login"):
                answer = client.auth.jwt.jwt_login(
                    role=self.role, jwt=jwt, use_token=False, path=self.mount
                )
        except PermanentError as exc:
            # The JWT method answers every refusal (signature, audience, claims,
            # expiry, unknown role) with a 400, which reads as a malformed
            # request; say what it is, without Vault's text (it may quote claims).
            if type(exc) is not PermanentError or ": HTTP 400:" not in str(exc):
                raise
            raise PermissionDeniedError(
                "HTTP 400: Vault refused the JWT login (check the role's bound_audiences "
                "and bound_claims, the JWT's expiry, and the keys the method validates it with)",
                provider=PROVIDER,
                operation=operation,
            ) from None
        finally:
            client.adapter.close()
        return _login_from(answer, self.method)


def _login_from(answer: Any, method: str) -> Login:
    auth = answer.get("auth") if isinstance(answer, Mapping) else None
    token = auth.get("client_token") if isinstance(auth, Mapping) else None
    if not isinstance(token, str) or not token:
        raise PermanentError(
            f"the {method} login answer carries no client token",
            provider=PROVIDER,
            operation="login",
        )
    assert isinstance(auth, Mapping)
    redact.register(token)
    return Login(token, int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))


def auth_from_env(environ: Mapping[str, str] | None = None) -> Auth:
    """Pick the authentication method from the environment (see the module docstring).

    Raises:
        PermanentError: no method is configured, or one is half-configured.
    """
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name, "").strip()

    if get("VAULT_TOKEN"):
        return TokenAuth(get("VAULT_TOKEN"))
    if get("VAULT_ROLE_ID"):
        if not get("VAULT_SECRET_ID") and not get("VAULT_SECRET_ID_FILE"):
            raise PermanentError(
                "VAULT_ROLE_ID is set but neither VAULT_SECRET_ID nor VAULT_SECRET_ID_FILE is",
                provider=PROVIDER,
                operation="login",
            )
        return AppRoleAuth(
            get("VAULT_ROLE_ID"),
            secret_id=get("VAULT_SECRET_ID") or None,
            secret_id_file=get("VAULT_SECRET_ID_FILE") or None,
            mount=get("VAULT_APPROLE_MOUNT") or "approle",
        )
    if get("VAULT_K8S_ROLE"):
        return KubernetesAuth(
            get("VAULT_K8S_ROLE"),
            token_file=get("VAULT_K8S_TOKEN_FILE") or DEFAULT_K8S_TOKEN_FILE,
            mount=get("VAULT_K8S_MOUNT") or "kubernetes",
        )
    if get("VAULT_JWT_ROLE"):
        if not get("VAULT_JWT_TOKEN_FILE") and not get("VAULT_JWT"):
            raise PermanentError(
                "VAULT_JWT_ROLE is set but neither VAULT_JWT_TOKEN_FILE nor VAULT_JWT is",
                provider=PROVIDER,
                operation="login",
            )
        return JwtAuth(
            get("VAULT_JWT_ROLE"),
            jwt=get("VAULT_JWT") or None,
            token_file=get("VAULT_JWT_TOKEN_FILE") or None,
            mount=get("VAULT_JWT_MOUNT") or "jwt",
        )
    home = env.get("HOME") or os.path.expanduser("~")
    token_file = Path(home) / ".vault-token"
    if token_file.is_file():
        return TokenAuth(path=str(token_file))
    raise PermanentError(
        "no Vault credentials: set VAULT_TOKEN, or VAULT_ROLE_ID with VAULT_SECRET_ID or "
        "VAULT_SECRET_ID_FILE (AppRole), or VAULT_K8S_ROLE (Kubernetes auth), "
        "or VAULT_JWT_ROLE with VAULT_JWT_TOKEN_FILE or VAULT_JWT (JWT/OIDC auth), "
        "or write a token to ~/.vault-token",
        provider=PROVIDER,
        operation="login",
    )


class VaultSession:
    """An authenticated hvac client whose token is renewed, or replaced, before it dies.

    Thread-safe: the token bookkeeping runs under a lock; hvac's client (a
    ``requests.Session``) is shared by the calls.
    """

    def __init__(self, runtime: Runtime, connection: Connection, auth: Auth) -> None:
        self.runtime = runtime
        if connection.meter is None:
            connection = replace(connection, meter=Meter(runtime, connection.address))
        self.connection = connection
        self.auth = auth
        self._lock = threading.RLock()
        self._client: Any = None
        #: Bumped at every (re)authentication, so concurrent refusals log in once.
        self._generation = 0
        self._expires_at: datetime | None = None
        self._ttl: timedelta | None = None
        self._renewable = False

    # -- token bookkeeping --------------------------------------------------

    def _authenticate(self) -> None:
        """Get a token (caller holds the lock) and learn when it expires."""
        login = self.auth.login(self.connection)
        token = self.auth.token() if login is None else login.token
        if self._client is None:
            self._client = self.connection.new_client(token)
        else:
            self._client.token = token
        if login is None:
            self._learn_lease()
        else:
            self._set_lease(login.ttl, login.renewable)
        self._generation += 1
        log.info("authenticated to Vault (%s)", self.auth.method)

    def _set_lease(self, ttl: int, renewable: bool) -> None:
        now: datetime = self.runtime.clock()
        if ttl > 0:
            self._ttl = timedelta(seconds=ttl)
            self._expires_at = now + self._ttl
        else:
            self._ttl = None
            self._expires_at = None
        self._renewable = renewable

    def _learn_lease(self) -> None:
        """Look the given token up to learn its TTL (caller holds the lock)."""
        try:
            with vault_errors(PROVIDER, "auth/token/lookup-self"), named("token.lookup_self"):
                answer = self._client.auth.token.lookup_self()
        except TokenRejectedError:
            log.warning(
                "Vault refused lookup-self for the configured token; it is invalid or expired, "
                "or its policies lack the default policy (token renewal disabled)"
            )
            self._set_lease(0, False)
            return
        data = answer.get("data") if isinstance(answer, Mapping) else None
        data = data if isinstance(data, Mapping) else {}
        remaining = int(data.get("ttl") or 0)
        full = max(int(data.get("creation_ttl") or 0), int(data.get("period") or 0), remaining)
        self._set_lease(remaining, bool(data.get("renewable")))
        if remaining > 0:
            self._ttl = timedelta(seconds=full)

    def _renew(self) -> int | None:
        """Renew the token; return the lease granted in seconds, or ``None`` if renewal failed."""
        try:
            with vault_errors(PROVIDER, "auth/token/renew-self"), named("token.renew_self"):
                answer = self._client.auth.token.renew_self()
        except ProviderError as exc:
            log.warning("Vault token renewal failed: %s", exc)
            return None
        auth = answer.get("auth") if isinstance(answer, Mapping) else None
        granted = int(auth.get("lease_duration") or 0) if isinstance(auth, Mapping) else 0
        return granted if granted > 0 else None

    def _renew_if_due(self) -> None:
        """Renew (or replace) the token when less than a third of its TTL is left.

        Caller holds the lock. A renewal capped by the token's max TTL to
        less than a third of its TTL counts as failed for a method that can
        log in again: a fresh login is better than a token about to die.
        """
        if self._expires_at is None or self._ttl is None:
            return
        left = self._expires_at - self.runtime.clock()
        if left >= self._ttl * RENEW_FRACTION:
            return
        if self._renewable and left > timedelta(0):
            granted = self._renew()
            if granted is not None and (
                not self.auth.can_login or timedelta(seconds=granted) >= self._ttl * RENEW_FRACTION
            ):
                self._ttl = timedelta(seconds=granted)
                self._expires_at = self.runtime.clock() + self._ttl
                log.info("renewed the Vault token for %ss", granted)
                return
        if self.auth.can_login:
            log.info("the Vault token is near its end; logging in again")
            before = self._client.token
            self._authenticate()
            if self._client.token == before:
                # A token file still holding the same token: nothing better to
                # get now. Stop checking; a refusal will read the file again.
                self._expires_at = None
            return
        log.warning(
            "the configured Vault token is near its end and cannot be renewed; "
            "calls will be refused once it expires"
        )
        self._expires_at = None

    def client(self) -> Any:
        """Return the authenticated client, logging in or renewing first if needed.

        Raises:
            PermissionDeniedError: Vault refused the credentials.
            PermanentError: no credentials configured, or a credential file is unreadable.
            TransientError: Vault is unavailable or unreachable.
        """
        return self._client_and_generation()[0]

    def _client_and_generation(self) -> tuple[Any, int]:
        """Return the client and the generation of its token, read together under the lock.

        Read apart, another thread could log in between the two reads, and a
        call refused with the old token would then skip its own re-login.
        """
        with self._lock:
            if self._client is None:
                self._authenticate()
            else:
                self._renew_if_due()
            return self._client, self._generation

    def relogin(self, generation: int | None = None) -> Any:
        """Log in again (once per refusal: skipped if another caller already did).

        Raises:
            PermissionDeniedError: Vault refused the credentials.
            PermanentError: the method cannot log in, or a credential file is unreadable.
            TransientError: Vault is unreachable or unavailable.
        """
        with self._lock:
            if generation is None or generation == self._generation:
                self._authenticate()
            return self._client

    # -- calls --------------------------------------------------------------

    def call(
        self,
        operation: str,
        fn: Callable[[Any], T],
        *,
        provider: str = PROVIDER,
        name: str = "other",
    ) -> T:
        """Run ``fn(client)`` with errors translated; on 401/403 log in again and retry once.

        ``operation`` names the Vault call in error messages (it may hold a
        path); ``name`` is its kind as reported to ``runtime.on_request``
        (one of :data:`OPERATIONS`, never a path). The retry only happens
        for methods that can get a new token (AppRole, Kubernetes, JWT, a
        token file); a refusal that persists is raised.

        Raises:
            TransientError: 429 (``delay`` from ``Retry-After``), 5xx, a
                timeout or a lost connection.
            PermissionDeniedError: refused even after logging in again.
            NotFoundError: no such path, token, accessor or role.
            ConflictError: a check-and-set mismatch.
            PermanentError: anything else Vault refuses.
        """
        client, generation = self._client_and_generation()
        try:
            with vault_errors(provider, operation), named(name):
                return fn(client)
        except TokenRejectedError:
            if not self.auth.can_login:
                raise
        log.info("Vault refused the token for %s; logging in again and retrying once", operation)
        client = self.relogin(generation)
        with vault_errors(provider, operation), named(name):
            return fn(client)

    def new_client(self, token: str | None = None) -> Any:
        """Return a separate client on the same address, namespace and TLS settings.

        With ``token`` it uses that token, without it none at all (to log in
        with credentials being verified). The session's own token is never
        shared with it.
        """
        return self.connection.new_client(token)


def cache_fingerprint(cache: dict[str, Any], value: SecretValue) -> str:
    """Return a keyed fingerprint of ``value`` to put in a cache key (never the value itself).

    The key is random per cache (per engine), so the fingerprint means
    nothing outside this process.
    """
    key = cache.setdefault("vault:fingerprint-key", secrets.token_bytes(32))
    assert isinstance(key, bytes)
    return hmac.new(key, value.text().encode(), hashlib.sha256).hexdigest()


def session(runtime: Runtime, environ: Mapping[str, str] | None = None) -> VaultSession:
    """Return the :class:`VaultSession` for the environment's Vault, cached in ``runtime.cache``.

    One per (address, namespace). Authentication is lazy: it happens at the
    first call.

    Raises:
        PermanentError: ``VAULT_ADDR`` is not set, or no credentials are configured.
    """
    connection = Connection.from_env(environ)
    key = f"vault:session:{connection.address}|{connection.namespace or ''}"
    cached = runtime.cache.get(key)
    if isinstance(cached, VaultSession):
        return cached
    lock: threading.Lock = runtime.cache.setdefault(_LOCK_KEY, threading.Lock())
    with lock:
        cached = runtime.cache.get(key)
        if not isinstance(cached, VaultSession):
            cached = VaultSession(runtime, connection, auth_from_env(environ))
            runtime.cache[key] = cached
    return cached
