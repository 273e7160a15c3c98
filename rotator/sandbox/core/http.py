"""Serve an emulator over HTTP on a local port: bind, run on a daemon thread, stop.

Every emulator and fake server answers requests its own way; what they share
is the lifecycle around that, kept here: bind ``host``:``port`` (port 0 picks
a free one), serve every connection on its own daemon thread, stop and
release the port, and work as a context manager. Standard library only, as
the emulators promise.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

E = TypeVar("E")

#: How often a serving loop checks whether it was told to stop: the longest a stop waits.
POLL_INTERVAL = 0.05


def netloc(host: str, port: int) -> str:
    """Join a host and a port as a URL writes them, bracketing an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EmulatorHTTPServer(ThreadingHTTPServer, Generic[E]):
    """Listen on an address and serve each connection on its own thread for ``emulator``.

    Handlers reach the emulator they answer for as ``server.emulator``.
    """

    # Connection threads must not keep a test run or the CLI alive after stop.
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: E
    ) -> None:
        if ":" in address[0]:
            # The stdlib servers bind IPv4 sockets unless told otherwise.
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        super().__init__(address, handler)


class EmulatorHandler(BaseHTTPRequestHandler):
    """Handle requests over keep-alive HTTP/1.1 with Nagle off, and log nothing."""

    # The clients under test pool their connections, as they do against the real services.
    protocol_version = "HTTP/1.1"
    # Otherwise Nagle's algorithm and the client's delayed ACK hold back every answer sent
    # in more than one write by some 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Write nothing: tests and the CLIs do not want an access log on stderr."""


def serve_in_background(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Start ``server.serve_forever`` on a daemon thread called ``name``; return the thread."""
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": POLL_INTERVAL},
        name=name,
        daemon=True,
    )
    thread.start()
    return thread


def shut_down(server: ThreadingHTTPServer, thread: threading.Thread | None) -> None:
    """Stop ``server`` serving, close its socket and wait (10 s at most) for its thread."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=10)


class LoopbackServer:
    """Own an emulator's address, listening server and serving thread; be a context manager.

    A subclass builds its server in :meth:`_bind` (with its handler class, and
    TLS or files it needs), and may set up more once the port is known
    (:meth:`_on_start`). :meth:`_on_stop` undoes both, after serving stops or
    when starting fails part-way, so it must cope with any of it undone.
    """

    #: The scheme :attr:`url` names.
    scheme = "http"
    #: The serving thread's name, before ``-<port>``.
    thread_name = "emulator"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: EmulatorHTTPServer[Any] | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base address clients use, e.g. ``http://127.0.0.1:8200``."""
        return f"{self.scheme}://{netloc(self.host, self.port)}"

    def _bind(self) -> EmulatorHTTPServer[Any]:
        """Create the server listening on ``(self.host, self.port)``, with its handler class."""
        raise NotImplementedError

    def _on_start(self) -> None:
        """Set up what else serving needs, once :attr:`port` is the bound one."""

    def _on_stop(self) -> None:
        """Undo the extra set-up of :meth:`_bind` and :meth:`_on_start`, whatever of it was done."""

    def start(self) -> Self:
        """Bind the port and serve requests on a background thread (nothing if already serving)."""
        if self._server is not None:
            return self
        requested = self.port
        server: EmulatorHTTPServer[Any] | None = None
        try:
            server = self._bind()
            self.port = int(server.server_address[1])
            self._on_start()
        except BaseException:
            # A failed start leaves no socket open, no files behind and the port as asked.
            if server is not None:
                server.server_close()
            self._on_stop()
            self.port = requested
            raise
        self._server = server
        self._thread = serve_in_background(server, f"{self.thread_name}-{self.port}")
        return self

    def stop(self) -> None:
        """Stop serving, release the port and undo the extra set-up (nothing if not serving)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            shut_down(server, thread)
        self._on_stop()

    def __enter__(self) -> Self:
        """Start serving for the ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving, however the ``with`` block ended."""
        self.stop()
