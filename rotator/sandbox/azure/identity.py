"""Access tokens: issued by a TokenCredential or an App Service style MSI endpoint, then checked.

Real Key Vault validates AAD-signed JWTs. The emulator issues JWT-shaped tokens (unsigned:
the signature part is random) and accepts only tokens it issued itself, looked up in a table,
so a hand-made JWT with the right claims is still refused.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rotator.sandbox.azure.protocol import (
    VAULT_APP_ID,
    VAULT_RESOURCE,
    JSONDict,
    epoch,
    unauthorized,
)
from rotator.sandbox.core.clock import Clock

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

# The client id reported for the emulated system-assigned identity.
SYSTEM_ASSIGNED_CLIENT_ID = "11111111-1111-1111-1111-111111111111"
MSI_PATH = "/msi/token"
MSI_API_VERSION = "2019-08-01"


@dataclass(frozen=True)
class IssuedToken:
    """What the emulator remembers about a token it issued."""

    audience: str
    tenant_id: str
    client_id: str
    expires_on: int


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def resource_of(scope: str) -> str:
    """The AADv1 resource of an AADv2 scope (``https://vault.azure.net/.default`` -> resource)."""
    return scope[: -len("/.default")] if scope.endswith("/.default") else scope


class TokenIssuer:
    """Issues tokens and checks the ones presented to the vault (expiry on the emulator clock)."""

    def __init__(self, clock: Clock, tenant_id: str, lifetime: int) -> None:
        self._clock = clock
        self.tenant_id = tenant_id
        self.lifetime = lifetime
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()

    def issue(self, audience: str, tenant_id: str | None, client_id: str) -> tuple[str, int]:
        """Mint a token for ``audience``; return it and its expiry (Unix seconds, emulator time)."""
        now = self._clock()
        issued_at = epoch(now)
        expires_on = epoch(now + timedelta(seconds=self.lifetime))
        tenant = tenant_id or self.tenant_id
        header = {"typ": "JWT", "alg": "RS256", "kid": "kv-emulator"}
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_on,
            "appid": client_id,
            "oid": client_id,
            "sub": client_id,
            "tid": tenant,
            "idtyp": "app",
            "ver": "1.0",
            "uti": uuid.uuid4().hex,
        }
        token = ".".join(
            (
                _b64url(json.dumps(header, separators=(",", ":")).encode()),
                _b64url(json.dumps(claims, separators=(",", ":")).encode()),
                _b64url(secrets.token_bytes(32)),
            )
        )
        with self._lock:
            self._sweep(issued_at)
            self._tokens[token] = IssuedToken(audience, tenant, client_id, expires_on)
        return token, expires_on

    def _sweep(self, now: int) -> None:
        # Forget tokens that expired more than a lifetime ago: they can only be refused.
        for token in [t for t, i in self._tokens.items() if i.expires_on + self.lifetime < now]:
            del self._tokens[token]

    def lookup(self, token: str) -> IssuedToken | None:
        """Return what was issued with ``token``, or None if this emulator never issued it."""
        with self._lock:
            return self._tokens.get(token)

    def check(self, authorization: str | None) -> None:
        """Accept a ``Bearer`` token this emulator issued, for the vault, unexpired, in the tenant.

        Raises the 401 Key Vault would send; the texts are those seen from the real service.
        """
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            raise unauthorized("AKV10046: Unable to resolve the key used for signature validation.")
        if issued.audience.rstrip("/") not in {VAULT_RESOURCE, VAULT_APP_ID}:
            raise unauthorized(
                f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {issued.audience}."
            )
        if issued.tenant_id != self.tenant_id:
            raise unauthorized(
                "AKV10032: Invalid issuer. Expected one of "
                f"https://sts.windows.net/{self.tenant_id}/, found "
                f"https://sts.windows.net/{issued.tenant_id}/."
            )
        if epoch(self._clock()) >= issued.expires_on:
            raise unauthorized("[TokenExpired] Error validating token: 'S2S12086'.")


class EmulatorCredential:
    """An azure-core ``TokenCredential`` (and ``SupportsTokenInfo``) minting emulator tokens.

    Every call mints a fresh token, so a client that meets a 401 for an expired token (after
    the test clock moved) recovers through Key Vault's challenge. ``expires_on`` is reported
    on the emulator clock, like every other time the emulator shows.
    """

    def __init__(self, issuer: TokenIssuer, client_id: str = SYSTEM_ASSIGNED_CLIENT_ID) -> None:
        self._issuer = issuer
        self._client_id = client_id

    def _mint(self, scopes: tuple[str, ...], tenant_id: str | None) -> tuple[str, int]:
        if not scopes:
            raise ValueError('"get_token" requires at least one scope')
        return self._issuer.issue(resource_of(scopes[0]), tenant_id, self._client_id)

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token for the first scope (``https://vault.azure.net/.default`` for Key Vault)."""
        from azure.core.credentials import AccessToken

        token, expires_on = self._mint(scopes, tenant_id)
        return AccessToken(token, expires_on)

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """The same as :meth:`get_token`, in the ``SupportsTokenInfo`` shape the SDK prefers."""
        from azure.core.credentials import AccessTokenInfo

        tenant_id = (options or {}).get("tenant_id")
        token, expires_on = self._mint(scopes, tenant_id)
        return AccessTokenInfo(token, expires_on, token_type="Bearer")  # noqa: S106

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> EmulatorCredential:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class MsiReply:
    """The MSI endpoint's answer."""

    status: int
    body: JSONDict


def _msi_error(status: int, message: str) -> MsiReply:
    # App Service's token service answers errors as {"statusCode", "message", "correlationId"}.
    return MsiReply(
        status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
    )


def msi_token(
    issuer: TokenIssuer,
    expected_header: str,
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> MsiReply:
    """Answer ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=R`` (headers lower-case)."""
    if path != MSI_PATH:
        return _msi_error(404, f"Resource not found: {path}")
    if method != "GET":
        return _msi_error(405, f"The requested resource does not support http method '{method}'.")
    presented = headers.get("x-identity-header")
    if presented is None:
        return _msi_error(400, "The X-IDENTITY-HEADER header is missing.")
    if not secrets.compare_digest(presented.encode(), expected_header.encode()):
        return _msi_error(401, "The X-IDENTITY-HEADER header does not match.")
    api_version = params.get("api-version")
    if api_version != MSI_API_VERSION:
        return _msi_error(400, f"Unsupported api-version: {api_version or '(none)'}.")
    resource = params.get("resource")
    if not resource:
        return _msi_error(400, "The resource parameter is missing.")
    client_id = params.get("client_id") or SYSTEM_ASSIGNED_CLIENT_ID
    audience = resource_of(resource)
    token, expires_on = issuer.issue(audience, None, client_id)
    return MsiReply(
        200,
        {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        },
    )
