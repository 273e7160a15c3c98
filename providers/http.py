"""Target ``webhook`` (tell a consumer to reload) and verifier ``http`` (probe a credential).

Both speak HTTP through rotator's client (:mod:`providers.transport.http`, on
httpx): certificates are verified (against the system's CAs, or ``ca_file``),
redirects are never followed (a redirect would carry a signed body, or an
``Authorization`` header holding the new credential, to another host), and
the proxy is the environment's (``HTTPS_PROXY``, unless ``NO_PROXY`` names
the host) or the policy's ``proxy`` (a URL, or ``none``). ``https://`` is
required, except to ``localhost``, ``127.0.0.1`` and ``::1``. ``timeout``
bounds the connection and each read.

**Webhook.** ``write`` POSTs ``{"event": "rotated", ...}`` and ``restore``
POSTs ``{"event": "restored", ...}``, as compact JSON::

    {"event": "rotated", "secret": "payments-db", "rotation_id": "…", "timestamp": 1767225600}

with ``"value"`` (the new value on ``rotated``, the previous one or ``null``
on ``restored``; a mapping as an object) only when ``include_value`` is
true. Leave it false where the consumer can read the store itself: a
webhook is best a "reload now" signal.

Each request is signed, the way Stripe and GitHub sign theirs::

    X-Rotator-Timestamp: 1767225600
    X-Rotator-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>

where ``key`` is the UTF-8 text of the environment variable named by
``secret_env`` (read at each request, never from the policy) and ``<body>``
the exact bytes received. A receiver recomputes the HMAC over the raw body,
compares it in constant time, and rejects a timestamp more than a few
minutes from its own clock (a replay). Deliveries are at least once: a retry
after a lost answer, or the engine resuming a rotation, sends the same
event again, so a receiver dedupes on ``(rotation_id, event)`` (or simply
makes its reload idempotent). A retried request is signed afresh, with a new
timestamp.

Answers: 2xx is success; 429, 408, a 5xx but 501, a timeout or a lost
connection are retried up to ``attempts`` times (waiting 1, 2, 4... seconds,
at most 30, or what ``Retry-After`` asks, at most 60), then raise
``TransientError``; 401 and 403 raise ``PermissionDeniedError``, 404 and 410
``NotFoundError``, any other answer (a redirect or a 501 included)
``PermanentError``. ``check`` opens a
connection (and the TLS handshake) without sending anything.

**HTTP verifier.** ``verify`` sends ``method`` to ``url`` with ``headers``,
in whose values ``{new}`` is replaced by the new credential's text and
``{new.FIELD}`` by one field of a JSON credential (``{new.SecretAccessKey}``).
The URL never carries the credential (URLs are logged by every proxy and
server). An answer whose status is not in ``expect_status`` raises
``VerificationError`` at once (a health check answers 503 when it is
unhealthy: that is the verdict, not a reason to retry); a timeout or a lost
connection is retried up to ``attempts`` times, then raises
``TransientError``.

Every attempt is reported through :func:`providers.metering.report`, as
provider ``webhook`` operation ``webhook.post``, or provider ``http``
operation ``http.verify``. No header, body or value ever reaches a log line
or an error message: they name the URL (without its query) and the status.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers.metering import report
from providers.transport.http import (
    POST_RESERVED,
    EndpointConfig,
    Reply,
    checked_headers,
    hmac_key,
    reach,
    refusal,
    request_once,
    request_outcome,
    route,
    signature_headers,
    tls_context,
    why_unsent,
    without_query,
)
from rotator.adapters import Credential, SecretValue, Target, Verifier
from rotator.errors import PermanentError, TransientError, VerificationError

WEBHOOK = "webhook"
HTTP = "http"
OP_POST = "webhook.post"
OP_VERIFY = "http.verify"
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{new(?:\.([A-Za-z0-9_.-]+))?\}")
_BRACED = re.compile(r"\{new[^}]*\}?")
#: Headers rotator sets itself, which a policy may not set.
_VERIFIER_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection"})

log = logging.getLogger(__name__)


class WebhookConfig(EndpointConfig):
    """Policy fields of the ``webhook`` target."""

    #: Name of the environment variable holding the HMAC key.
    secret_env: str
    #: Tries per delivery (the first included) on 429, 5xx and network errors.
    attempts: int = Field(default=4, ge=1, le=10)
    #: Put the value in the body (off: the webhook only says "reload").
    include_value: bool = False
    #: Extra static headers, never secret.
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"secret_env {value!r} is not an environment variable name")
        return value

    @field_validator("headers")
    @classmethod
    def _headers_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if "{new" in text:
                raise ValueError(f"header {name}: a webhook's headers are static, no {{new}}")
        return checked_headers(value, POST_RESERVED)


class HttpVerifierConfig(EndpointConfig):
    """Policy fields of the ``http`` verifier."""

    method: Literal["GET", "HEAD", "POST"] = "GET"
    #: Headers; ``{new}`` and ``{new.FIELD}`` in a value are replaced by the credential.
    headers: dict[str, str] = Field(default_factory=dict)
    #: The status (or statuses) that mean the credential works.
    expect_status: int | list[int] = 200
    #: Tries (the first included) when the connection fails; a status is never retried.
    attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("headers")
    @classmethod
    def _headers_ok(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            for found in _BRACED.finditer(text):
                if not _PLACEHOLDER.fullmatch(found.group()):
                    raise ValueError(
                        f"header {name}: {found.group()!r} is not {{new}} or {{new.FIELD}}"
                    )
        return checked_headers(value, _VERIFIER_RESERVED)

    @field_validator("expect_status")
    @classmethod
    def _statuses_ok(cls, value: int | list[int]) -> int | list[int]:
        statuses = [value] if isinstance(value, int) else value
        if not statuses:
            raise ValueError("expect_status needs at least one status")
        for status in statuses:
            if not 100 <= status <= 599:
                raise ValueError(f"expect_status {status} is not an HTTP status")
        return value

    def statuses(self) -> tuple[int, ...]:
        """Return the expected statuses as a tuple."""
        return (
            (self.expect_status,)
            if isinstance(self.expect_status, int)
            else tuple(self.expect_status)
        )


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Return the wait before try ``attempt + 1``: 1, 2, 4... s, or what Retry-After asks."""
    delay = min(2.0 ** (attempt - 1), MAX_BACKOFF)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


