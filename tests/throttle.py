"""A throttling reverse proxy: moto_server behind AWS-like request quotas, for tests and benchmarks.

:class:`ThrottlingProxy` (a :class:`tests.proxy.ForwardingProxy`) listens on
a free 127.0.0.1 port and forwards every request to an upstream moto_server,
except the requests beyond a :class:`Quota`. A quota names a service, the
operations it meters (every operation of the service if none), a scope and
a rate: a token bucket on an injectable monotonic clock, refilled
continuously the way AWS meters request quotas, with one bucket per scope:

- :attr:`Scope.GLOBAL`: one bucket for every caller (what the end-to-end
  throttling tests need: ``ThrottlingProxy(url, {"secretsmanager": 20})``);
- :attr:`Scope.ACCOUNT_REGION`: one bucket per AWS account and Region, as
  AWS meters its API quotas (:data:`SECRETS_MANAGER_WRITES`). The Region is
  the one in the SigV4 credential scope of the ``Authorization`` header; the
  account is the one moto_server serves the request as (:class:`MotoAccounts`),
  which is also the account AWS throttles: "Secrets Manager throttles the
  account of the identity that makes the requests, not the account that owns
  the secret" (Secrets Manager quotas, AWS documentation).

A request is metered by the first quota that names it (AWS counts each API
against one quota). One that finds its bucket empty is answered by the proxy
itself, the way AWS throttles, so botocore classifies it exactly as it would
a real one (``botocore.retries.standard`` matches the parsed error code
against its fixed throttling list, or a bare HTTP 429):

- JSON protocol (Secrets Manager): HTTP 400, ``x-amzn-ErrorType:
  ThrottlingException`` and ``{"__type":"ThrottlingException",...}``;
- query protocol (IAM, STS): HTTP 400 and an XML ``ErrorResponse`` whose
  ``Code`` is ``Throttling``;
- REST-JSON (API Gateway): HTTP 429 ``TooManyRequestsException``.

The service is the one in the SigV4 credential scope, or the
``X-Amz-Target`` prefix when the request is unsigned; requests with neither
(``/moto-api/``) are never throttled. Forwarded and throttled requests are
counted per (service, operation), and the metered ones per :class:`Meter`
(account, Region, quota) with the clock reading of each admission.

Request bodies hold secret values: they are forwarded untouched and never
logged; only the ``Action`` of a query-protocol body is read.
"""

from __future__ import annotations

import enum
import http.client
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from tests.proxy import Answer, ForwardingProxy, Headers

Clock = Callable[[], float]

#: ``Credential=<access key id>/<date>/<region>/<service>/aws4_request`` (SigV4).
_SCOPE = re.compile(
    r"Credential=(?P<key>[^/,\s]+)/\d{8}/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)/aws4_request"
)
_ACCOUNT = re.compile(r"<Account>(\d{12})</Account>")
#: Wire protocol of the services rotator calls, for the shape of a throttling answer.
PROTOCOLS = {
    "secretsmanager": "json",
    "iam": "query",
    "sts": "query",
    "apigateway": "rest-json",
}
_QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}


