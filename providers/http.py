"""Target ``webhook`` (tell a consumer to reload) and verifier ``http`` (probe a credential).

Both speak HTTP through the standard library (``http.client`` and ``ssl``):
certificates are verified (against the system's CAs, or ``ca_file``),
redirects are never followed (a redirect would carry a signed body, or an
``Authorization`` header holding the new credential, to another host), and
no proxy from the environment is used. ``https://`` is required, except to
``localhost``, ``127.0.0.1`` and ``::1``. ``timeout`` bounds the connection
and each read.

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

Answers: 2xx is success; 429, 408, 5xx, a timeout or a lost connection are
retried up to ``attempts`` times (waiting 1, 2, 4... seconds, at most 30, or
what ``Retry-After`` asks, at most 60), then raise ``TransientError``; 401
and 403 raise ``PermissionDeniedError``, 404 and 410 ``NotFoundError``, any
other answer (a redirect included) ``PermanentError``. ``check`` opens a
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

import hashlib
import hmac
import json
import logging
import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers.metering import report
from rotator.adapters.durations import Duration
from rotator.adapters.roles import Credential, ProviderConfig, Runtime, Target, Verifier
from rotator.adapters.secret import SecretValue
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
    VerificationError,
)
from rotator.output import redact

WEBHOOK = "webhook"
HTTP = "http"
OP_POST = "webhook.post"
OP_VERIFY = "http.verify"
#: Hosts plain ``http://`` is allowed to (nothing leaves the machine).
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_BACKOFF = 30.0
MAX_RETRY_AFTER = 60.0
#: How much of an answer's body is read (and thrown away) before closing.
_DRAIN = 64 * 1024

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PLACEHOLDER = re.compile(r"\{new(?:\.([A-Za-z0-9_.-]+))?\}")
_BRACED = re.compile(r"\{new[^}]*\}?")
#: Headers rotator sets itself, which a policy may not set.
_WEBHOOK_RESERVED = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)
_VERIFIER_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection"})

log = logging.getLogger(__name__)


def _checked_url(value: str) -> str:
    """Return ``value`` if it is an http(s) URL rotator may send a credential to."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"url must be an https:// URL, not {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("url may not carry a user or password (policies are not secret)")
    if parts.fragment:
        raise ValueError("url may not have a #fragment")
    if "{new" in value:
        raise ValueError("url may not carry the credential (URLs are logged); use a header")
    try:
        parts.port  # noqa: B018 (parsing the port validates it)
    except ValueError:
        raise ValueError(f"url has an invalid port: {value!r}") from None
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise ValueError(
            f"url must use https:// (plain http:// only to {', '.join(sorted(LOOPBACK))})"
        )
    return value.strip()


def _checked_headers(value: dict[str, str], reserved: frozenset[str]) -> dict[str, str]:
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name")
        lowered = name.lower()
        if lowered in reserved or lowered.startswith("x-rotator-"):
            raise ValueError(f"header {name} is set by rotator itself")
        if any(c in text for c in "\r\n\0"):
            raise ValueError(f"header {name} has a line break or NUL in its value")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name} has characters HTTP headers cannot carry") from None
    return value


