"""rotator's own HTTPS client, for the adapters that speak HTTP without an SDK.

The webhook target and the HTTP verifier (:mod:`providers.http`), the
GitHub and GitLab targets and the webhook and Slack notifiers all send their
requests through here, with the standard library (``http.client`` and
``ssl``):

- a URL is checked before use (:func:`checked_url`): ``https://``, or
  ``http://`` to a loopback address only, with no user, password, fragment
  or ``{new}`` placeholder (URLs are logged, policies are not secret);
- certificates are verified, against the system's CAs or ``ca_file``
  (:func:`tls_context`, one context per file shared through the runtime's
  cache);
- redirects are never followed (a redirect would carry a signed body, or an
  ``Authorization`` header holding a credential, to another host), and no
  proxy from the environment is used;
- a request raises nothing (:func:`exchange`): it ends in an :class:`Answer`
  (status, headers, body cut at a limit) or in why there was none, named by
  the exception's type only, as an exception's text may quote a header;
- an answer's text reaches a message only scrubbed and cut
  (:func:`message_of`), or as a short lower-case error code (a
  :class:`Reply`'s ``hint``).

:func:`refusal` and :func:`unanswered` word the errors of a refused or
unanswered request; :func:`hmac_key` and :func:`signature_headers` sign a
body as the webhook target and notifier do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers.transport.failures import Outcome, status_outcome, vetted
from providers.transport.retry_after import asked_wait
from rotator.adapters import Duration, ProviderConfig, Runtime, redact
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

#: Hosts plain ``http://`` is allowed to (nothing leaves the machine).
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
#: The failure of a request whose server's certificate was not trusted.
CERTIFICATE_REFUSED = "SSLCertVerificationError"
#: How much of an answer's body is read (and thrown away) before closing.
_DRAIN = 64 * 1024

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Headers rotator sets itself on a POST with a JSON body, which a policy may not set.
POST_RESERVED = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)


def checked_url(value: str) -> str:
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


def checked_headers(value: dict[str, str], reserved: frozenset[str]) -> dict[str, str]:
    """Return ``value`` if a policy may send these headers: none ``reserved`` or ``X-Rotator-*``.

    Each name must be a header name, and each value a single line of
    characters a header can carry (Latin-1, no NUL).
    """
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


def without_query(url: str) -> str:
    """Return ``url`` without its query, for messages and logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


class TransportConfig(ProviderConfig):
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


class EndpointConfig(TransportConfig):
    """The transport and a checked URL: what the webhook target, verifier and notifier share."""

    #: Where to send the request: https://, or http:// to a loopback address.
    url: str

    @field_validator("url")
    @classmethod
    def _url_ok(cls, value: str) -> str:
        return checked_url(value)


@dataclass(frozen=True)
class Reply:
    """How one request ended: a status, or why there was none (never a message)."""

    status: int | None = None
    #: The seconds the answer's ``Retry-After`` asks for (:mod:`providers.transport.retry_after`).
    retry_after: float | None = None
    #: The exception's type name when no answer came.
    failure: str = ""
    #: True when trying again cannot help (a certificate refused).
    permanent: bool = False
    #: The answer's error code when its body is one (Slack answers ``channel_not_found``),
    #: else empty: never more of a body, which may echo what was sent.
    hint: str = ""

    def said(self) -> str:
        """Say how a request that did not succeed ended, in a few words (no body, no header)."""
        if self.status is not None:
            return f"answered HTTP {self.status}"
        return f"no answer ({self.failure})"


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
    # A lower-case value echoed back would look like a code: a masked (vetted) one does not.
    return vetted(text, _CODE, 64)


#: The longest part of an API's error message kept for a rotator message.
_MESSAGE_LIMIT = 300


def message_of(body: bytes) -> str:
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


def tls_context(
    runtime: Runtime, ca_file: str | None, provider: str, operation: str
) -> ssl.SSLContext:
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
class Answer:
    """One request's whole answer (status, headers, body), or why there was none.

    What the API adapters built on this module (GitHub, GitLab) read; the
    webhook and the verifier keep only the :class:`Reply` made from it.
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

    @property
    def succeeded(self) -> bool:
        """Tell whether the answer is a 2xx."""
        return self.status is not None and 200 <= self.status < 300


def exchange(
    url: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext,
    *,
    limit: int = _DRAIN,
) -> Answer:
    """Send one request and return its answer (the body cut at ``limit`` bytes); raises nothing.

    Exceptions are turned into an ``Answer`` holding only their type name:
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
        return Answer(answer.status, found, received)
    except ssl.SSLCertVerificationError:
        return Answer(failure=CERTIFICATE_REFUSED, permanent=True)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(failure=type(exc).__name__)
    except (ValueError, UnicodeError) as exc:
        return Answer(failure=type(exc).__name__, permanent=True)
    finally:
        connection.close()


#: The most of an API's answer the JSON API adapters read.
MAX_API_ANSWER = 1 << 20


def exchange_json(
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
) -> Answer:
    """Send one JSON API request (the payload as compact JSON) over TLS; raises nothing.

    What the GitHub and GitLab targets share: each adds its own headers and
    pacing before, and reads the answer after.
    """
    sent = dict(headers)
    body = None
    if payload is not None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        sent["Content-Type"] = "application/json"
    context = tls_context(runtime, ca_file, provider, operation)
    return exchange(url, method, sent, body, timeout.total_seconds(), context, limit=MAX_API_ANSWER)


def request_once(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext,
    now: datetime,
) -> Reply:
    """Send one request and return how it ended (see :func:`exchange`); raises nothing."""
    answer = exchange(url, method, headers, body, timeout, context)
    if answer.status is None:
        return Reply(failure=answer.failure, permanent=answer.permanent)
    return Reply(
        answer.status,
        asked_wait(answer.headers, now),
        hint="" if answer.succeeded else _hint(answer.body),
    )


def request_outcome(reply: Reply | Answer) -> Outcome:
    """Return the metering outcome of one reply or answer (see :mod:`providers.metering`)."""
    if reply.status is None:
        return "permanent" if reply.permanent else "transient"
    return status_outcome(reply.status)


def why_unsent(failure: str) -> str:
    """Say why a request got no answer that trying again cannot give: its certificate, or itself."""
    if failure == CERTIFICATE_REFUSED:
        return "the server's certificate was refused (see ca_file)"
    return f"the request could not be sent ({failure})"


def refusal(reply: Reply, where: str, provider: str, operation: str, denied: str) -> PermanentError:
    """Return the error a refused request raises: ``denied`` explains a 401 or 403."""
    status = reply.status
    if status is None:
        return PermanentError(
            f"{where}: {why_unsent(reply.failure)}", provider=provider, operation=operation
        )
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


def hmac_key(env: str, what: str, provider: str, operation: str) -> bytes:
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


def signature_headers(key: bytes, stamp: int, body: bytes) -> dict[str, str]:
    """Return the headers that sign ``body`` at ``stamp``: HMAC-SHA256 of ``"<stamp>.<body>"``."""
    signature = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Rotator-Timestamp": str(stamp), "X-Rotator-Signature": f"sha256={signature}"}


def unanswered(host: str, answer: Answer, provider: str, operation: str) -> ProviderError:
    """Translate a request that got no answer: a refused certificate, or a network failure."""
    common: dict[str, Any] = {"provider": provider, "operation": operation}
    if answer.permanent or answer.failure == CERTIFICATE_REFUSED:
        return PermanentError(f"{host}: {why_unsent(answer.failure)}", **common)
    return TransientError(f"{host}: no answer ({answer.failure}); retry later", **common)