class TokenBucket:
    """Lets ``rate`` events a second through, in bursts of at most ``burst``; refuses the rest.

    The way AWS meters a request quota: the bucket refills continuously, so
    a client that backs off briefly finds a few tokens again, rather than
    waiting for a whole window to pass. Unlike :class:`rotator.adapters.ratelimit.TokenBucket`
    it never waits: an event finding the bucket empty is refused.
    """

    def __init__(
        self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        """Take a token and return True, or return False if there is none.

        A refused event takes nothing, so a client that keeps retrying is
        slowed down, never locked out.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def identify(method: str, target: str, headers: Headers, body: bytes) -> tuple[str, str]:
    """Return the (service, operation) of one AWS request; ``("", ...)`` if it is not one.

    ``target`` is the request target (path and query).
    """
    amz_target = headers.get("X-Amz-Target") or ""
    prefix, _, json_operation = amz_target.rpartition(".")
    scope = _SCOPE.search(headers.get("Authorization") or "")
    # The credential scope names the service as AWS meters it; a target prefix
    # may carry an API version (DynamoDB_20120810), so it is only the fallback.
    service = scope["service"] if scope else prefix.lower()
    if json_operation:
        return service, json_operation
    path, _, query = target.partition("?")
    action = urllib.parse.parse_qs(query).get("Action")
    content_type = headers.get("Content-Type") or ""
    if not action and content_type.startswith("application/x-www-form-urlencoded"):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return service, action[0]
    # REST protocols: the method and the first path segment (ids follow it),
    # enough to tell the calls of one test apart without unbounded labels.
    segment = path.lstrip("/").split("/", 1)[0]
    return service, f"{method} /{segment}"


def _protocol(service: str, headers: Headers) -> str:
    known = PROTOCOLS.get(service)
    if known is not None:
        return known
    if headers.get("X-Amz-Target"):
        return "json"
    if (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
        return "query"
    return "rest-json"


def throttling_answer(
    service: str, headers: Headers, request_id: str
) -> tuple[int, dict[str, str], bytes]:
    """Return the (status, headers, body) AWS sends when it throttles a call to ``service``."""
    protocol = _protocol(service, headers)
    if protocol == "json":
        return (
            400,
            {
                "Content-Type": "application/x-amz-json-1.1",
                "x-amzn-RequestId": request_id,
                "x-amzn-ErrorType": "ThrottlingException",
            },
            b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
        )
    if protocol == "query":
        namespace = _QUERY_NAMESPACES.get(service, f"https://{service}.amazonaws.com/doc/")
        xml = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>'
            "<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return 400, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml.encode()
    return (
        429,
        {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": "TooManyRequestsException",
            # API Gateway models Retry-After on this error; a token comes
            # back within a second at any quota of 1/s or more.
            "Retry-After": "1",
        },
        b'{"message":"Too Many Requests"}',
    )


class Scope(enum.Enum):
    """Over what a quota's buckets are shared."""

    #: One bucket for every caller, whatever its account or Region.
    GLOBAL = "global"
    #: One bucket per account and Region, as AWS meters its API quotas.
    ACCOUNT_REGION = "account-region"


@dataclass(frozen=True)
class Quota:
    """One request quota: the calls it meters, the scope of its buckets, their rate.

    ``operations`` empty meters every operation of ``service``. ``burst`` is
    the most requests one bucket lets through at once (default: one second's
    worth, at least one).
    """

    name: str
    service: str
    rate: float
    operations: frozenset[str] = frozenset()
    scope: Scope = Scope.ACCOUNT_REGION
    burst: float | None = None

    def meters(self, service: str, operation: str) -> bool:
        """Return whether a call of ``operation`` to ``service`` counts against this quota."""
        return service == self.service and (not self.operations or operation in self.operations)


#: Secrets Manager's writes, 50 a second per account and Region, not adjustable: the
#: quota table's "Combined rate of PutSecretValue, RemoveRegionsFromReplication,
#: ReplicateSecretToRegion, StopReplicationToReplica, UpdateSecret, and
#: UpdateSecretVersionStage API requests". Reads have quotas of their own, in the
#: thousands a second; none is modelled here.
SECRETS_MANAGER_WRITES = Quota(
    "secretsmanager.write",
    "secretsmanager",
    50.0,
    operations=frozenset(
        {
            "PutSecretValue",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegion",
            "StopReplicationToReplica",
            "UpdateSecret",
            "UpdateSecretVersionStage",
        }
    ),
)


class Meter(NamedTuple):
    """Where a metered request is counted: the caller's account, the Region, the quota's name.

    Account and Region are empty for an unsigned request.
    """

    account: str
    region: str
    quota: str


@dataclass
class QuotaUse:
    """What one meter saw: when requests were let through (the proxy's clock), how many not."""

    admitted_at: list[float] = field(default_factory=list)
    throttled: int = 0

    @property
    def forwarded(self) -> int:
        """The requests let through."""
        return len(self.admitted_at)


class AccountUnknown(Exception):
    """moto_server did not say which account an access key belongs to."""


#: Sends one request upstream as the proxy does: (headers, body) -> answer.
Upstream = Callable[[list[tuple[str, str]], bytes], Answer]


class MotoAccounts:
    """Tells which account moto_server serves a request as, asking moto itself once per caller.

    moto picks a request's account (``get_current_account`` in
    ``moto/core/responses.py``) from, in order: ``MOTO_ACCOUNT_ID`` in its own
    environment, an ``x-moto-account-id`` header, the account of the IAM or
    STS access key the SigV4 credential names (a key id moto never issued,
    or one not shaped like ``AKIA...`` with 20 characters, falls through to
    the default), and 123456789012. Rather than copy those rules, this asks
    moto's STS ``GetCallerIdentity`` with the same key id and header, which
    moto answers by the same rules (and AWS with the caller's account, the
    one it throttles). A key never moves to another account, so each answer
    is kept per (key id, header).
    """

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._known: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, headers: Headers) -> str:
        """Return the account of requests signed with access key id ``key`` and ``headers``."""
        header = headers.get("x-moto-account-id") or ""
        with self._lock:
            known = self._known.get((key, header))
        if known is not None:
            return known
        # moto does not check signatures: the credential scope is all it reads.
        ask = [
            ("Host", headers.get("Host") or "localhost"),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            (
                "Authorization",
                f"AWS4-HMAC-SHA256 Credential={key}/20000101/us-east-1/sts/aws4_request, "
                f"SignedHeaders=host, Signature={'0' * 64}",
            ),
        ]
        if header:
            ask.append(("x-moto-account-id", header))
        status, _, payload = self._upstream(ask, b"Action=GetCallerIdentity&Version=2011-06-15")
        found = _ACCOUNT.search(payload.decode("utf-8", "replace"))
        if status != 200 or found is None:
            raise AccountUnknown(f"STS GetCallerIdentity answered HTTP {status} without an account")
        with self._lock:
            self._known[key, header] = found[1]
        return found[1]


#: Tells the account of a request from its access key id and headers.
AccountOf = Callable[[str, Headers], str]