# -- webhook ----------------------------------------------------------------


class WebhookTarget(Target[WebhookConfig]):
    """Tells a consumer the credential changed, with a POST signed by HMAC-SHA256."""

    kind = "webhook"
    #: httpx carries the requests (:mod:`providers.transport.http`).
    Config = WebhookConfig
    example: ClassVar[Mapping[str, object]] = {
        "url": "https://app.example.com/hooks/reload",
        "secret_env": "APP_WEBHOOK_KEY",
    }
    docs = "docs/targets.md"

    def describe(self) -> str:
        """Return ``webhook:<url>`` (without its query)."""
        return f"{WEBHOOK}:{without_query(self.config.url)}"

    def _key(self, operation: str) -> bytes:
        """Return the HMAC key from ``secret_env``; PermanentError naming the variable if unset."""
        return hmac_key(self.config.secret_env, "the webhook's HMAC key", WEBHOOK, operation)

    def _body(self, event: str, rotation_id: str, value: SecretValue | None, stamp: int) -> bytes:
        payload: dict[str, Any] = {
            "event": event,
            "secret": self.secret,
            "rotation_id": rotation_id,
            "timestamp": stamp,
        }
        if self.config.include_value:
            plain = None if value is None else value.reveal()
            payload["value"] = plain if plain is None or isinstance(plain, str) else dict(plain)
        return json.dumps(payload, separators=(",", ":")).encode("utf-8")

    def _deliver(self, event: str, rotation_id: str, value: SecretValue | None) -> None:
        """POST ``event``, retrying 429/5xx/network errors; raise what the last answer means."""
        key = self._key(OP_POST)
        context = tls_context(self.runtime, self.config.ca_file, WEBHOOK, OP_POST)
        where = without_query(self.config.url)
        attempts = self.config.attempts
        reply = Reply()
        for attempt in range(1, attempts + 1):
            now = self.runtime.clock()
            stamp = int(now.timestamp())
            body = self._body(event, rotation_id, value, stamp)
            headers = {
                **self.config.headers,
                "Content-Type": "application/json",
                "User-Agent": "rotator-webhook",
                **signature_headers(key, stamp, body),
            }
            reply = request_once(
                self.config.url,
                "POST",
                headers,
                body,
                self.config.timeout.total_seconds(),
                context,
                now,
                self.config.proxy,
            )
            outcome = request_outcome(reply)
            report(self.runtime, WEBHOOK, OP_POST, outcome)
            if outcome == "ok":
                log.debug("webhook %s: %s delivered (HTTP %s)", where, event, reply.status)
                return
            if outcome == "permanent":
                raise self._refused(reply, where)
            if attempt < attempts:
                delay = _backoff(attempt, reply.retry_after)
                log.warning(
                    "webhook %s: %s; retrying in %gs (attempt %d of %d)",
                    where,
                    reply.said(),
                    delay,
                    attempt,
                    attempts,
                )
                self.runtime.sleep(delay)
        raise TransientError(
            f"{where}: {reply.said()} after {attempts} attempts",
            provider=WEBHOOK,
            operation=OP_POST,
            delay=reply.retry_after,
        )

    @staticmethod
    def _refused(reply: Reply, where: str) -> PermanentError:
        return refusal(
            reply,
            where,
            WEBHOOK,
            OP_POST,
            "the receiver refused the request (does it hold the same HMAC key?)",
        )

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """POST ``{"event": "rotated"}`` (with the value only if ``include_value``).

        Raises:
            PermanentError: ``secret_env`` is unset, or the receiver refused
                (``PermissionDeniedError`` for 401/403, ``NotFoundError`` for 404/410).
            TransientError: 429, 5xx or no answer after every attempt.
        """
        self._deliver("rotated", rotation_id, value)

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """POST ``{"event": "restored"}`` (with the previous value only if ``include_value``).

        Sent even when ``write`` never ran: the receiver reloads what is
        current, which is the previous credential. Raises what ``write`` raises.
        """
        self._deliver("restored", rotation_id, previous)

    def check(self) -> str:
        """Check the key variable is set and the host accepts a connection; send nothing.

        The connection goes as a delivery would: through the proxy of the
        environment or of ``proxy`` (its tunnel opened), TLS verified.
        """
        self._key("check")
        parts = urlsplit(self.config.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        context = tls_context(self.runtime, self.config.ca_file, WEBHOOK, "check")
        way = route(self.config.url, self.config.proxy)
        timeout = self.config.timeout.total_seconds()
        reply = reach(self.config.url, timeout, context, self.config.proxy)
        if reply.permanent:
            raise PermanentError(
                f"{host}:{port}: {why_unsent(reply.failure)}", provider=WEBHOOK, operation="check"
            )
        if reply.failure:
            raise TransientError(
                f"{host}:{port}: no connection ({reply.failure})",
                provider=WEBHOOK,
                operation="check",
            )
        tls = " (TLS verified)" if parts.scheme == "https" else ""
        via = "" if way.proxy is None else f", {way.shown()}"
        return f"reachable: {host}:{port}{tls}{via}"


# -- HTTP verifier -----------------------------------------------------------


class HttpVerifier(Verifier[HttpVerifierConfig]):
    """Proves a credential works by calling an endpoint with it and checking the status."""

    kind = "http"
    #: httpx carries the requests (:mod:`providers.transport.http`).
    Config = HttpVerifierConfig
    example: ClassVar[Mapping[str, object]] = {
        "url": "https://app.example.com/health",
        "headers": {"Authorization": "Bearer {new}"},
        "expect_status": 200,
    }
    docs = "docs/targets.md"

    def describe(self) -> str:
        """Return ``http:<url>`` (without its query)."""
        return f"{HTTP}:{without_query(self.config.url)}"

    def _headers(self, value: SecretValue) -> dict[str, str]:
        """Return the headers with ``{new}`` / ``{new.FIELD}`` replaced by the credential."""
        out: dict[str, str] = {}
        for name, template in self.config.headers.items():
            missing: list[str] = []

            def fill(found: re.Match[str], missing: list[str] = missing) -> str:
                field = found.group(1)
                if field is None:
                    return value.text()
                picked = value.fields(field)
                if picked is None:
                    missing.append(field)
                    return ""
                return picked[0]

            text = _PLACEHOLDER.sub(fill, template)
            if missing:
                raise PermanentError(
                    f"header {name}: the credential has no string field {missing[0]!r}",
                    provider=HTTP,
                    operation=OP_VERIFY,
                )
            if any(c in text for c in "\r\n\0") or not _latin1(text):
                raise PermanentError(
                    f"header {name}: the credential holds characters a header cannot carry",
                    provider=HTTP,
                    operation=OP_VERIFY,
                )
            out[name] = text
        out.setdefault("User-Agent", "rotator-verifier")
        return out

    def verify(self, credential: Credential) -> None:
        """Send the request with the credential in its headers; expect one of ``expect_status``.

        Raises:
            VerificationError: the answer's status is not expected.
            TransientError: no answer (timeout, refused or lost connection)
                after every attempt.
            PermanentError: the certificate was refused, or a ``{new.FIELD}``
                names a field the credential lacks.
        """
        headers = self._headers(credential.value)
        context = tls_context(self.runtime, self.config.ca_file, HTTP, OP_VERIFY)
        where = without_query(self.config.url)
        expected = self.config.statuses()
        body = b"" if self.config.method == "POST" else None
        attempts = self.config.attempts
        reply = Reply()
        for attempt in range(1, attempts + 1):
            now = self.runtime.clock()
            reply = request_once(
                self.config.url,
                self.config.method,
                headers,
                body,
                self.config.timeout.total_seconds(),
                context,
                now,
                self.config.proxy,
            )
            if reply.status is not None:
                matched = reply.status in expected
                report(self.runtime, HTTP, OP_VERIFY, "ok" if matched else request_outcome(reply))
                if matched:
                    log.debug("verifier %s answered HTTP %s", where, reply.status)
                    return
                wanted = " or ".join(str(s) for s in expected)
                raise VerificationError(
                    f"{self.config.method} {where} answered HTTP {reply.status}, expected {wanted}",
                    provider=HTTP,
                    operation=OP_VERIFY,
                )
            report(self.runtime, HTTP, OP_VERIFY, request_outcome(reply))
            if reply.permanent:
                raise PermanentError(
                    f"{where}: {why_unsent(reply.failure)}", provider=HTTP, operation=OP_VERIFY
                )
            if attempt < attempts:
                delay = _backoff(attempt, None)
                log.warning(
                    "verifier %s: no answer (%s); retrying in %gs (attempt %d of %d)",
                    where,
                    reply.failure,
                    delay,
                    attempt,
                    attempts,
                )
                self.runtime.sleep(delay)
        raise TransientError(
            f"{where}: no answer ({reply.failure}) after {attempts} attempts",
            provider=HTTP,
            operation=OP_VERIFY,
        )


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
