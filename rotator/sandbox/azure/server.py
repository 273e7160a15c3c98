"""The network side: an HTTPS vault endpoint, a plain-HTTP MSI endpoint, faults, and the facade."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import trustme

from rotator.sandbox.azure.apim import ApimEmulator
from rotator.sandbox.azure.identity import (
    MSI_PATH,
    EmulatorCredential,
    TokenIssuer,
    msi_token,
)
from rotator.sandbox.azure.protocol import (
    AUTHORITY_HOST,
    VAULT_RESOURCE,
    KeyVaultError,
    bad_parameter,
    dumps,
    epoch,
    error_code,
)
from rotator.sandbox.azure.secrets_api import Call, match, route_error
from rotator.sandbox.azure.store import SecretStore
from rotator.sandbox.core.clock import Clock, utc_now
from rotator.sandbox.core.faults import FaultPlan
from rotator.sandbox.core.http import (
    EmulatorHandler,
    LoopbackServer,
    netloc,
    serve_in_background,
    shut_down,
)
from rotator.sandbox.core.recording import RequestLog
from rotator.sandbox.core.tls import TLSServer

DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000000"
TOKEN_LIFETIME = 3600
REQUEST_LOG_SIZE = 10000
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
SERVICE_VERSION = "kv-emulator"
#: Seconds a delete and a recovery take by default, on the emulator clock. Key Vault takes
#: "several seconds" (the SDK's documentation of its pollers); about 6 s after a delete and 4 s
#: after a recover were seen against the real service. Real times vary.
DELETE_DELAY = 6.0
RECOVER_DELAY = 4.0
# What Key Vault answers for these statuses (429 as observed; the others in Key Vault's style).
_FAULT_ERRORS = {
    429: (
        "Throttled",
        "Request was not processed because too many requests were received. "
        "Reason: VaultRequestTypeLimitReached",
    ),
    500: ("InternalServerError", "The server encountered an internal error."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
}
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 - names, not a bind


@dataclass(frozen=True)
class RecordedRequest:
    """One request the vault received (after TLS), as kept in ``KeyVaultEmulator.request_log``."""

    method: str
    path: str
    query: str
    authorization: bool
    body_length: int
    status: int


@dataclass
class Outcome:
    """What goes back on the wire."""

    status: int
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)


def _error_outcome(error: KeyVaultError) -> Outcome:
    return Outcome(error.status, dumps(error.body()), dict(error.headers))


class KeyVaultEmulator(LoopbackServer):
    """An Azure Key Vault (secrets) stand-in over HTTPS on loopback (see the package doc).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    scheme = "https"
    thread_name = "kv-emulator-vault"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tenant_id: str = DEFAULT_TENANT_ID,
        clock: Clock | None = None,
        recoverable_days: int = 90,
        soft_delete: bool = True,
        purge_protection: bool = False,
        delete_delay: float = DELETE_DELAY,
        recover_delay: float = RECOVER_DELAY,
    ) -> None:
        if soft_delete and not 7 <= recoverable_days <= 90:
            raise ValueError("recoverable_days must be between 7 and 90, as in Key Vault")
        if purge_protection and not soft_delete:
            raise ValueError("purge protection needs soft delete, as in Key Vault")
        for delay in (delete_delay, recover_delay):
            if not 0 <= delay < float("inf"):
                raise ValueError("delete_delay and recover_delay are seconds, zero or more")
        super().__init__(host, port)
        self.identity_port = 0
        self.tenant_id = tenant_id
        self.clock: Clock = clock or utc_now
        self.recoverable_days = recoverable_days
        self.soft_delete = soft_delete
        self.identity_header = uuid.uuid4().hex
        self._store = SecretStore(
            soft_delete,
            recoverable_days,
            purge_protection=purge_protection,
            delete_delay=delete_delay,
            recover_delay=recover_delay,
        )
        self._issuer = TokenIssuer(self._now, tenant_id, TOKEN_LIFETIME)
        self._faults = FaultPlan()
        #: API Management: ARM calls on subscription keys, and a gateway (see :mod:`.apim`).
        self.apim = ApimEmulator(self._issuer, self._faults, self._now, lambda: self.url)
        self._msi_server: TLSServer[KeyVaultEmulator] | None = None
        self._msi_thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self._ca_path: str | None = None
        # The last requests the vault answered, oldest first (for tests and debugging).
        self.request_log: RequestLog[RecordedRequest] = RequestLog(maxlen=REQUEST_LOG_SIZE)

    @property
    def purge_protection(self) -> bool:
        """Whether purges are refused (403), as in a vault with purge protection."""
        return self._store.purge_protection

    @property
    def delete_delay(self) -> float:
        """Seconds of the emulator clock between a delete and its completion."""
        return self._store.delete_delay

    @property
    def recover_delay(self) -> float:
        """Seconds of the emulator clock between a recover and its completion."""
        return self._store.recover_delay

    def _now(self) -> datetime:
        # Read the attribute on every call so that replacing ``clock`` takes effect at once.
        return self.clock()

    # -- addresses and credentials

    @property
    def vault_url(self) -> str:
        """The vault's address, e.g. ``https://127.0.0.1:8443`` (``localhost`` works too)."""
        return self.url

    @property
    def ca_path(self) -> str:
        """A PEM file with the CA that signed the vault's certificate (removed at :meth:`stop`)."""
        if self._ca_path is None:
            raise RuntimeError("the emulator is not started")
        return self._ca_path

    @property
    def identity_endpoint(self) -> str:
        """The App Service style managed-identity endpoint (``IDENTITY_ENDPOINT``), plain HTTP."""
        if self._msi_server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{netloc(self.host, self.identity_port)}{MSI_PATH}"

    def credential(self) -> EmulatorCredential:
        """An azure-core TokenCredential whose tokens this emulator accepts."""
        return EmulatorCredential(self._issuer)

    # -- lifecycle

    def _bind(self) -> TLSServer[KeyVaultEmulator]:
        """Make the certificates and listen for the vault over TLS."""
        self._tmpdir = tempfile.mkdtemp(prefix="kv-emulator-")
        context = self._tls_context(self._tmpdir)
        return TLSServer((self.host, self.port), _VaultHandler, self, context)

    def _tls_context(self, directory: str) -> ssl.SSLContext:
        ca = trustme.CA(organization_name="rotator Key Vault emulator")
        identities = ["localhost", "127.0.0.1", "::1"]
        if self.host not in identities and self.host not in _WILDCARD_HOSTS:
            identities.append(self.host)
        leaf = ca.issue_cert(*identities)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        path = os.path.join(directory, "ca.pem")
        ca.cert_pem.write_to_path(path)
        self._ca_path = path
        return context

    def _on_start(self) -> None:
        """Serve the managed-identity endpoint too, over plain HTTP on a port of its own."""
        msi = TLSServer((self.host, 0), _MsiHandler, self, None)
        self.identity_port = int(msi.server_address[1])
        self._msi_server = msi
        self._msi_thread = serve_in_background(msi, f"kv-emulator-msi-{self.identity_port}")

    def _on_stop(self) -> None:
        """Stop the managed-identity endpoint and remove the CA file."""
        msi, thread = self._msi_server, self._msi_thread
        self._msi_server, self._msi_thread = None, None
        if msi is not None:
            shut_down(msi, thread)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = self._ca_path = None

    # -- fault injection

    def inject_fault(
        self,
        path_prefix: str = "/secrets/app",
        status: int | None = 429,
        retry_after: int | None = None,
        delay: float = 0.0,
        count: int = 1,
        method: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``status`` (or only wait ``delay``).

        A request matches when it carries a valid token (the 401 challenge is never replaced),
        its decoded path (e.g. ``/secrets/app/``) starts with ``path_prefix`` and, if ``method``
        is given, its verb is that one. It first waits ``delay`` real seconds; then it gets
        ``status`` with Key Vault's error envelope and, if ``retry_after`` is set, a
        ``Retry-After`` header, or, when ``status`` is None, it is served normally.
        """
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after cannot be negative")
        self._faults.add(
            path_prefix,
            status=status,
            delay=delay,
            count=count,
            method=method,
            retry_after=None if retry_after is None else str(retry_after),
        )

    def clear_faults(self) -> None:
        """Drop every injected fault still waiting, the APIM emulator's included (one plan)."""
        self._faults.clear()

    # -- one vault request

    def _base_url(self, headers: dict[str, str]) -> str:
        host = headers.get("host", "")
        if not _HOST_HEADER.fullmatch(host):
            host = netloc(self.host, self.port)
        return f"https://{host}"

    def _challenge(self) -> str:
        return (
            f'Bearer authorization="{AUTHORITY_HOST}/{self.tenant_id}", resource="{VAULT_RESOURCE}"'
        )

    def handle_vault(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Outcome:
        """Serve one request to the vault (``headers`` keys are lower-case)."""
        raw_path, _, query = target.partition("?")
        raw_path = re.sub(r"/{2,}", "/", raw_path)
        path = urllib.parse.unquote(raw_path)
        if self.apim.serves(path):
            answer = self.apim.handle(method, raw_path, query, headers)
            encoded = None if answer.body is None else dumps(answer.body)
            return Outcome(answer.status, encoded, answer.headers)
        try:
            self._issuer.check(headers.get("authorization"))
        except KeyVaultError as error:
            error.headers["WWW-Authenticate"] = self._challenge()
            return _error_outcome(error)
        fault = self._faults.take(path, method)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                code, message = _FAULT_ERRORS.get(
                    fault.status, (error_code(fault.status), "Injected.")
                )
                injected = KeyVaultError(fault.status, code, message)
                if fault.retry_after is not None:
                    injected.headers["Retry-After"] = fault.retry_after
                return _error_outcome(injected)
        try:
            params = {
                key: values[-1]
                for key, values in urllib.parse.parse_qs(query, keep_blank_values=True).items()
            }
            api_version = params.get("api-version", "")
            if not api_version:
                raise bad_parameter("The 'api-version' query parameter is missing.")
            found = match(raw_path)
            route, groups = found if found is not None else (None, {})
            handler = route.operations.get(method) if route is not None else None
            if handler is None:
                raise route_error(method, path, route)
            store = self._store
            with store.lock:
                moment = self.clock()
                instant = moment.timestamp()
                store.sweep(instant)
                call = Call(
                    method=method,
                    path=raw_path,
                    groups=groups,
                    params=params,
                    body=body,
                    base_url=self._base_url(headers),
                    api_version=api_version,
                    now=epoch(moment),
                    instant=instant,
                    store=store,
                )
                reply = handler(call)
        except KeyVaultError as error:
            return _error_outcome(error)
        except Exception as exc:  # noqa: BLE001
            # An emulator bug must reach the client as a 500 envelope, not a dropped connection.
            return _error_outcome(
                KeyVaultError(500, "InternalServerError", f"emulator internal error: {exc!r}")
            )
        if reply.body is None:
            return Outcome(reply.status, None)
        return Outcome(reply.status, dumps(reply.body))

    def handle_msi(self, method: str, target: str, headers: dict[str, str]) -> Outcome:
        """Serve one request to the managed-identity endpoint."""
        raw_path, _, query = target.partition("?")
        params = {key: values[-1] for key, values in urllib.parse.parse_qs(query).items()}
        reply = msi_token(
            self._issuer,
            self.identity_header,
            method,
            urllib.parse.unquote(raw_path),
            params,
            headers,
        )
        return Outcome(reply.status, dumps(reply.body))


class _Handler(EmulatorHandler):
    """Shared reply writing."""

    server_version = "kv-emulator"
    # Headers and body leave in one segment: a buffered writer, flushed after each answer.
    wbufsize = -1
    timeout = 120

    @property
    def emulator(self) -> KeyVaultEmulator:
        return cast(TLSServer[KeyVaultEmulator], self.server).emulator

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _headers(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def _send(self, outcome: Outcome, extra: dict[str, str]) -> None:
        self.send_response(outcome.status)
        for key, value in {**extra, **outcome.headers}.items():
            self.send_header(key, value)
        if outcome.body is not None:
            self.send_header("Content-Type", JSON_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(outcome.body)))
        elif outcome.status != 204:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if outcome.body is not None and self.command != "HEAD":
            self.wfile.write(outcome.body)


class _VaultHandler(_Handler):
    """Every verb goes to the vault."""

    def _serve(self) -> None:
        body = self._read_body()
        headers = self._headers()
        emulator = self.emulator
        outcome = emulator.handle_vault(self.command, self.path, headers, body)
        path, _, query = self.path.partition("?")
        emulator.request_log.append(
            RecordedRequest(
                method=self.command,
                path=urllib.parse.unquote(path),
                query=query,
                authorization="authorization" in headers,
                body_length=len(body),
                status=outcome.status,
            )
        )
        extra = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": SERVICE_VERSION,
        }
        client_request_id = headers.get("x-ms-client-request-id")
        if client_request_id:
            extra["x-ms-client-request-id"] = client_request_id
        self._send(outcome, extra)

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve


class _MsiHandler(_Handler):
    """The managed-identity token endpoint."""

    def _serve(self) -> None:
        self._read_body()
        outcome = self.emulator.handle_msi(self.command, self.path, self._headers())
        self._send(outcome, {"Cache-Control": "no-store"})

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
