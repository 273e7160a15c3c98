"""Serve over TLS (or plain HTTP), and hang up on every keep-alive client when closed.

The Key Vault emulator and the GitHub and GitLab fakes serve HTTPS with a
certificate the caller made. The TLS handshake runs on the connection's own
thread, so a client that never finishes one holds up no one else; a plain-HTTP
client (or one that does not trust the certificate) is just dropped.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar, cast

from rotator.sandbox.core.http import EmulatorHTTPServer

E = TypeVar("E")

#: The longest a client may take over its TLS handshake, in seconds.
HANDSHAKE_TIMEOUT = 10


class TLSServer(EmulatorHTTPServer[E]):
    """A listening socket, TLS when given a context, that hangs up on its clients when closed."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: E,
        context: ssl.SSLContext | None,
    ) -> None:
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler, emulator)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection; TLS is set up here but negotiated on the connection's thread."""
        sock, address = self.socket.accept()
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Negotiate TLS (a plain-HTTP or untrusting client is just dropped), then serve."""
        connection = cast(socket.socket, request)
        with self._connections_lock:
            self._connections.add(connection)
        try:
            if isinstance(connection, ssl.SSLSocket):
                connection.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    connection.do_handshake()
                except (ssl.SSLError, OSError):
                    return
                connection.settimeout(None)
            super().finish_request(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Hang up on every open (keep-alive) connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # The plain socket's shutdown: SSLSocket's own would tear down its TLS state under
            # the thread that is reading from it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def server_close(self) -> None:
        """Hang up on the open connections, then close the listening socket."""
        self.close_connections()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hang up (or are hung up on); report anything else."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
