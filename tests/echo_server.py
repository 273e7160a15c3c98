"""A local HTTP(S) server that answers every request with the request itself, and a search.

For the canaries (``tests/test_scrub_doors.py``, ``tests/e2e/test_canary_doors.py``):
a server echoing all it is sent (headers and body) in the error field an
adapter reads, and :func:`found`, which looks for every 8-character piece
of a secret in a text.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The shortest piece of a value that must never be found anywhere.
PIECE = 8
#: Where a server puts the value it echoes: across the 300-character cut of messages.
STRADDLE = 285


def pieces(value: str, n: int = PIECE) -> set[str]:
    """Return every ``n``-character piece of ``value``."""
    return {value[i : i + n] for i in range(len(value) - n + 1)}


def found(text: str, secrets: Iterable[str]) -> list[str]:
    """Return the pieces of ``secrets`` that occur in ``text`` (none, if all is well)."""
    return sorted({p for s in secrets for p in pieces(s) if p in text})


def error_texts(exc: BaseException) -> str:
    """Return everything an exception and the ones it chains to would print."""
    texts = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        texts += [str(item), repr(item), *(str(a) for a in item.args)]
        todo += [item.__cause__, item.__context__]
    return "\n".join(texts)


# -- the echo server -----------------------------------------------------------


Canned = tuple[int, bytes, dict[str, str]]


def as_json(status: int, body: Any, **headers: str) -> Canned:
    """Return a canned JSON answer."""
    return status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}


@dataclass
class Echo:
    """A local HTTP(S) server answering every request with the request itself, in an error.

    ``shape(echo, path)`` makes the answer from the request's text (put on
    one line, as a message would be, and shifted so that the first of
    ``needles`` found begins at ``at``); ``route(method, path, headers,
    body)`` may answer a request with something canned instead. Every
    request's text is kept in ``requests``, its body alone in ``bodies``.
    """

    shape: Callable[[str, str], Canned]
    needles: list[str] = field(default_factory=list)
    at: int = STRADDLE
    route: Callable[[str, str, Any, str], Canned | None] = lambda *_: None
    requests: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    context: ssl.SSLContext | None = None
    url: str = ""

    def answer(self, method: str, path: str, headers: Any, body: str) -> Canned:
        """Return the canned answer of the route, else the echo shaped."""
        text = f"{method} {path}\r\n{headers}\r\n{body}"
        self.requests.append(text)
        self.bodies.append(body)
        canned = self.route(method, path, headers, body)
        if canned is not None:
            return canned
        return self.shape(self.shifted(" ".join(text.split())), path)

    def shifted(self, text: str) -> str:
        """Return ``text`` padded or trimmed in front so that a needle starts at ``at``."""
        for needle in self.needles:
            where = text.find(needle)
            if 0 <= where <= self.at:
                return "x" * (self.at - where) + text
            if where > self.at:
                return text[where - self.at :]
        return text


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        echo = self.server.echo
        status, payload, headers = echo.answer(self.command, self.path, self.headers, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    echo: Echo


@contextmanager
def running(echo: Echo) -> Iterator[Echo]:
    """Serve ``echo`` on a free loopback port (TLS when it has a context) until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.echo = echo
    if echo.context is not None:
        server.socket = echo.context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if echo.context is not None else "http"
    echo.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    try:
        yield echo
    finally:
        server.shutdown()
        server.server_close()
