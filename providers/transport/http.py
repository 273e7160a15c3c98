"""rotator's HTTPS client, for the adapters that speak HTTP without an SDK of their own.

The webhook target and the HTTP verifier (:mod:`providers.http`), the
GitHub and GitLab targets and the webhook and Slack notifiers all send their
requests through here, on httpx (imported on first use: like every SDK, it
is an extra, and loading the registry imports none):

- a URL is checked before use (:func:`checked_url`): ``https://``, or
  ``http://`` to a loopback address only, with no user, password, fragment
  or ``{new}`` placeholder (URLs are logged, policies are not secret);
- certificates are verified, against the system's CAs or ``ca_file``
  (:func:`tls_context`, one context per file shared through the runtime's
  cache);
- redirects are never followed (a redirect would carry a signed body, or an
  ``Authorization`` header holding a credential, to another host);
- the proxy is chosen as boto3, hvac and the Azure SDK choose theirs
  (:func:`route`): ``HTTPS_PROXY`` (``HTTP_PROXY`` for ``http://``,
  ``ALL_PROXY`` for either), unless ``NO_PROXY`` names the host; a policy's
  ``proxy`` field overrides the environment (a URL, or ``none``). A proxy URL
  may carry a user and password (from the environment only): they are
  registered with :mod:`rotator.output.redact` and no message names more of a
  proxy than its host and port;
- a request raises nothing (:func:`exchange`): it ends in an :class:`Answer`
  (status, headers, body cut at a limit) or in why there was none, named by
  the exception's type only (:func:`_failure`, the one place httpx's errors
  are read), as an exception's text may quote a header or a proxy URL;
- an answer's text reaches a message only scrubbed and cut
  (:func:`message_of`), or as a short lower-case error code (a
  :class:`Reply`'s ``hint``).

:func:`refusal` and :func:`unanswered` word the errors of a refused or
unanswered request; :func:`hmac_key` and :func:`signature_headers` sign a
body as the webhook target and notifier do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

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


#: What a policy's ``proxy`` says to connect directly whatever the environment says.
NO_PROXY = "none"
#: The schemes a proxy URL may have (a SOCKS proxy would need another extra).
_PROXY_SCHEMES = ("http", "https")
#: The environment variables :func:`route` reads, by what ``urllib`` files them under.
_PROXY_VARIABLES = {"https": "HTTPS_PROXY", "http": "HTTP_PROXY", "all": "ALL_PROXY"}


def checked_proxy(value: str | None) -> str | None:
    """Return a policy's ``proxy`` if usable: None, ``none``, or ``http(s)://HOST:PORT``.

    A policy is not secret, so its proxy URL may not carry a user or a
    password (put a proxy needing one in ``HTTPS_PROXY``); the message never
    repeats a value that does.
    """
    if value is None:
        return None
    text = value.strip()
    if text.lower() == NO_PROXY:
        return NO_PROXY
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (parsing the port validates it)
    except ValueError:
        raise ValueError("proxy is not a URL: give http://HOST:PORT, or none") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(
            "proxy may not carry a user or password (policies are not secret); "
            "put a proxy that needs them in HTTPS_PROXY"
        )
    if parts.scheme not in _PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"proxy must be http://HOST:PORT, https://HOST:PORT or none, not {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"proxy must be http://HOST:PORT, with no path or query, not {text!r}")
    return text


@dataclass(frozen=True)
class Route:
    """How a request reaches its host: directly, or through a proxy, and who said so."""

    #: The proxy's URL, user and password included: never printed (see :meth:`shown`).
    proxy: str | None = None
    #: Where the proxy came from: ``HTTPS_PROXY``, ``policy``... ("" when direct).
    source: str = ""
    #: Why the route cannot be used (an environment variable that is not a URL), else "".
    unusable: str = ""

    def shown(self) -> str:
        """Say how requests go, naming the proxy by host and port only (never its user)."""
        if self.proxy is None:
            return "direct"
        return f"through the proxy {proxy_host(self.proxy)} (from {self.source})"


def proxy_host(proxy: str) -> str:
    """Return ``HOST:PORT`` of a proxy URL: all that may be said of one that holds a password."""
    parts = urlsplit(proxy)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def route(url: str, proxy: str | None) -> Route:
    """Return how a request to ``url`` goes, given a policy's ``proxy`` field (see the module).

    With no ``proxy`` in the policy the environment decides, the way
    ``urllib`` (and so requests, botocore and azure-core) reads it:
    lower-case names first, ``NO_PROXY`` a comma-separated list of hosts and
    domains (``.example.com`` and ``example.com`` both match its subdomains;
    ``*`` matches all). A value without a scheme is an ``http://`` proxy.
    """
    if proxy == NO_PROXY:
        return Route()
    if proxy is not None:
        return Route(proxy, "policy")
    import urllib.request

    found = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    chosen = next((k for k in (parts.scheme, "all") if found.get(k)), None)
    # proxy_bypass_environment is what urllib itself reads NO_PROXY with on
    # Linux; typeshed does not list it.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if chosen is None or bypass(parts.netloc, found):
        return Route()
    variable = _PROXY_VARIABLES.get(chosen, f"{chosen.upper()}_PROXY")
    text = found[chosen].strip()
    if "://" not in text:
        text = f"http://{text}"
    redact.register_url(text)
    try:
        parts = urlsplit(text)
        usable = parts.scheme in _PROXY_SCHEMES and bool(parts.hostname)
        parts.port  # noqa: B018 (parsing the port validates it)
    except ValueError:
        usable = False
    if not usable:
        return Route(
            text,
            variable,
            unusable=f"{variable} is not an http:// or https:// proxy URL "
            "(http://[USER:PASSWORD@]HOST:PORT)",
        )
    return Route(text, variable)


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
    """How every HTTP adapter connects: a timeout, the CAs it trusts and its proxy."""

    #: Bound on connecting and on each read.
    timeout: Duration = timedelta(seconds=10)
    #: A PEM bundle of CAs to trust instead of the system's.
    ca_file: str | None = Field(default=None, min_length=1)

    #: The proxy: unset, the environment's (``HTTPS_PROXY``, ``NO_PROXY``...);
    #: ``none``, a direct connection whatever the environment says; or
    #: ``http://HOST:PORT``, that proxy for this adapter's requests.
    proxy: str | None = None

    @field_validator("proxy")
    @classmethod
    def _proxy_ok(cls, value: str | None) -> str | None:
        return checked_proxy(value)

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


def _failure(exc: BaseException) -> tuple[str, bool]:
    """Return why a request got no answer, in words of our own, and whether that is for good.

    The one place httpx's (and httpcore's) exceptions are read. Only type
    names and status numbers are kept: an exception's text may quote a
    header, a URL or a proxy's user and password. A network failure is named
    by the operating system's error under it (``ConnectionRefusedError``,
    ``TimeoutError``), as before httpx.
    """
    import httpcore
    import httpx

    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return CERTIFICATE_REFUSED, True
    if isinstance(exc, httpx.ProxyError | httpcore.ProxyError):
        # httpcore's text is "<status> <reason>" of the proxy's answer to CONNECT.
        status = str(exc.args[0] if exc.args else "")[:3]
        if not status.isdigit():
            return "the proxy refused the tunnel", False
        # 407: the proxy wants (other) credentials; 403: its rules forbid the host.
        return f"the proxy refused the tunnel with HTTP {status}", status in ("403", "407")
    if isinstance(
        exc,
        httpx.LocalProtocolError
        | httpx.UnsupportedProtocol
        | httpx.InvalidURL
        | httpcore.LocalProtocolError
        | httpcore.UnsupportedProtocol
        | ValueError
        | UnicodeError,
    ):
        # What was to be sent cannot be: a header with a line break, a bad URL.
        return type(exc).__name__, True
    if isinstance(exc, ImportError):
        return "the proxy's scheme needs a package that is not installed", True
    system = next((e for e in reversed(chain) if isinstance(e, OSError)), None)
    return type(system or exc).__name__, False


#: Headers httpx adds to every request, set to what rotator wants instead: the
#: body as sent (a compressed answer would pass the size cap and expand after
#: it), and one request per connection, as each client serves one request.
_CLIENT_HEADERS = {"Accept-Encoding": "identity", "Connection": "close"}


class _Silenced(logging.Filter):
    """Drops every record of the logger it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Let nothing through."""
        return False


_SILENCED = _Silenced()
#: httpx logs each request's whole URL at INFO (a Slack webhook's URL is its
#: token) and httpcore each answer's headers at DEBUG; their failures reach
#: us as exceptions, translated by :func:`_failure`, so their records say
#: nothing we need, whatever level a user asks for.
_HTTP_LIBRARY_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def _silence_http_library() -> None:
    """Attach :data:`_SILENCED` to httpx's and httpcore's loggers (once each)."""
    for name in _HTTP_LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _SILENCED not in logger.filters:
            logger.addFilter(_SILENCED)


def _client(timeout: float, context: ssl.SSLContext, way: Route) -> Any:
    """Return an httpx client for one request: TLS by ``context``, no redirect, ``way``'s proxy.

    ``trust_env`` is off because :func:`route` has already read the
    environment: httpx would also take ``SSL_CERT_FILE`` and ``.netrc``.
    """
    import httpx

    _silence_http_library()
    return httpx.Client(
        verify=context,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        proxy=way.proxy,
        headers=_CLIENT_HEADERS,
    )


def exchange(
    url: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext,
    *,
    limit: int = _DRAIN,
    proxy: str | None = None,
) -> Answer:
    """Send one request and return its answer (the body cut at ``limit`` bytes); raises nothing.

    ``proxy`` is the policy's ``proxy`` field (see :func:`route`).
    Exceptions are turned into an ``Answer`` holding only what
    :func:`_failure` makes of them, none kept or chained.
    """
    way = route(url, proxy)
    if way.unusable:
        return Answer(failure=way.unusable, permanent=True)
    try:
        # Latin-1, as HTTP/1.1 allows and http.client sent: httpx would encode ASCII only.
        sent = {name: text.encode("latin-1") for name, text in headers.items()}
        with (
            _client(timeout, context, way) as client,
            client.stream(method, url, headers=sent, content=body) as answer,
        ):
            received = bytearray()
            # Raw bytes, read no further than the limit: a huge answer costs nothing.
            for chunk in answer.iter_raw():
                received += chunk[: limit - len(received)]
                if len(received) >= limit:
                    break
            found: dict[str, str] = {}
            for name, text in answer.headers.multi_items():
                lowered = name.lower()
                found[lowered] = f"{found[lowered]}, {text}" if lowered in found else text
            return Answer(answer.status_code, found, bytes(received))
    except Exception as exc:  # noqa: BLE001 (every failure becomes an Answer, see _failure)
        failure, permanent = _failure(exc)
        return Answer(failure=failure, permanent=permanent)


def reach(url: str, timeout: float, context: ssl.SSLContext, proxy: str | None = None) -> Reply:
    """Connect to ``url``'s host as a request would (its proxy, the TLS handshake); send nothing.

    What a ``check`` does to tell a host is reachable without making it act:
    through a proxy, the ``CONNECT`` tunnel is opened (the proxy's login
    from its URL), then TLS with the host runs through it. Returns an empty
    :class:`Reply` when the host was reached, else why not (see
    :func:`_failure`); raises nothing.
    """
    way = route(url, proxy)
    if way.unusable:
        return Reply(failure=way.unusable, permanent=True)
    import httpcore

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    backend = httpcore.SyncBackend()
    try:
        if way.proxy is None:
            stream = backend.connect_tcp(host, port, timeout=timeout)
        else:
            stream = _tunnel(backend, way.proxy, f"{host}:{port}", timeout)
        try:
            if parts.scheme == "https":
                stream = stream.start_tls(context, server_hostname=host, timeout=timeout)
        finally:
            stream.close()
    except Exception as exc:  # noqa: BLE001 (every failure becomes a Reply, see _failure)
        failure, permanent = _failure(exc)
        return Reply(failure=failure, permanent=permanent)
    return Reply()


def _tunnel(backend: Any, proxy: str, target: str, timeout: float) -> Any:
    """Open a ``CONNECT target`` tunnel through ``proxy`` and return its stream.

    Raises ``httpcore.ProxyError`` ("<status> ...", as httpcore's own
    tunnels do) when the proxy refuses, so :func:`_failure` reads both alike.
    """
    import h11
    import httpcore

    parts = urlsplit(proxy)
    stream = backend.connect_tcp(
        parts.hostname or "",
        parts.port or (443 if parts.scheme == "https" else 80),
        timeout=timeout,
    )
    if parts.scheme == "https":
        stream = stream.start_tls(
            ssl.create_default_context(), server_hostname=parts.hostname, timeout=timeout
        )
    headers = [("Host", target)]
    if parts.username is not None:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers.append(
            ("Proxy-Authorization", f"Basic {base64.b64encode(login.encode()).decode()}")
        )
    speaker = h11.Connection(our_role=h11.CLIENT)
    stream.write(
        speaker.send(h11.Request(method="CONNECT", target=target, headers=headers)), timeout
    )
    while True:
        event = speaker.next_event()
        if event is h11.NEED_DATA:
            speaker.receive_data(stream.read(65536, timeout))
        elif isinstance(event, h11.Response):
            if not 200 <= event.status_code < 300:
                stream.close()
                raise httpcore.ProxyError(f"{event.status_code} refused")
            return stream


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
    proxy: str | None = None,
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
    return exchange(
        url,
        method,
        sent,
        body,
        timeout.total_seconds(),
        context,
        limit=MAX_API_ANSWER,
        proxy=proxy,
    )


def request_once(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
    context: ssl.SSLContext,
    now: datetime,
    proxy: str | None = None,
) -> Reply:
    """Send one request and return how it ended (see :func:`exchange`); raises nothing."""
    answer = exchange(url, method, headers, body, timeout, context, proxy=proxy)
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
