"""A threaded loopback forward proxy for tests: what an egress proxy does, and a record of it.

:class:`EgressProxy` listens on a free 127.0.0.1 port and does what a
corporate egress proxy (Squid, an outbound gateway) does for its clients:

- ``CONNECT host:port`` opens a tunnel to that host and relays bytes both
  ways, untouched (TLS runs end to end through it: the proxy sees no
  request inside);
- a request in absolute form (``POST http://host:port/path``, how a client
  sends a plain ``http://`` request through a proxy) is forwarded and its
  answer relayed.

Each request is recorded in :attr:`EgressProxy.visits` before anything is
forwarded, so a test can tell that a client went through the proxy (and to
where). With ``credentials``, a request without the matching
``Proxy-Authorization: Basic`` is refused with 407, as a proxy needing a
login does. Nothing passing through is logged.
"""

from __future__ import annotations

import base64
import http.client
import selectors
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

#: How long a tunnel may stay silent before the proxy closes it.
IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Visit:
    """One request the proxy received: ``CONNECT`` and its ``host:port``, or a method and URL."""

    method: str
    target: str
    #: Whether the request carried the proxy's credentials (or needed none).
    authorized: bool


@dataclass
class EgressProxy:
    """A forward proxy on 127.0.0.1; see the module docstring."""

    #: (user, password) the proxy requires, or None for an open proxy.
    credentials: tuple[str, str] | None = None
    visits: list[Visit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return ``http://127.0.0.1:PORT``, the proxy's URL without credentials."""
        assert self._server is not None, "the proxy is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url_with(self, user: str, password: str) -> str:
        """Return the proxy's URL carrying ``user`` and ``password`` (percent-encoded)."""
        quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
        return self.url.replace("http://", f"http://{quoted}@")

    def tunnels(self) -> list[str]:
        """Return the ``host:port`` of every CONNECT received, in order."""
        with self._lock:
            return [v.target for v in self.visits if v.method == "CONNECT"]

    def _record(self, visit: Visit) -> None:
        with self._lock:
            self.visits.append(visit)

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        user, password = self.credentials
        expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        return header == f"Basic {expected}"

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1 on a free port, serve in a daemon thread; return :attr:`url`."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="egress-proxy", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes or the tunnel stays idle too long."""
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            ready = selector.select(IDLE_TIMEOUT)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    key.data.sendall(data)
                except OSError:
                    return


def _handler(proxy: EgressProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _refuse(self, status: int) -> None:
            self.send_response(status)
            if status == 407:
                self.send_header("Proxy-Authenticate", 'Basic realm="egress"')
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def do_CONNECT(self) -> None:
            authorized = proxy._authorized(self.headers.get("Proxy-Authorization"))
            proxy._record(Visit("CONNECT", self.path, authorized))
            if not authorized:
                self._refuse(407)
                return
            host, _, port = self.path.rpartition(":")
            try:
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            except (OSError, ValueError):
                self._refuse(502)
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            with upstream:
                _relay(self.connection, upstream)

        def _forward(self) -> None:
            authorized = proxy._authorized(self.headers.get("Proxy-Authorization"))
            proxy._record(Visit(self.command, self.path, authorized))
            if not authorized:
                self._refuse(407)
                return
            parts = urllib.parse.urlsplit(self.path)
            if parts.scheme != "http" or not parts.hostname:
                self._refuse(400)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")
            }
            upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
            try:
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                upstream.request(self.command, path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
            except OSError:
                self._refuse(502)
                return
            finally:
                upstream.close()
            self.send_response(answer.status)
            for name, text in answer.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(name, text)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: Any) -> None:
            """Log nothing: what passes through holds credentials."""

    return Handler
