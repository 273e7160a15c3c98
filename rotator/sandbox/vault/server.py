"""The HTTP side of the emulator: request parsing, authentication, ACL checks, faults, replies."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any, cast

from rotator.sandbox.core.clock import Clock, utc_now
from rotator.sandbox.core.faults import FaultPlan
from rotator.sandbox.core.http import EmulatorHandler, EmulatorHTTPServer, LoopbackServer
from rotator.sandbox.vault.auth.approle import APPROLE_ROUTES
from rotator.sandbox.vault.auth.jwt import JWT_ROUTES
from rotator.sandbox.vault.auth.kubernetes import KUBERNETES_ROUTES
from rotator.sandbox.vault.auth.token_store import TOKEN_ROUTES
from rotator.sandbox.vault.kv import ROUTES as KV_ROUTES
from rotator.sandbox.vault.mounts import Mount, Namespace
from rotator.sandbox.vault.protocol import (
    JSONDict,
    Reply,
    VaultError,
    acl_denied,
    base62,
    go_quote,
    new_uuid,
)
from rotator.sandbox.vault.routing import Call, Route
from rotator.sandbox.vault.state import Core, Token
from rotator.sandbox.vault.system import SYS_ROUTES

_ROUTES: dict[str, list[Route]] = {
    "kv": KV_ROUTES,
    "system": SYS_ROUTES,
    "token": TOKEN_ROUTES,
    "approle": APPROLE_ROUTES,
    "kubernetes": KUBERNETES_ROUTES,
    "jwt": JWT_ROUTES,
}
_WRITE_METHODS = {"POST", "PUT"}
_QUERY_METHODS = {"GET", "HEAD", "LIST", "DELETE"}
# Messages Vault sends with these statuses, used for injected faults
# (429 is a rate-limit quota's, which names the request path: see _handle).
_FAULT_MESSAGES = {
    500: "internal error",
    503: "Vault is sealed",
}
# The routes whose answers also carry their data at the top level (Vault's
# injectDataIntoTopRoutes, http/handler.go), as Go's ServeMux matches them on
# the URL path: a pattern ending in "/" covers its subtree, any other only itself.
_INJECT_ROUTES = (
    "/v1/sys/audit",
    "/v1/sys/audit/",
    "/v1/sys/audit-hash/",
    "/v1/sys/auth",
    "/v1/sys/auth/",
    "/v1/sys/config/cors",
    "/v1/sys/config/auditing/request-headers/",
    "/v1/sys/config/auditing/request-headers",
    "/v1/sys/capabilities",
    "/v1/sys/capabilities-accessor",
    "/v1/sys/capabilities-self",
    "/v1/sys/ha-status",
    "/v1/sys/key-status",
    "/v1/sys/mounts",
    "/v1/sys/mounts/",
    "/v1/sys/policy",
    "/v1/sys/policy/",
    "/v1/sys/rekey/backup",
    "/v1/sys/rekey/recovery-key-backup",
    "/v1/sys/remount",
    "/v1/sys/rotate",
    "/v1/sys/wrapping/wrap",
)
# Token paths that have no meaning outside the token's own namespace: Vault
# serves them there, whatever namespace the request names (http/logical.go).
_TOKEN_SELF_PATHS = frozenset(
    {"auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self"}
)


@dataclass
class Outcome:
    """What goes back on the wire."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class VaultEmulator(LoopbackServer):
    """A HashiCorp Vault stand-in speaking Vault's HTTP API on a local port (see the package doc).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    thread_name = "vault-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        root_token: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(host, port)
        self.root_token = root_token or f"hvs.{base62(24)}"
        self.clock: Clock = clock or utc_now
        self._core = Core(self.clock, self.root_token)
        self._faults = FaultPlan()

    # -- lifecycle

    def _bind(self) -> EmulatorHTTPServer[VaultEmulator]:
        """Listen with the handler that speaks Vault's API."""
        return EmulatorHTTPServer((self.host, self.port), _Handler, self)

    # -- fault injection

    def inject_fault(
        self,
        path_prefix: str = "/v1/secret/data/app",
        status: int | None = 503,
        delay: float = 0.0,
        count: int = 1,
        method: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``status`` (or only wait ``delay``).

        A request matches when its path (``//`` collapsed, e.g. ``/v1/secret/data/app/db``)
        starts with ``path_prefix`` and, if ``method`` is given, its HTTP verb is that one. It
        first waits ``delay`` seconds; then it gets ``status`` with Vault's error envelope (and
        a ``Retry-After`` header when ``retry_after`` is given: whole seconds for a number, as
        is for text), or, when ``status`` is None, it is served normally.
        """
        after = None
        if retry_after is not None:
            after = retry_after if isinstance(retry_after, str) else str(int(retry_after))
        self._faults.add(
            path_prefix, status=status, delay=delay, count=count, method=method, retry_after=after
        )

    def clear_faults(self) -> None:
        """Drop every injected fault still waiting: the next requests are served normally."""
        self._faults.clear()

    # -- one request

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, remote_addr: str
    ) -> Outcome:
        """Serve one HTTP request (``headers`` keys are lower-case)."""
        raw_path, _, query = target.partition("?")
        path = re.sub(r"/+", "/", urllib.parse.unquote(raw_path))
        fault = self._faults.take(path, method)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                if fault.status == 429:
                    # Vault's quota check names the path without the /v1/ prefix.
                    relative = path.removeprefix("/v1/")
                    message = f"request path {go_quote(relative)}: rate limit quota exceeded"
                else:
                    message = _FAULT_MESSAGES.get(
                        fault.status, f"injected fault: {HTTPStatus(fault.status).phrase}"
                    )
                outcome = _error_outcome(VaultError.respond(fault.status, message))
                if fault.retry_after is not None:
                    outcome.headers["Retry-After"] = fault.retry_after
                return outcome
        try:
            reply, mount_type = self._process(method, path, query, headers, body, remote_addr)
        except VaultError as error:
            return _error_outcome(error)
        except Exception as exc:  # noqa: BLE001
            # An emulator bug must reach the client as Vault's 500, not as a dropped connection.
            return _error_outcome(VaultError.internal(500, f"emulator internal error: {exc!r}"))
        return _reply_outcome(reply, mount_type, inject=_injects(path))

    def _process(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        remote_addr: str,
    ) -> tuple[Reply, str]:
        if not path.startswith("/v1/"):
            raise VaultError.not_found()
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        operation = _operation(method, params, headers)
        data = _request_data(method, params, body)
        if headers.get("x-vault-wrap-ttl"):
            raise VaultError.respond(400, "emulator: response wrapping is not supported")
        token_id = headers.get("x-vault-token", "")
        authorization = headers.get("authorization", "")
        if not token_id and authorization.lower().startswith("bearer "):
            token_id = authorization[len("bearer ") :].strip()
        core = self._core
        with core.lock:
            now = core.now()
            core.sweep(now)
            namespace, relative = _namespace(
                core, headers.get("x-vault-namespace", ""), path[len("/v1/") :]
            )
            if relative in _TOKEN_SELF_PATHS and token_id in core.tokens:
                namespace = core.tokens[token_id].namespace
            return self._route(
                namespace, relative, operation, data, token_id, now, remote_addr, headers
            )

    def _route(
        self,
        namespace: Namespace,
        request_path: str,
        operation: str,
        data: JSONDict,
        token_id: str,
        now: datetime,
        remote_addr: str,
        headers: dict[str, str],
    ) -> tuple[Reply, str]:
        core = self._core
        if operation == "list" and not request_path.endswith("/"):
            request_path += "/"
        if operation == "update" and request_path.endswith("/"):
            raise VaultError.respond(400, "cannot write to a path ending in '/'")
        mount, relative, _ = core.find_mount(namespace, request_path)
        found = _match(mount, relative)
        route, params = found if found else (None, {})
        token: Token | None = None
        if route is None or not route.unauthenticated:
            token = core.authenticate(namespace, token_id)
        call = Call(
            core=core,
            namespace=namespace,
            mount=mount,
            path=request_path,
            relative=relative,
            params=params,
            operation=operation,
            data=data,
            token=token,
            now=now,
            remote_addr=remote_addr,
            content_type=headers.get("content-type", ""),
        )
        if operation == "update" and route is not None and route.exists is not None:
            # Vault's existence check turns a write into "create" or "update" for the ACL.
            call.operation = "update" if route.exists(call) else "create"
        try:
            if token is not None:
                core.use(token)
                _authorize(core, token, call, route)
            if mount is None:
                raise VaultError.respond(
                    404, f"no handler for route {go_quote(request_path)}. route entry not found."
                )
            if route is None:
                raise VaultError.internal(404, "unsupported path")
            handler = route.operations.get(call.operation)
            if handler is None:
                raise VaultError.internal(405, "unsupported operation")
            return handler(call), mount.type
        finally:
            if token is not None and token.exhausted:
                core.revoke(token.id)


def _operation(method: str, params: dict[str, str], headers: dict[str, str]) -> str:
    """Map the HTTP verb to Vault's logical operation."""
    if method in {"GET", "HEAD"}:
        return "list" if params.get("list", "").lower() == "true" else "read"
    if method == "LIST":
        return "list"
    if method in _WRITE_METHODS:
        return "update"
    if method == "DELETE":
        return "delete"
    if method == "PATCH":
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/merge-patch+json":
            raise VaultError.respond(
                415,
                "PATCH requires Content-Type of application/merge-patch+json, "
                f"provided {go_quote(content_type)}",
            )
        return "patch"
    raise VaultError.respond(405, "unsupported operation")


def _request_data(method: str, params: dict[str, str], body: bytes) -> JSONDict:
    """Query parameters for reads, lists and deletes; the JSON body for writes."""
    if method in _QUERY_METHODS:
        return {k: v for k, v in params.items() if k != "list"}
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise VaultError.respond(400, f"failed to parse JSON input: {exc}") from exc
    if not isinstance(parsed, dict):
        raise VaultError.respond(400, "failed to parse JSON input: expected a JSON object")
    return parsed


def _namespace(core: Core, header: str, api_path: str) -> tuple[Namespace, str]:
    """Resolve the namespace from the header and any namespace prefix of the path.

    The header must name an existing namespace: otherwise the answer is 404 ``namespace not
    found``, whatever the token, before any routing (as OpenBao and Vault Enterprise do).
    Then, within it, the longest existing namespace prefix of the path wins and the rest of
    the path is routed inside it (so an unknown path prefix is a "no handler for route" 404).
    """
    current = core.root
    segments = [s for s in header.strip().split("/") if s]
    if segments[:1] == ["root"]:
        segments = segments[1:]
    for segment in segments:
        child = current.children.get(segment)
        if child is None:
            raise VaultError.respond(404, "namespace not found")
        current = child
    path_segments = api_path.split("/")
    consumed = 0
    for segment in path_segments[:-1]:
        child = current.children.get(segment)
        if child is None:
            break
        current = child
        consumed += 1
    return current, "/".join(path_segments[consumed:])


def _injects(path: str) -> bool:
    """Whether the answer to ``path`` repeats its data at the top level (Vault's fixed list)."""
    return any(
        path.startswith(route) if route.endswith("/") else path == route for route in _INJECT_ROUTES
    )


def _match(mount: Mount | None, relative: str) -> tuple[Route, dict[str, str]] | None:
    """The first route of the mount's backend whose pattern matches the relative path."""
    if mount is None:
        return None
    for candidate in _ROUTES.get(mount.type, []):
        match = candidate.pattern.match(relative)
        if match is not None:
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            return candidate, groups
    return None


def _authorize(core: Core, token: Token, call: Call, route: Route | None) -> None:
    """Check the token's policies (and sudo on root-protected paths) like Vault's ACL."""
    acl = core.acl(token)
    if acl.root:
        return
    acl_path = call.namespace.relative_to(token.namespace) + call.path
    allowed, sudo = acl.allows(acl_path, call.operation)
    if not allowed or (route is not None and route.sudo and not sudo):
        raise acl_denied()


def _dumps(body: Any) -> bytes:
    """JSON the way Go's encoder writes it: compact, with a trailing newline."""
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def _error_outcome(error: VaultError) -> Outcome:
    body: Any = error.body if error.body is not None else {"errors": error.errors}
    return Outcome(error.status, _dumps(body))


def _reply_outcome(reply: Reply, mount_type: str, inject: bool) -> Outcome:
    if reply.raw is not None:
        return Outcome(reply.status, _dumps(reply.raw))
    if reply.no_content:
        return Outcome(204, b"")
    envelope: JSONDict = {
        "request_id": new_uuid(),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": reply.data,
        "wrap_info": None,
        "warnings": reply.warnings,
        "auth": reply.auth,
        "mount_type": mount_type,
    }
    if inject and reply.data:
        # /v1/sys/ responses also carry their data at the top level (Vault's HTTPSysInjector).
        for key, value in reply.data.items():
            envelope.setdefault(key, value)
    return Outcome(reply.status, _dumps(envelope))


class _Handler(EmulatorHandler):
    """Hands every verb (LIST included) to the emulator."""

    server_version = "vault-emulator"
    # Headers and body leave in one segment: a buffered writer, flushed after each answer.
    wbufsize = -1

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        emulator = cast(EmulatorHTTPServer[VaultEmulator], self.server).emulator
        outcome = emulator.handle(self.command, self.path, headers, body, self.client_address[0])
        self.send_response(outcome.status)
        self.send_header("Cache-Control", "no-store")
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        # Vault's respondOk sets the content type before it knows the answer is a 204.
        self.send_header("Content-Type", "application/json")
        if outcome.status != 204:
            self.send_header("Content-Length", str(len(outcome.body)))
        self.end_headers()
        if self.command != "HEAD" and outcome.status != 204:
            self.wfile.write(outcome.body)

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_PATCH = _serve
    do_LIST = _serve
