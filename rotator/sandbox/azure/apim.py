"""API Management in the emulator: the ARM calls on a subscription's keys, and a gateway.

Two surfaces, served on the vault's HTTPS port next to the secrets API:

ARM (Azure Resource Manager), as ``azure-mgmt-apimanagement`` calls it
    Paths have the real shape, ``/subscriptions/{subscriptionId}/resourceGroups/{rg}/providers/
    Microsoft.ApiManagement/service/{service}/subscriptions/{sid}``, with ``api-version``
    required (any value accepted). ``GET`` (and ``HEAD``) answer the subscription contract
    (``id``, ``type``, ``name``, ``properties{ownerId, scope, displayName, state, createdDate,
    startDate, expirationDate, endDate, notificationDate, stateComment, allowTracing}``; no keys,
    as since api-version 2019-12-01) with an ``ETag`` that changes whenever a key does;
    ``POST .../regeneratePrimaryKey`` and ``.../regenerateSecondaryKey`` give that slot a new
    key and answer 204; ``POST .../listSecrets`` answers 200 ``{"primaryKey", "secondaryKey"}``.
    Keys are 32 lower-case hex digits, as APIM generates them.

    Authentication is ARM's: a bearer token on every request (no challenge round trip), issued
    by this emulator for ARM's audience (``https://management.azure.com`` or
    ``https://management.core.windows.net``, with or without the trailing slash), in the
    emulator's tenant, unexpired on its clock. Otherwise 401 with ARM's codes and texts
    (``AuthenticationFailed`` for a missing header, ``InvalidAuthenticationToken``,
    ``InvalidAuthenticationTokenAudience``, ``InvalidAuthenticationTokenTenant``,
    ``ExpiredAuthenticationToken``) and ``WWW-Authenticate: Bearer
    authorization_uri="https://login.windows.net/", error="invalid_token",
    error_description="..."``, which the SDK's ARM policy does not treat as a claims challenge,
    so the 401 reaches the caller as ``ClientAuthenticationError``.

    Not found is 404 in ARM's envelope ``{"error":{"code","message"}}``: ``SubscriptionNotFound``
    (no service was seeded in that Azure subscription), ``ResourceGroupNotFound``,
    ``ResourceNotFound`` naming ``Microsoft.ApiManagement/service/{service}`` (unknown service)
    or APIM's ``Subscription not found.`` (unknown sid). Names are case-insensitive.

    Faults: the emulator's ``inject_fault(path_prefix, ...)`` applies here too (after
    authentication), answered in ARM's envelope: 403 ``AuthorizationFailed``, 429
    ``TooManyRequests``, 500 ``InternalServerError``, 503 ``ServiceUnavailable``.

Gateway, for an ``http`` verifier
    ``{GET,HEAD,POST} /apim/{service}/{anything}`` answers 200 ``{"subscription": sid, "key":
    "primary"|"secondary"}`` when the ``Ocp-Apim-Subscription-Key`` header (or the
    ``subscription-key`` query parameter) equals a current key of an *active* subscription of
    that service, and 401 ``{"statusCode": 401, "message": ...}`` with the real gateway's texts
    otherwise (missing key, invalid key). An unknown service is 404. No bearer token is
    involved, as at a real gateway; faults apply.

Known divergences: only these calls exist (no service, product, user or API resources; any
other ARM path is 404 ``NotFound`` in the emulator's words); there is no RBAC (any valid token
may do anything; a 403 comes only from an injected fault); regenerations take effect at once,
where a real gateway may accept an old key for a little while; the gateway lives under
``/apim/{service}`` on the emulator's port instead of ``https://{service}.azure-api.net``, and
ignores which APIs a subscription's scope covers.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from rotator.sandbox.azure.protocol import JSONDict, epoch, error_code
from rotator.sandbox.core.clock import Clock

if TYPE_CHECKING:
    from rotator.sandbox.azure.identity import TokenIssuer
    from rotator.sandbox.core.faults import FaultPlan

#: The audiences ARM accepts in a token (Azure public cloud).
ARM_AUDIENCES = frozenset({"https://management.azure.com", "https://management.core.windows.net"})
ARM_PREFIX = "/subscriptions/"
GATEWAY_PREFIX = "/apim/"
#: The Azure subscription services are seeded in unless told otherwise.
DEFAULT_AZURE_SUBSCRIPTION = "8b3e5c1a-0c6f-4d2e-9a7b-3f1d2c4e5a60"
DEFAULT_RESOURCE_GROUP = "rg-apim"
STATES = ("active", "suspended", "submitted", "rejected", "cancelled", "expired")
KEY_HEADER = "ocp-apim-subscription-key"
KEY_QUERY = "subscription-key"
_LOGIN = "https://login.windows.net/"
_PROVIDER = "Microsoft.ApiManagement"
_PATH = re.compile(
    r"/subscriptions/(?P<azure>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.ApiManagement/service/(?P<service>[^/]+)"
    r"/subscriptions/(?P<sid>[^/]+)(?:/(?P<action>[^/]+))?/?",
    re.IGNORECASE,
)
_GATEWAY = re.compile(r"/apim/(?P<service>[^/]+)(?:/.*)?")
_ACTIONS = {"regenerateprimarykey": "primary", "regeneratesecondarykey": "secondary"}
# ARM's answers to injected statuses.
_FAULTS = {
    403: (
        "AuthorizationFailed",
        "The client does not have authorization to perform this action over the scope, or the "
        "scope is invalid. If access was recently granted, please refresh your credentials.",
    ),
    429: ("TooManyRequests", "The request is being throttled."),
    500: ("InternalServerError", "The server encountered an internal error."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
}
_MISSING_KEY = (
    "Access denied due to missing subscription key. Make sure to include subscription key "
    "when making requests to an API."
)
_INVALID_KEY = (
    "Access denied due to invalid subscription key. Make sure to provide a valid key for an "
    "active subscription."
)


def new_key() -> str:
    """A subscription key as APIM generates them: 32 lower-case hex digits."""
    return secrets.token_hex(16)


def _arm_time(moment: datetime) -> str:
    """ARM's timestamps: seven fractional digits and a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass
