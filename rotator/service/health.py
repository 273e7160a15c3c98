"""The daemon's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

A stdlib ``ThreadingHTTPServer`` in a daemon thread; no framework, because
three read-only routes do not need one. ``/healthz`` answers the liveness
probe (is the scheduler loop still ticking?), ``/readyz`` the readiness probe
(are policies loaded and the journal reachable?); the daemon decides both
through the callables it passes in. Requests are logged through structlog at
debug level only: a probe every few seconds must not flood the logs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from rotator.errors import ConfigError
from rotator.output import redact
from rotator.service.metrics import Metrics

log = structlog.get_logger("rotator.health")

_TEXT = "text/plain; charset=utf-8"
_ALLOWED = "GET, HEAD"
#: How often the serving loop checks for stop(): the longest stop() waits. A
#: tenth of a second keeps shutdown prompt at a cost of ten idle wake-ups a second.
POLL_INTERVAL = 0.1


class _Server(ThreadingHTTPServer):
    """The HTTP server, carrying what the handlers answer from."""

    # Handler threads must never keep the process alive past shutdown.
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        metrics: Metrics,
        alive: Callable[[], bool],
        ready: Callable[[], tuple[bool, str]],
        family: socket.AddressFamily,
    ) -> None:
        self.address_family = family
        self.metrics = metrics
        self.alive = alive
        self.ready = ready
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Answers the three routes; everything else is 404, other methods 405."""

    server: _Server
    # A client that connects and says nothing must not hold a thread for ever.
    timeout = 10
    server_version = "rotator"
    sys_version = ""

    def do_GET(self) -> None:
        """Answer a GET with status, headers and body."""
        self._answer(body=True)

    def do_HEAD(self) -> None:
        """Answer a HEAD: the GET's status and headers, no body."""
        self._answer(body=False)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler looks up do_<METHOD> for whatever method the
        # client sent; every method but GET and HEAD gets 405, not 501.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._send(405, _TEXT, b"method not allowed\n", body=True, extra={"Allow": _ALLOWED})

    def _answer(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            # Written chunk by chunk: at 100,000 secrets the exposition is
            # 20 MiB, and joining it first would hold it twice.
            chunks, content_type = self.server.metrics.render_chunks()
            self._send(200, content_type, chunks, body=body)
        elif path == "/healthz":
            alive, reason = _probe(self.server.alive, "liveness")
            if alive:
                self._send(200, _TEXT, b"ok\n", body=body)
            else:
                self._send(503, _TEXT, f"not alive: {reason}\n".encode(), body=body)
        elif path == "/readyz":
            ready, reason = _probe(self.server.ready, "readiness")
            if ready:
                self._send(200, _TEXT, b"ready\n", body=body)
            else:
                self._send(503, _TEXT, f"not ready: {reason}\n".encode(), body=body)
        else:
            self._send(404, _TEXT, b"not found\n", body=body)

    def _send(
        self,
        status: int,
        content_type: str,
        payload: bytes | list[bytes],
        *,
        body: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        chunks = [payload] if isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(chunk) for chunk in chunks)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.writelines(chunks)

    def log_message(self, format: str, *args: Any) -> None:
        """Send the access log line to structlog at debug instead of stderr."""
        log.debug("http request", client=self.client_address[0], line=format % args)


#: The longest reason a probe's answer gives.
_REASON_LIMIT = 1000


def _probe(check: Callable[[], bool | tuple[bool, str]], what: str) -> tuple[bool, str]:
    """Call a probe callable and return (ok, reason); a crash in it counts as a failure.

    The reason quotes an exception's text (a database driver's, say), which
    may echo rotator's own credentials: it goes through
    :func:`rotator.output.redact.outside_text` before anyone can read it.
    """
    try:
        answer = check()
    except Exception as exc:  # noqa: BLE001 (a probe must answer 503, not drop the request)
        log.warning(f"{what} check failed", error=type(exc).__name__)
        reason = f"{what} check failed: {type(exc).__name__}: {exc}"
        return False, redact.outside_text(reason, _REASON_LIMIT)
    if isinstance(answer, tuple):
        ok, reason = answer
        return bool(ok), redact.outside_text(reason or f"{what} check failed", _REASON_LIMIT)
    return bool(answer), "the scheduler loop has not ticked recently"


class HealthServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` from a background thread."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        host: str = "127.0.0.1",
        port: int = 9464,
        alive: Callable[[], bool],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"cannot listen on {host}:{port}: port must be 0-65535")
        self.metrics = metrics
        self.host = host
        self._port = port
        self._alive = alive
        self._ready = ready
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """Return the port listened on (the one picked by the system, after start with 0)."""
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, for example ``http://127.0.0.1:9464``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind and serve in a daemon thread; raise ConfigError if the address is unusable."""
        if self._server is not None:
            raise RuntimeError("health server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            server = _Server(
                (self.host, self._port), self.metrics, self._alive, self._ready, family
            )
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"cannot listen on {self.host}:{self._port}: {reason}") from None
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="rotator-health",
            daemon=True,
        )
        self._thread.start()
        log.info("health endpoint listening", url=self.url)

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice or before start."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