class ThrottlingProxy(ForwardingProxy):
    """A threaded reverse proxy to ``upstream`` enforcing request quotas.

    ``quotas`` are :class:`Quota` rules; ``limits`` is the short form of a
    global quota per service: it maps a service name (``secretsmanager``,
    ``iam``, ``apigateway``) to the requests a second it may have, in bursts
    of at most ``burst`` (default: one second's worth). A request counts
    against the first of ``quotas`` that meters it, else its service's
    limit; the rest are not limited. ``accounts`` tells a request's account
    (default: :class:`MotoAccounts` asking the upstream). Use it as a context
    manager: ``with ThrottlingProxy(moto_url, quotas=[SECRETS_MANAGER_WRITES]) as proxy:``
    and point clients at :attr:`url`.
    """

    def __init__(
        self,
        upstream: str,
        limits: Mapping[str, float] | None = None,
        *,
        quotas: Iterable[Quota] = (),
        burst: float | None = None,
        clock: Clock = time.monotonic,
        accounts: AccountOf | None = None,
    ) -> None:
        super().__init__(upstream)
        self._clock = clock
        self._quotas = [
            *quotas,
            *(
                Quota(service, service, rate, scope=Scope.GLOBAL, burst=burst)
                for service, rate in (limits or {}).items()
            ),
        ]
        self._accounts = accounts or MotoAccounts(lambda h, b: self._forward("POST", "/", h, b))
        self._buckets: dict[Meter, TokenBucket] = {}
        self._lock = threading.Lock()
        self._forwarded: Counter[tuple[str, str]] = Counter()
        self._throttled: Counter[tuple[str, str]] = Counter()
        self._admitted_at: dict[str, list[float]] = {}
        self._usage: dict[Meter, QuotaUse] = {}

    # -- figures ------------------------------------------------------------

    def forwarded(self) -> Counter[tuple[str, str]]:
        """Return a copy of the forwarded request counts per (service, operation)."""
        with self._lock:
            return Counter(self._forwarded)

    def throttled(self) -> Counter[tuple[str, str]]:
        """Return a copy of the throttled request counts per (service, operation)."""
        with self._lock:
            return Counter(self._throttled)

    def total(self, counts: Counter[tuple[str, str]], service: str) -> int:
        """Return the sum of ``counts`` over every operation of ``service``."""
        return sum(n for (svc, _), n in counts.items() if svc == service)

    def admitted_at(self, service: str) -> list[float]:
        """Return the clock readings at which requests to ``service`` were let through."""
        with self._lock:
            return list(self._admitted_at.get(service, ()))

    def usage(self) -> dict[Meter, QuotaUse]:
        """Return a copy of what each (account, Region, quota) let through and throttled."""
        with self._lock:
            return {
                meter: QuotaUse(list(use.admitted_at), use.throttled)
                for meter, use in self._usage.items()
            }

    # -- one request --------------------------------------------------------

    def intercept(self, method: str, target: str, headers: Headers, body: bytes) -> Answer | None:
        """Answer a call beyond its quota as AWS throttles; let the others through."""
        service, operation = identify(method, target, headers, body)
        quota = next((q for q in self._quotas if q.meters(service, operation)), None)
        meter: Meter | None = None
        if quota is not None:
            try:
                meter = self._meter(quota, headers)
            except (AccountUnknown, OSError, http.client.HTTPException) as exc:
                # What the proxy says when it cannot reach upstream either.
                message = f"account unknown: {type(exc).__name__}".encode()
                return 502, [("Content-Type", "text/plain")], message
        if self._admit(service, operation, quota, meter):
            return None
        status, throttle_headers, payload = throttling_answer(service, headers, str(uuid.uuid4()))
        return status, list(throttle_headers.items()), payload

    def _meter(self, quota: Quota, headers: Headers) -> Meter:
        """Return the account, Region and quota a request is counted under."""
        scope = _SCOPE.search(headers.get("Authorization") or "")
        if scope is None:
            return Meter("", "", quota.name)
        return Meter(self._accounts(scope["key"], headers), scope["region"], quota.name)

    def _admit(
        self, service: str, operation: str, quota: Quota | None, meter: Meter | None
    ) -> bool:
        """Decide whether a call goes upstream, and count it either way."""
        admitted = True
        if quota is not None and meter is not None:
            where = Meter("", "", quota.name) if quota.scope is Scope.GLOBAL else meter
            with self._lock:
                bucket = self._buckets.get(where)
                if bucket is None:
                    bucket = TokenBucket(quota.rate, quota.burst, clock=self._clock)
                    self._buckets[where] = bucket
            admitted = bucket.admit()
        now = self._clock()
        with self._lock:
            if admitted:
                self._forwarded[service, operation] += 1
                self._admitted_at.setdefault(service, []).append(now)
            else:
                self._throttled[service, operation] += 1
            if meter is not None:
                use = self._usage.setdefault(meter, QuotaUse())
                if admitted:
                    use.admitted_at.append(now)
                else:
                    use.throttled += 1
        return admitted