def _where(url: str) -> str:
    """Return ``url`` without its query, for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


class _TransportConfig(ProviderConfig):
    """How every HTTP adapter connects: a timeout and the CAs it trusts."""

    #: Bound on connecting and on each read.
    timeout: Duration = timedelta(seconds=10)
    #: A PEM bundle of CAs to trust instead of the system's.
    ca_file: str | None = Field(default=None, min_length=1)

    @field_validator("timeout")
    @classmethod
    def _timeout_ok(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=5):
            raise ValueError("timeout must be longer than zero and at most 5m")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file_ok(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isabs(value):
            raise ValueError("ca_file must be an absolute path")
        return value


class _HttpConfig(_TransportConfig):
    """Fields the webhook and the HTTP verifier share: the transport and a checked URL."""

    #: Where to send the request: https://, or http:// to a loopback address.
    url: str

    @field_validator("url")
    @classmethod
    def _url_ok(cls, value: str) -> str:
        return _checked_url(value)


class WebhookConfig(_HttpConfig):
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
        return _checked_headers(value, _WEBHOOK_RESERVED)


class HttpVerifierConfig(_HttpConfig):
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
        return _checked_headers(value, _VERIFIER_RESERVED)

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


# -- transport --------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    """How one request ended: a status, or why there was none (never a message)."""

    status: int | None = None
    retry_after: float | None = None
    #: The exception's type name when no answer came.
    failure: str = ""
    #: True when trying again cannot help (a certificate refused).
    permanent: bool = False
    #: The answer's error code when its body is one (Slack answers ``channel_not_found``),
    #: else empty: never more of a body, which may echo what was sent.
    hint: str = ""


#: What a body must look like to be kept as a hint: an error code, nothing else.
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _hint(body: bytes) -> str:
    """Return ``body``'s error code (``invalid_payload``, or ``error`` of a JSON object), if any.

    Only a short lower-case code is ever kept: a body may echo the request,
    or carry text from anywhere, so nothing else of it reaches a message.
    """
    # Reading at most 4 KiB bounds the work; a code is far shorter, and a cut
    # body is no code (its JSON does not parse, or it does not match).
    text = body[:4096].decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            found = json.loads(text)
        except ValueError:
            return ""
        text = found.get("error", "") if isinstance(found, dict) else ""
        if not isinstance(text, str):
            return ""
    # A lower-case value echoed back would look like a code: a masked one does not.
    text = redact.outside_text(text, 64)
    return text if _CODE.fullmatch(text) else ""


def _retry_after(raw: str | None, now: datetime) -> float | None:
    """Return the seconds ``Retry-After`` asks to wait (seconds or an HTTP date), if any."""
    if raw is None or not raw.strip():
        return None
    try:
        return max(0.0, float(raw.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _server_time(answer: _Answer) -> datetime | None:
    """Return the time the server says it answered (its ``Date`` header), if it sent one."""
    raw = answer.headers.get("date")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


#: The longest part of an API's error message kept for a rotator message.
_MESSAGE_LIMIT = 300


def _message_of(body: bytes) -> str:
    """Return the ``message`` of a JSON error answer, scrubbed, flattened and cut ("" if none).

    GitHub answers ``{"message": "Bad credentials"}``, GitLab also
    ``{"message": {"value": ["is invalid"]}}`` (flattened to ``value: is
    invalid``). The text goes through :func:`rotator.output.redact.outside_text`,
    which masks a registered secret an answer might echo before it cuts the
    text short; callers also drop it outright if it holds what they sent.
    """
    try:
        found = json.loads(body[:16384].decode("utf-8", "replace"))
    except ValueError:
        return ""
    message = found.get("message") if isinstance(found, dict) else None
    if isinstance(message, dict):
        parts = []
        for name, reasons in message.items():
            listed = reasons if isinstance(reasons, list) else [reasons]
            parts.append(f"{name}: " + ", ".join(str(r) for r in listed))
        text = "; ".join(parts)
    elif isinstance(message, str):
        text = message
    else:
        return ""
    return redact.outside_text(text, _MESSAGE_LIMIT)


def _tls(runtime: Runtime, ca_file: str | None, provider: str, operation: str) -> ssl.SSLContext:
    """Return the TLS context for ``ca_file`` (shared through the runtime's cache)."""
    key = f"http:tls:{ca_file or ''}"
    found = runtime.cache.get(key)
    if isinstance(found, ssl.SSLContext):
        return found
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentError(
            f"ca_file {ca_file} cannot be loaded: {type(exc).__name__}",
            provider=provider,
            operation=operation,
        ) from None
    stored: ssl.SSLContext = runtime.cache.setdefault(key, context)
    return stored


def _connection(url: str, timeout: float, context: ssl.SSLContext) -> Any:
    import http.client

    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


@dataclass(frozen=True)
class _Answer:
    """One request's whole answer (status, headers, body), or why there was none.

    What the API adapters built on this module (GitHub, GitLab) read; the
    webhook and the verifier keep only the :class:`_Reply` made from it.
    """

    status: int | None = None
    #: Header names lower-cased; a repeated header's values joined by ", ".
    headers: Mapping[str, str] = field(default_factory=dict)
    #: At most the ``limit`` bytes asked for.
    body: bytes = b""
    #: The exception's type name when no answer came.
    failure: str = ""
    #: True when trying again cannot help (a certificate refused).
    permanent: bool = False


def _exchange(
    url: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext,
    *,
    limit: int = _DRAIN,
) -> _Answer:
    """Send one request and return its answer (the body cut at ``limit`` bytes); raises nothing.

    Exceptions are turned into an ``_Answer`` holding only their type name:
    their messages may quote a header (``http.client`` quotes an invalid
    header value whole), so none is kept or chained.
    """
    import http.client

    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _connection(url, timeout, context)
    try:
        connection.request(method, path, body=body, headers=dict(headers))
        answer = connection.getresponse()
        received = answer.read(limit)
        found: dict[str, str] = {}
        for name, text in answer.getheaders():
            lowered = name.lower()
            found[lowered] = f"{found[lowered]}, {text}" if lowered in found else text
        return _Answer(answer.status, found, received)
    except ssl.SSLCertVerificationError:
        return _Answer(failure="SSLCertVerificationError", permanent=True)
    except (OSError, http.client.HTTPException) as exc:
        return _Answer(failure=type(exc).__name__)
    except (ValueError, UnicodeError) as exc:
        return _Answer(failure=type(exc).__name__, permanent=True)
    finally:
        connection.close()


#: The most of an API's answer the JSON API adapters read.
MAX_API_ANSWER = 1 << 20


def _exchange_json(
    runtime: Runtime,
    *,
    provider: str,
    operation: str,
    url: str,
    method: str,
    headers: Mapping[str, str],
    payload: Mapping[str, Any] | None,
    timeout: timedelta,
    ca_file: str | None,
) -> _Answer:
    """Send one JSON API request (the payload as compact JSON) over TLS; raises nothing.

    What the GitHub and GitLab targets share: each adds its own headers and
    pacing before, and reads the answer after.
    """
    sent = dict(headers)
    body = None
    if payload is not None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        sent["Content-Type"] = "application/json"
    context = _tls(runtime, ca_file, provider, operation)
    return _exchange(
        url, method, sent, body, timeout.total_seconds(), context, limit=MAX_API_ANSWER
    )


def _send(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext,
    now: datetime,
) -> _Reply:
    """Send one request and return how it ended (see :func:`_exchange`); raises nothing."""
    answer = _exchange(url, method, headers, body, timeout, context)
    if answer.status is None:
        return _Reply(failure=answer.failure, permanent=answer.permanent)
    return _Reply(
        answer.status,
        _retry_after(answer.headers.get("retry-after"), now),
        hint="" if 200 <= answer.status < 300 else _hint(answer.body),
    )


def _outcome(reply: _Reply | _Answer) -> str:
    """Return the metering outcome of one reply or answer (see :mod:`providers.metering`)."""
    status = reply.status
    if status is None:
        return "permanent" if reply.permanent else "transient"
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "throttled"
    if status == 408 or status >= 500:
        return "transient"
    return "permanent"


def _said(reply: _Reply) -> str:
    """Say how a request that did not succeed ended, in a few words (no body, no header)."""
    if reply.status is not None:
        return f"answered HTTP {reply.status}"
    return f"no answer ({reply.failure})"


def _refusal(
    reply: _Reply, where: str, provider: str, operation: str, denied: str
) -> PermanentError:
    """Return the error a refused request raises: ``denied`` explains a 401 or 403."""
    status = reply.status
    if status is None:
        if reply.failure == "SSLCertVerificationError":
            message = f"{where}: the server's certificate was refused (see ca_file)"
        else:
            message = f"{where}: the request could not be sent ({reply.failure})"
        return PermanentError(message, provider=provider, operation=operation)
    if status in (401, 403):
        return PermissionDeniedError(
            f"{where} answered HTTP {status}: {denied}", provider=provider, operation=operation
        )
    if status in (404, 410):
        return NotFoundError(
            f"{where} answered HTTP {status}", provider=provider, operation=operation
        )
    if 300 <= status < 400:
        return PermanentError(
            f"{where} answered a redirect (HTTP {status}), which is not followed: "
            "put the final URL in the policy",
            provider=provider,
            operation=operation,
        )
    return PermanentError(f"{where} answered HTTP {status}", provider=provider, operation=operation)


def _hmac_key(env: str, what: str, provider: str, operation: str) -> bytes:
    """Return the HMAC key held in variable ``env``; PermanentError naming it (never its value).

    Read at each request, so a key rotated in the environment is used at
    once; registered with :mod:`rotator.output.redact`, so it is masked if it ever
    reaches a log line.
    """
    text = os.environ.get(env, "")
    if not text:
        raise PermanentError(
            f"environment variable {env} ({what}) is not set",
            provider=provider,
            operation=operation,
        )
    redact.register(text)
    return text.encode("utf-8")


def _signature_headers(key: bytes, stamp: int, body: bytes) -> dict[str, str]:
    """Return the headers that sign ``body`` at ``stamp``: HMAC-SHA256 of ``"<stamp>.<body>"``."""
    signature = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Rotator-Timestamp": str(stamp), "X-Rotator-Signature": f"sha256={signature}"}


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
    Config = WebhookConfig

    def describe(self) -> str:
        """Return ``webhook:<url>`` (without its query)."""
        return f"{WEBHOOK}:{_where(self.config.url)}"

    def _key(self, operation: str) -> bytes:
        """Return the HMAC key from ``secret_env``; PermanentError naming the variable if unset."""
        return _hmac_key(self.config.secret_env, "the webhook's HMAC key", WEBHOOK, operation)

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
        context = _tls(self.runtime, self.config.ca_file, WEBHOOK, OP_POST)
        where = _where(self.config.url)
        attempts = self.config.attempts
        reply = _Reply()
        for attempt in range(1, attempts + 1):
            now = self.runtime.clock()
            stamp = int(now.timestamp())
            body = self._body(event, rotation_id, value, stamp)
            headers = {
                **self.config.headers,
                "Content-Type": "application/json",
                "User-Agent": "rotator-webhook",
                **_signature_headers(key, stamp, body),
            }
            reply = _send(
                self.config.url,
                "POST",
                headers,
                body,
                self.config.timeout.total_seconds(),
                context,
                now,
            )
            outcome = _outcome(reply)
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
                    _said(reply),
                    delay,
                    attempt,
                    attempts,
                )
                self.runtime.sleep(delay)
        raise TransientError(
            f"{where}: {_said(reply)} after {attempts} attempts",
            provider=WEBHOOK,
            operation=OP_POST,
            delay=reply.retry_after,
        )

    @staticmethod
    def _refused(reply: _Reply, where: str) -> PermanentError:
        return _refusal(
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
        """Check the key variable is set and the host accepts a connection; send nothing."""
        self._key("check")
        parts = urlsplit(self.config.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        timeout = self.config.timeout.total_seconds()
        context = _tls(self.runtime, self.config.ca_file, WEBHOOK, "check")
        failure = ""
        permanent = False
        try:
            with socket.create_connection((host, port), timeout=timeout) as raw:
                if parts.scheme == "https":
                    with context.wrap_socket(raw, server_hostname=host):
                        pass
        except ssl.SSLCertVerificationError:
            failure, permanent = "the server's certificate was refused (see ca_file)", True
        except OSError as exc:
            failure = f"no connection ({type(exc).__name__})"
        if permanent:
            raise PermanentError(f"{host}:{port}: {failure}", provider=WEBHOOK, operation="check")
        if failure:
            raise TransientError(f"{host}:{port}: {failure}", provider=WEBHOOK, operation="check")
        return f"reachable: {host}:{port}" + (" (TLS verified)" if parts.scheme == "https" else "")


# -- HTTP verifier -----------------------------------------------------------


class HttpVerifier(Verifier[HttpVerifierConfig]):
    """Proves a credential works by calling an endpoint with it and checking the status."""

    kind = "http"
    Config = HttpVerifierConfig

    def describe(self) -> str:
        """Return ``http:<url>`` (without its query)."""
        return f"{HTTP}:{_where(self.config.url)}"

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
        context = _tls(self.runtime, self.config.ca_file, HTTP, OP_VERIFY)
        where = _where(self.config.url)
        expected = self.config.statuses()
        body = b"" if self.config.method == "POST" else None
        attempts = self.config.attempts
        reply = _Reply()
        for attempt in range(1, attempts + 1):
            now = self.runtime.clock()
            reply = _send(
                self.config.url,
                self.config.method,
                headers,
                body,
                self.config.timeout.total_seconds(),
                context,
                now,
            )
            if reply.status is not None:
                matched = reply.status in expected
                report(self.runtime, HTTP, OP_VERIFY, "ok" if matched else _outcome(reply))
                if matched:
                    log.debug("verifier %s answered HTTP %s", where, reply.status)
                    return
                wanted = " or ".join(str(s) for s in expected)
                raise VerificationError(
                    f"{self.config.method} {where} answered HTTP {reply.status}, expected {wanted}",
                    provider=HTTP,
                    operation=OP_VERIFY,
                )
            report(self.runtime, HTTP, OP_VERIFY, _outcome(reply))
            if reply.permanent:
                reason = (
                    "the server's certificate was refused (see ca_file)"
                    if reply.failure == "SSLCertVerificationError"
                    else f"the request could not be sent ({reply.failure})"
                )
                raise PermanentError(f"{where}: {reason}", provider=HTTP, operation=OP_VERIFY)
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


def _unanswered(host: str, answer: _Answer, provider: str, operation: str) -> ProviderError:
    """Translate a request that got no answer: a refused certificate, or a network failure."""
    common: dict[str, Any] = {"provider": provider, "operation": operation}
    if answer.failure == "SSLCertVerificationError":
        return PermanentError(
            f"{host}: the server's certificate was refused (see ca_file)", **common
        )
    if answer.permanent:
        return PermanentError(f"{host}: the request could not be sent ({answer.failure})", **common)
    return TransientError(f"{host}: no answer ({answer.failure}); retry later", **common)