class ApimReply:
    """What goes back on the wire for one APIM request (``body`` None: no content)."""

    status: int
    body: JSONDict | None
    headers: dict[str, str] = field(default_factory=dict)


class ArmError(Exception):
    """A failed ARM request, rendered as ``{"error":{"code","message"}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def reply(self) -> ApimReply:
        """The answer ARM sends."""
        return ApimReply(
            self.status, {"error": {"code": self.code, "message": self.message}}, self.headers
        )


def _unauthorized(code: str, message: str, description: str) -> ArmError:
    challenge = (
        f'Bearer authorization_uri="{_LOGIN}", error="invalid_token", '
        f'error_description="{description}"'
    )
    return ArmError(401, code, message, {"WWW-Authenticate": challenge})


@dataclass
class ApimSubscription:
    """One APIM subscription: its two keys and the contract fields ARM shows."""

    sid: str
    display_name: str
    scope: str
    state: str
    created: datetime
    primary: str
    secondary: str
    #: Bumped by every key change, so the ETag changes with it.
    revision: int = 1

    def key(self, slot: str) -> str:
        """The key in ``slot`` (``primary`` or ``secondary``)."""
        return self.primary if slot == "primary" else self.secondary

    def etag(self) -> str:
        """The entity tag ARM sends for this revision."""
        return f'"AAAAAAAA{self.revision:06X}="'


@dataclass
class ApimService:
    """One API Management instance: where it is, and its subscriptions by lower-cased sid."""

    azure_subscription: str
    resource_group: str
    name: str
    subscriptions: dict[str, ApimSubscription] = field(default_factory=dict)


class ApimEmulator:
    """The APIM services the emulator holds, and how it answers ARM and gateway requests.

    Seed with :meth:`add_subscription`; inspect with :meth:`keys` and :meth:`every_key`.
    Requests come from the emulator's HTTPS handler through :meth:`handle`.
    """

    def __init__(
        self,
        issuer: TokenIssuer,
        faults: FaultPlan,
        clock: Clock,
        base_url: Callable[[], str],
    ) -> None:
        self._issuer = issuer
        self._faults = faults
        self._clock = clock
        self._base_url = base_url
        self._services: dict[tuple[str, str, str], ApimService] = {}
        # Every key ever seeded or generated, oldest first: what a leak canary looks for.
        self._every_key: list[str] = []
        self._lock = threading.Lock()

    # -- seeding and inspection

    def add_subscription(
        self,
        service: str,
        sid: str,
        *,
        azure_subscription: str = DEFAULT_AZURE_SUBSCRIPTION,
        resource_group: str = DEFAULT_RESOURCE_GROUP,
        display_name: str | None = None,
        scope: str = "/apis",
        state: str = "active",
        primary_key: str | None = None,
        secondary_key: str | None = None,
    ) -> tuple[str, str]:
        """Create a subscription (and its service, if new); return its (primary, secondary) keys."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        key = (azure_subscription.lower(), resource_group.lower(), service.lower())
        with self._lock:
            found = self._services.setdefault(
                key, ApimService(azure_subscription.lower(), resource_group, service)
            )
            if sid.lower() in found.subscriptions:
                raise ValueError(f"subscription {sid} of service {service} exists already")
            created = ApimSubscription(
                sid=sid,
                display_name=display_name or sid,
                scope=scope,
                state=state,
                created=self._clock(),
                primary=primary_key or new_key(),
                secondary=secondary_key or new_key(),
            )
            found.subscriptions[sid.lower()] = created
            self._every_key += [created.primary, created.secondary]
            return created.primary, created.secondary

    def _find(self, service: str, sid: str) -> ApimSubscription:
        for held in self._services.values():
            if held.name.lower() == service.lower() and sid.lower() in held.subscriptions:
                return held.subscriptions[sid.lower()]
        raise KeyError(f"no subscription {sid} in service {service}")

    def keys(self, service: str, sid: str) -> tuple[str, str]:
        """The (primary, secondary) keys of a subscription, as listSecrets would answer."""
        with self._lock:
            found = self._find(service, sid)
            return found.primary, found.secondary

    def every_key(self) -> list[str]:
        """Every key any subscription held, seeded or generated, oldest first."""
        with self._lock:
            return list(self._every_key)

    def set_state(self, service: str, sid: str, state: str) -> None:
        """Change a subscription's state (the gateway accepts only ``active`` ones)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        with self._lock:
            self._find(service, sid).state = state

    def resource_path(
        self,
        service: str,
        sid: str,
        *,
        azure_subscription: str = DEFAULT_AZURE_SUBSCRIPTION,
        resource_group: str = DEFAULT_RESOURCE_GROUP,
    ) -> str:
        """The ARM path of a subscription (a prefix for ``inject_fault``)."""
        return (
            f"/subscriptions/{azure_subscription}/resourceGroups/{resource_group}/providers/"
            f"{_PROVIDER}/service/{service}/subscriptions/{sid}"
        )

    def gateway_url(self, service: str, path: str = "echo") -> str:
        """The emulated gateway's address for ``service`` (``https://127.0.0.1:P/apim/S/echo``)."""
        return f"{self._base_url()}{GATEWAY_PREFIX}{service}/{path}"

    # -- requests

    @staticmethod
    def serves(path: str) -> bool:
        """Tell whether a (decoded) path is an ARM or gateway request, not a vault one."""
        return path.startswith((ARM_PREFIX, GATEWAY_PREFIX))

    def handle(self, method: str, raw_path: str, query: str, headers: dict[str, str]) -> ApimReply:
        """Answer one request (``headers`` keys are lower-case)."""
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        path = urllib.parse.unquote(raw_path)
        try:
            if path.startswith(GATEWAY_PREFIX):
                return self._gateway(method, raw_path, path, params, headers)
            self._authenticate(headers.get("authorization"))
            injected = self._fault(path, method)
            if injected is not None:
                return injected
            return self._arm(method, raw_path, params)
        except ArmError as error:
            return error.reply()
        except Exception as exc:  # noqa: BLE001
            # An emulator bug must reach the client as a 500 envelope, not a dropped connection.
            return ArmError(500, "InternalServerError", f"emulator internal error: {exc!r}").reply()

    def _fault(self, path: str, method: str) -> ApimReply | None:
        fault = self._faults.take(path, method)
        if fault is None:
            return None
        if fault.delay:
            # A real wait, as the vault's faults do: timeout tests need one.
            time.sleep(fault.delay)
        if fault.status is None:
            return None
        code, message = _FAULTS.get(fault.status, (error_code(fault.status), "Injected."))
        error = ArmError(fault.status, code, message)
        if fault.retry_after is not None:
            error.headers["Retry-After"] = fault.retry_after
        return error.reply()

    def _authenticate(self, authorization: str | None) -> None:
        """Accept a bearer token this emulator issued for ARM, in its tenant, unexpired."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                "The authentication failed because of missing 'Authorization' header.",
            )
        issued = self._issuer.lookup(token)
        if issued is None:
            raise _unauthorized(
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                "The access token is invalid.",
            )
        if issued.audience.rstrip("/") not in ARM_AUDIENCES:
            raise _unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource "
                f"'{issued.audience}'. It should exactly match with one of the allowed audiences "
                "'https://management.core.windows.net/','https://management.core.windows.net',"
                "'https://management.azure.com/','https://management.azure.com'.",
                "The access token has been obtained for wrong audience or resource.",
            )
        if issued.tenant_id != self._issuer.tenant_id:
            raise _unauthorized(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer "
                f"'https://sts.windows.net/{issued.tenant_id}/'. It must match the tenant "
                f"'https://sts.windows.net/{self._issuer.tenant_id}/' associated with this "
                "subscription.",
                "The access token is from the wrong issuer.",
            )
        now = self._clock()
        if epoch(now) >= issued.expires_on:
            raise _unauthorized(
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time "
                f"'{now.strftime('%m/%d/%Y %H:%M:%S')}'.",
                "The access token expiry UTC time is earlier than current UTC time.",
            )

    def _arm(self, method: str, raw_path: str, params: dict[str, str]) -> ApimReply:
        """Serve an authenticated ARM request."""
        if not params.get("api-version"):
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        found = _PATH.fullmatch(raw_path)
        if found is None:
            raise ArmError(
                404,
                "NotFound",
                f"The emulator serves no ARM resource at "
                f"'{urllib.parse.unquote(raw_path)}' (only APIM subscriptions' keys).",
            )
        names = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items() if v}
        action = names.get("action", "").lower()
        allowed = {"": ("GET", "HEAD"), "listsecrets": ("POST",)}
        allowed.update({name: ("POST",) for name in _ACTIONS})
        if action not in allowed:
            raise ArmError(
                404,
                "NotFound",
                f"The emulator serves no action '{names['action']}' on APIM subscriptions.",
            )
        if method not in allowed[action]:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{method}'.",
                {"Allow": ", ".join(allowed[action])},
            )
        with self._lock:
            held = self._resolve(names["azure"], names["group"], names["service"], names["sid"])
            if action in _ACTIONS:
                fresh = new_key()
                if _ACTIONS[action] == "primary":
                    held.primary = fresh
                else:
                    held.secondary = fresh
                self._every_key.append(fresh)
                held.revision += 1
                return ApimReply(204, None)
            if action == "listsecrets":
                return ApimReply(
                    200,
                    {"primaryKey": held.primary, "secondaryKey": held.secondary},
                    {"ETag": held.etag()},
                )
            return ApimReply(200, self._contract(names, held), {"ETag": held.etag()})

    def _resolve(self, azure: str, group: str, service: str, sid: str) -> ApimSubscription:
        """Find a subscription, or raise the 404 ARM (or APIM) answers for what is missing."""
        in_azure = [s for s in self._services.values() if s.azure_subscription == azure.lower()]
        if not in_azure:
            raise ArmError(
                404, "SubscriptionNotFound", f"The subscription '{azure}' could not be found."
            )
        in_group = [s for s in in_azure if s.resource_group.lower() == group.lower()]
        if not in_group:
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found."
            )
        match = [s for s in in_group if s.name.lower() == service.lower()]
        if not match:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{_PROVIDER}/service/{service}' under resource group '{group}' "
                "was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        held = match[0].subscriptions.get(sid.lower())
        if held is None:
            raise ArmError(404, "ResourceNotFound", "Subscription not found.")
        return held

    def _contract(self, names: dict[str, str], held: ApimSubscription) -> JSONDict:
        """The SubscriptionContract ARM answers to a GET (no keys)."""
        service_id = (
            f"/subscriptions/{names['azure']}/resourceGroups/{names['group']}/providers/"
            f"{_PROVIDER}/service/{names['service']}"
        )
        created = _arm_time(held.created)
        scope = held.scope if held.scope.startswith("/subscriptions/") else service_id + held.scope
        return {
            "id": f"{service_id}/subscriptions/{held.sid}",
            "type": f"{_PROVIDER}/service/subscriptions",
            "name": held.sid,
            "properties": {
                "ownerId": f"{service_id}/users/1",
                "scope": scope,
                "displayName": held.display_name,
                "state": held.state,
                "createdDate": created,
                "startDate": created,
                "expirationDate": None,
                "endDate": None,
                "notificationDate": None,
                "stateComment": None,
                "allowTracing": False,
            },
        }

    def _gateway(
        self,
        method: str,
        raw_path: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
    ) -> ApimReply:
        """Answer a gateway call: 200 for a current key of an active subscription, else 401."""
        injected = self._fault(path, method)
        if injected is not None:
            return injected
        found = _GATEWAY.fullmatch(raw_path)
        if found is None or method not in ("GET", "HEAD", "POST"):
            return _gateway_error(404, "Resource not found")
        service = urllib.parse.unquote(found.group("service")).lower()
        presented = headers.get(KEY_HEADER) or params.get(KEY_QUERY)
        with self._lock:
            held = [s for s in self._services.values() if s.name.lower() == service]
            if not held:
                return _gateway_error(404, "Resource not found")
            if not presented:
                return _gateway_error(401, _MISSING_KEY)
            for subscription in (sub for s in held for sub in s.subscriptions.values()):
                if subscription.state != "active":
                    continue
                for slot in ("primary", "secondary"):
                    if secrets.compare_digest(presented.encode(), subscription.key(slot).encode()):
                        return ApimReply(200, {"subscription": subscription.sid, "key": slot})
        return _gateway_error(401, _INVALID_KEY)


def _gateway_error(status: int, message: str) -> ApimReply:
    # The gateway's own envelope, not ARM's.
    return ApimReply(
        status,
        {"statusCode": status, "message": message},
        {"x-ms-request-id": str(uuid.uuid4())},
    )
