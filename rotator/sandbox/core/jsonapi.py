"""A JSON API fake on loopback that records every request and answers queued faults as given.

The GitHub and GitLab fakes speak their APIs on top of :class:`JsonApiServer`:
it serves HTTP (HTTPS with a caller's certificate) on a free 127.0.0.1 port,
records every raw request (method, target, headers, body) for the test to
read back, answers a queued fault exactly as queued (any status, headers and
body) instead of the real answer, and stamps each answer's ``Date`` with the
fake's clock (the test's), as the real services stamp theirs with their own.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from ssl import SSLContext
from typing import Any

from rotator.sandbox.core.clock import Clock, utc_now
from rotator.sandbox.core.faults import ANY_STATUS, FaultPlan
from rotator.sandbox.core.http import EmulatorHandler, LoopbackServer
from rotator.sandbox.core.recording import RequestLog
from rotator.sandbox.core.tls import TLSServer

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass
class Received:
    """One request as it arrived: ``path`` is the target as sent (query included, encoded)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return a header's value, whatever the case of its name."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def text(self) -> str:
        """Return everything received as one string (to search for what must not be there)."""
        heads = "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.method} {self.path}\n{heads}\n\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class Reply:
    """What a handler answers: a status, JSON (or nothing) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class JsonApiServer(LoopbackServer):
    """An HTTP(S) server on 127.0.0.1 that records requests and can be told to fail.

    Subclasses speak their API in :meth:`handle`, which runs under :attr:`lock`.
    """

    thread_name = "json-api-fake"

    def __init__(self, clock: Clock | None = None, context: SSLContext | None = None) -> None:
        super().__init__("127.0.0.1", 0)
        self.clock: Clock = clock or utc_now
        self.requests: RequestLog[Received] = RequestLog()
        self.faults = FaultPlan(statuses=ANY_STATUS)
        self.lock = threading.RLock()
        self._context = context
        if context is not None:
            self.scheme = "https"
        #: False: answers carry no ``Date`` header (as behind a proxy that strips it).
        self.send_date = True

    def _bind(self) -> TLSServer[JsonApiServer]:
        """Listen with the handler that records and answers JSON (TLS with the given context)."""
        return TLSServer((self.host, self.port), _Handler, self, self._context)

    # -- faults and records

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer ``status`` to the next ``times`` requests of ``method`` under ``path``."""
        self.faults.add(
            path or "", status=status, count=times, method=method, headers=headers, body=body
        )

    def requests_to(self, method: str, path: str | None = None) -> list[Received]:
        """Return the requests of ``method`` (to paths starting with ``path``), in order."""
        return self.requests.matching(method, path or "")

    def everything_received(self) -> str:
        """Return every request received, as text, one after the other."""
        return "\n\n".join(r.text() for r in self.requests)

    # -- serving

    def answer(self, received: Received) -> Reply:
        """Record ``received`` and answer it: a queued fault, else :meth:`handle`."""
        self.requests.append(received)
        fault = self.faults.take(received.path, received.method)
        if fault is not None and fault.status is not None:
            return Reply(fault.status, fault.body, dict(fault.headers))
        with self.lock:
            return self.handle(received)

    def handle(self, received: Received) -> Reply:
        """Answer one request (subclasses speak their API)."""
        return Reply(404, {"message": "Not Found"})


class _Handler(EmulatorHandler):
    """Hands each request to the fake and writes its JSON answer, ``Date`` on the fake's clock."""

    server: TLSServer[JsonApiServer]

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = Received(self.command, self.path, dict(self.headers.items()), body)
        reply = self.server.emulator.answer(received)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, text in reply.headers.items():
            self.send_header(name, text)
        if payload:
            self.send_header("Content-Type", JSON_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line, Server and (unless turned off) Date headers."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        if self.server.emulator.send_date:
            self.send_header("Date", self.date_time_string())

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Stamp ``Date`` with the fake's (the test's) clock, as the real services stamp theirs."""
        return formatdate(self.server.emulator.clock().timestamp(), usegmt=True)
