"""A threaded loopback reverse proxy for tests: something between a client and the server it calls.

:class:`ForwardingProxy` listens on a free 127.0.0.1 port and forwards every
request to ``upstream`` (``http://`` or ``https://``), answering what came
back. Subclasses change what passes through: :meth:`ForwardingProxy.intercept`
answers a request itself (an AWS-like request quota:
:class:`tests.throttle.ThrottlingProxy`), :meth:`ForwardingProxy.relabel`
rewrites an answer's headers (a gateway's Content-Type:
:class:`tests.providers.vault.proxy.ContentTypeProxy`). Use one as a context
manager and point clients at :attr:`ForwardingProxy.url`.

Requests and answers hold secret values and tokens: they are forwarded
untouched and never logged.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self

#: An answer: the HTTP status, the headers in order, the body.
Answer = tuple[int, list[tuple[str, str]], bytes]

#: Headers that belong to one connection, not to the message (RFC 9110, 7.6.1),
#: plus those the proxy writes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "server",
        "date",
    }
)
UPSTREAM_TIMEOUT = 30.0


class Headers(Protocol):
    """Request headers looked up by name, case-insensitively (``email.message.Message``)."""

    def get(self, name: str, /) -> str | None: ...


class ForwardingProxy:
    """A threaded reverse proxy to ``upstream``; see the module docstring.

    ``context`` is the TLS context of the upstream leg, for an ``https://``
    upstream (default: the system's trust store); clients always reach the
    proxy over plain HTTP.
    """

    def __init__(self, upstream: str, *, context: ssl.SSLContext | None = None) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme not in {"http", "https"} or parsed.hostname is None:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {upstream!r}")
        self._https = parsed.scheme == "https"
        self._upstream_host = parsed.hostname
        self._upstream_port = parsed.port or (443 if self._https else 80)
        self._context = context
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1 on a free port, serve in a daemon thread; return :attr:`url`."""
        if self._server is not None:
            return self.url
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket; no-op if not started."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running proxy."""
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what subclasses change ---------------------------------------------

    def intercept(self, method: str, target: str, headers: Headers, body: bytes) -> Answer | None:
        """Return the answer to send instead of forwarding the request, or ``None`` to forward."""
        return None

    def relabel(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return the headers of an upstream answer as the proxy passes them on."""
        return headers

    # -- one request --------------------------------------------------------

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Answer:
        """Send one request upstream on a fresh connection; return its answer.

        A connection per request keeps the proxy free of keep-alive state
        (a stale pooled socket would need a retry, which is not safe for a
        write); on loopback the extra connect costs next to nothing.
        """
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._upstream_host,
                self._upstream_port,
                timeout=UPSTREAM_TIMEOUT,
                context=self._context,
            )
        else:
            connection = http.client.HTTPConnection(
                self._upstream_host, self._upstream_port, timeout=UPSTREAM_TIMEOUT
            )
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.putheader("Connection", "close")
            connection.endheaders(body)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, self.relabel(kept), payload
        finally:
            connection.close()


def _handler_for(proxy: ForwardingProxy) -> type[BaseHTTPRequestHandler]:
    """Return a request handler class bound to ``proxy``."""

    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 so clients' pooled connections stay open between calls;
        # every answer carries a Content-Length, which keep-alive requires.
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes; with Nagle on, the body
        # waits for the client's delayed ACK of the headers (40 ms a call).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            answer = proxy.intercept(self.command, self.path, self.headers, body)
            if answer is not None:
                self._answer(*answer)
                return
            forwarded = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            try:
                answer = proxy._forward(self.command, self.path, forwarded, body)
            except (OSError, http.client.HTTPException) as exc:
                # A 502 is what a real load balancer sends; clients retry it.
                message = f"upstream failed: {type(exc).__name__}".encode()
                self._answer(502, [("Content-Type", "text/plain")], message)
                return
            self._answer(*answer)

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        # Vault clients list with the LIST verb; the rest are the REST verbs.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_LIST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            # The default writes every request line to stderr; nothing here
            # needs it, and a path or query string could carry a value.
            return

    return Handler
