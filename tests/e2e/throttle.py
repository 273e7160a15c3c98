"""A throttling reverse proxy for end-to-end tests: moto_server behind AWS-like request quotas.

:class:`ThrottlingProxy` (a :class:`tests.proxy.ForwardingProxy`) listens on
a free 127.0.0.1 port and forwards every request to an upstream moto_server,
except that each AWS service gets at most ``limits[service]`` requests a
second, in bursts of at most ``burst`` (a token bucket on an injectable
monotonic clock, the way AWS meters request quotas). A request that finds the
bucket empty is answered by the proxy itself, the way AWS throttles, so
botocore classifies it exactly as it would a real one
(``botocore.retries.standard`` matches the parsed error code against its
fixed throttling list, or a bare HTTP 429):

- JSON protocol (Secrets Manager): HTTP 400, ``x-amzn-ErrorType:
  ThrottlingException`` and ``{"__type":"ThrottlingException",...}``;
- query protocol (IAM, STS): HTTP 400 and an XML ``ErrorResponse`` whose
  ``Code`` is ``Throttling``;
- REST-JSON (API Gateway): HTTP 429 ``TooManyRequestsException``.

The service is the one in the SigV4 credential scope of the
``Authorization`` header (``.../<region>/<service>/aws4_request``), or the
``X-Amz-Target`` prefix when the request is unsigned; requests with neither
(``/moto-api/``) are never throttled. Forwarded and throttled requests are
counted per (service, operation) for assertions.

Request bodies hold secret values: they are forwarded untouched and never
logged; only the ``Action`` of a query-protocol body is read.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Mapping

from tests.proxy import Answer, ForwardingProxy, Headers

Clock = Callable[[], float]

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")

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
    service = scope.group(1) if scope else prefix.lower()
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


class ThrottlingProxy(ForwardingProxy):
    """A threaded reverse proxy to ``upstream`` enforcing per-service request quotas.

    ``limits`` maps a service name (``secretsmanager``, ``iam``,
    ``apigateway``) to the requests a second it may have, in bursts of at
    most ``burst`` (default: one second's worth); services not named are not
    limited. Use it as a context manager:
    ``with ThrottlingProxy(moto_url, {"secretsmanager": 20}) as proxy:`` and
    point clients at :attr:`url`.
    """

    def __init__(
        self,
        upstream: str,
        limits: Mapping[str, float],
        *,
        burst: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(upstream)
        self._clock = clock
        self._buckets = {
            service: TokenBucket(rate, burst, clock=clock) for service, rate in limits.items()
        }
        self._lock = threading.Lock()
        self._forwarded: Counter[tuple[str, str]] = Counter()
        self._throttled: Counter[tuple[str, str]] = Counter()
        self._admitted_at: dict[str, list[float]] = {}

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

    # -- one request --------------------------------------------------------

    def intercept(self, method: str, target: str, headers: Headers, body: bytes) -> Answer | None:
        """Answer a call beyond its service's quota as AWS throttles; let the others through."""
        service, operation = identify(method, target, headers, body)
        if self._admit(service, operation):
            return None
        status, throttle_headers, payload = throttling_answer(service, headers, str(uuid.uuid4()))
        return status, list(throttle_headers.items()), payload

    def _admit(self, service: str, operation: str) -> bool:
        """Decide whether a call goes upstream, and count it either way."""
        bucket = self._buckets.get(service)
        admitted = bucket is None or bucket.admit()
        with self._lock:
            if admitted:
                self._forwarded[service, operation] += 1
                self._admitted_at.setdefault(service, []).append(self._clock())
            else:
                self._throttled[service, operation] += 1
        return admitted
