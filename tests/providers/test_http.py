"""The ``webhook`` target and ``http`` verifier against a real local HTTP(S) server."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers.http import HttpVerifier, HttpVerifierConfig, WebhookConfig, WebhookTarget
from rotator.adapters import Target, Verifier
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Credential, Runtime
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    RotatorError,
    TransientError,
    VerificationError,
)
from rotator.testing import TargetContract, VerifierContract, fresh_value
from tests.providers.helpers import StepClock

ROTATION = "0123456789abcdef0123456789abcdef"
VALUE = "canary-Value-7f3a9c2e1b"
PREVIOUS = "previous-Value-4d5e6f7a8b"
KEY_ENV = "ROTATOR_TEST_WEBHOOK_KEY"
KEY = "webhook-hmac-key-0a1b2c3d"


@dataclass
class Seen:
    """One request the test server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A local HTTP server that records requests and answers from a script of statuses."""

    url: str
    requests: list[Seen] = field(default_factory=list)
    #: (status, extra headers) to answer, in order; 200 once it runs out.
    answers: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *statuses: int, **headers: str) -> None:
        """Queue answers (the headers go with each, e.g. Retry_After="5")."""
        extra = {k.replace("_", "-"): v for k, v in headers.items()}
        self.answers.extend((s, extra) for s in statuses)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.requests.append(
                    Seen(self.command, self.path, dict(self.headers.items()), body)
                )
                status, extra = server.answers.popleft() if server.answers else (200, {})
            self.send_response(status)
            for name, text in extra.items():
                self.send_header(name, text)
            if status in (301, 302):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"ok")

        do_GET = do_POST = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


def _serve(context: ssl.SSLContext | None, host: str = "127.0.0.1") -> Iterator[Server]:
    scheme = "https" if context else "http"
    httpd = ThreadingHTTPServer((host, 0), _handler(Server("")))
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server = Server(f"{scheme}://{host}:{httpd.server_address[1]}/reload?team=payments")
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[Server]:
    """A plain HTTP server on 127.0.0.1 that records what it receives."""
    yield from _serve(None)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@dataclass
class Recording:
    """A runtime whose sleeps and request reports are recorded."""

    runtime: Runtime
    clock: StepClock
    requests: list[tuple[str, str, str]]


@pytest.fixture
def rec() -> Recording:
    """Return a runtime on a step clock that records every sleep and every request outcome."""
    clock = StepClock()
    seen: list[tuple[str, str, str]] = []
    runtime = Runtime(
        clock=clock,
        sleep=clock.sleep,
        cache={},
        on_request=lambda p, o, r: seen.append((p, o, r)),
    )
    return Recording(runtime, clock, seen)


@pytest.fixture(autouse=True)
def webhook_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the webhook's HMAC key in the environment."""
    monkeypatch.setenv(KEY_ENV, KEY)


def webhook(rec: Recording, url: str, **fields: Any) -> WebhookTarget:
    """Return a webhook target posting to ``url`` with the test key."""
    return WebhookTarget(WebhookConfig(url=url, secret_env=KEY_ENV, **fields), rec.runtime, "pay")


def verifier(rec: Recording, url: str, **fields: Any) -> HttpVerifier:
    """Return an HTTP verifier probing ``url``."""
    return HttpVerifier(HttpVerifierConfig(url=url, **fields), rec.runtime, "pay")


def signature_ok(seen: Seen) -> bool:
    """Verify a delivery the way a receiver would: HMAC over "<timestamp>.<body>"."""
    stamp = seen.headers["X-Rotator-Timestamp"]
    expected = hmac.new(KEY.encode(), f"{stamp}.".encode() + seen.body, hashlib.sha256)
    return hmac.compare_digest(
        seen.headers["X-Rotator-Signature"], f"sha256={expected.hexdigest()}"
    )


# -- webhook ------------------------------------------------------------------


def test_webhook_posts_a_signed_notice_without_the_value(rec: Recording, server: Server) -> None:
    """The body names event, secret, rotation and time, is signed, and holds no value."""
    webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/reload?team=payments")
    body = json.loads(seen.body)
    assert body == {
        "event": "rotated",
        "secret": "pay",
        "rotation_id": ROTATION,
        "timestamp": int(rec.clock.now.timestamp()),
    }
    assert seen.headers["X-Rotator-Timestamp"] == str(body["timestamp"])
    assert seen.headers["Content-Type"] == "application/json"
    assert signature_ok(seen)
    assert VALUE.encode() not in seen.body
    assert not any(VALUE in v for v in seen.headers.values())
    assert rec.requests == [("webhook", "webhook.post", "ok")]


def test_tampered_body_fails_the_signature(rec: Recording, server: Server) -> None:
    """A receiver's check rejects a body changed after signing (the scheme binds the body)."""
    webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    seen = server.requests[0]
    seen.body = seen.body.replace(b"rotated", b"restored")
    assert not signature_ok(seen)


def test_webhook_includes_the_value_when_asked(rec: Recording, server: Server) -> None:
    """With include_value the body carries the value (a mapping as an object)."""
    target = webhook(rec, server.url, include_value=True)
    target.write(ROTATION, SecretValue(VALUE))
    pair = {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t-access-key"}
    target.write(ROTATION, SecretValue(pair))
    assert json.loads(server.requests[0].body)["value"] == VALUE
    assert json.loads(server.requests[1].body)["value"] == pair
    assert all(signature_ok(seen) for seen in server.requests)


def test_restore_posts_restored(rec: Recording, server: Server) -> None:
    """restore posts event restored, with the previous value (or null) when values are included."""
    target = webhook(rec, server.url, include_value=True)
    target.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(PREVIOUS))
    target.restore(ROTATION, written=SecretValue(VALUE), previous=None)
    first, second = (json.loads(s.body) for s in server.requests)
    assert (first["event"], first["value"]) == ("restored", PREVIOUS)
    assert (second["event"], second["value"]) == ("restored", None)
    assert first["rotation_id"] == ROTATION


def test_static_headers_are_sent(rec: Recording, server: Server) -> None:
    """Headers from the policy are sent with each delivery."""
    webhook(rec, server.url, headers={"X-Team": "payments"}).write(ROTATION, SecretValue(VALUE))
    assert server.requests[0].headers["X-Team"] == "payments"


def test_webhook_retries_503_with_backoff_then_succeeds(rec: Recording, server: Server) -> None:
    """Two 503s are retried after 1 s and 2 s (on the runtime's sleep), then the 200 succeeds."""
    server.answer(503, 503)
    webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    assert len(server.requests) == 3
    assert rec.clock.sleeps == [1.0, 2.0]
    assert [r[2] for r in rec.requests] == ["transient", "transient", "ok"]
    stamps = [s.headers["X-Rotator-Timestamp"] for s in server.requests]
    assert len(set(stamps)) == 3  # each attempt signed afresh
    assert all(signature_ok(s) for s in server.requests)


def test_webhook_honours_retry_after_on_429(rec: Recording, server: Server) -> None:
    """A 429 with Retry-After waits what it asks (more than the backoff), counted as throttled."""
    server.answer(429, Retry_After="7")
    webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    assert rec.clock.sleeps == [7.0]
    assert [r[2] for r in rec.requests] == ["throttled", "ok"]


def test_webhook_gives_up_transiently(rec: Recording, server: Server) -> None:
    """Always 503: four attempts, waits of 1, 2, 4 s, then TransientError naming the status."""
    server.answer(*[503] * 10)
    with pytest.raises(TransientError, match="HTTP 503 after 4 attempts"):
        webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    assert len(server.requests) == 4
    assert rec.clock.sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (400, PermanentError, "HTTP 400"),
        (401, PermissionDeniedError, "HMAC key"),
        (403, PermissionDeniedError, "HTTP 403"),
        (404, NotFoundError, "HTTP 404"),
        (302, PermanentError, "redirect"),
    ],
)
def test_webhook_refusals_are_permanent_at_once(
    rec: Recording, server: Server, status: int, error: type[RotatorError], words: str
) -> None:
    """A 4xx (or a redirect, never followed) raises at once, without retrying."""
    server.answer(status)
    with pytest.raises(error, match=words) as caught:
        webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    assert type(caught.value) is error
    assert len(server.requests) == 1
    assert rec.clock.sleeps == []
    assert rec.requests == [("webhook", "webhook.post", "permanent")]


def test_webhook_unreachable_is_transient(rec: Recording, closed_port: int) -> None:
    """A refused connection is retried, then raises TransientError."""
    url = f"http://127.0.0.1:{closed_port}/reload"
    with pytest.raises(TransientError, match="no answer"):
        webhook(rec, url, attempts=2).write(ROTATION, SecretValue(VALUE))
    assert rec.clock.sleeps == [1.0]
    assert rec.requests == [("webhook", "webhook.post", "transient")] * 2


def test_missing_key_variable_is_permanent_and_sends_nothing(
    rec: Recording, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset secret_env raises PermanentError naming the variable; nothing is posted."""
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(PermanentError, match=KEY_ENV):
        webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    assert server.requests == []


def test_check_connects_without_sending(rec: Recording, server: Server) -> None:
    """check reports the host reachable and the server receives no request."""
    assert "reachable: 127.0.0.1" in webhook(rec, server.url).check()
    assert server.requests == []


def test_check_failures(
    rec: Recording, server: Server, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check raises TransientError for a refused connection and PermanentError for a missing key."""
    with pytest.raises(TransientError, match="no connection"):
        webhook(rec, f"http://127.0.0.1:{closed_port}/").check()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(PermanentError, match=KEY_ENV):
        webhook(rec, server.url).check()


def test_describe_leaves_the_query_out(rec: Recording) -> None:
    """describe gives the URL without its query."""
    target = webhook(rec, "https://payments.internal/reload?token=abc")
    assert target.describe() == "webhook:https://payments.internal/reload"


# -- verifier -----------------------------------------------------------------


def test_verifier_puts_the_credential_in_headers(rec: Recording, server: Server) -> None:
    """{new} and {new.FIELD} in header values are replaced by the credential when probing."""
    pair = {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t-access-key"}
    headers = {"Authorization": "Bearer {new.SecretAccessKey}", "X-Key-Id": "{new.AccessKeyId}"}
    verifier(rec, server.url, headers=headers).verify(Credential(SecretValue(pair)))
    verifier(rec, server.url, headers={"X-Api-Key": "{new}"}).verify(Credential(SecretValue(VALUE)))
    first, second = server.requests
    assert first.method == "GET"
    assert first.headers["Authorization"] == "Bearer s3cr3t-access-key"
    assert first.headers["X-Key-Id"] == "AKIAEXAMPLE"
    assert second.headers["X-Api-Key"] == VALUE
    assert VALUE not in second.path
    assert rec.requests == [("http", "http.verify", "ok")] * 2


def test_verifier_accepts_any_expected_status(rec: Recording, server: Server) -> None:
    """expect_status may list several statuses; HEAD is sent as asked."""
    server.answer(204)
    verifier(rec, server.url, method="HEAD", expect_status=[200, 204]).verify(
        Credential(SecretValue(VALUE))
    )
    assert server.requests[0].method == "HEAD"


def test_wrong_status_is_a_verification_error_without_the_value(
    rec: Recording, server: Server
) -> None:
    """A 401 raises VerificationError naming URL and status (not headers), without retrying."""
    server.answer(401)
    probe = verifier(rec, server.url, headers={"Authorization": "Bearer {new}"})
    with pytest.raises(VerificationError) as caught:
        probe.verify(Credential(SecretValue(VALUE)))
    message = str(caught.value)
    assert "HTTP 401, expected 200" in message
    assert server.url.split("?")[0] in message
    assert VALUE not in message
    assert "Bearer" not in message
    assert len(server.requests) == 1
    assert rec.requests == [("http", "http.verify", "permanent")]


def test_verifier_503_is_a_verdict_not_a_retry(rec: Recording, server: Server) -> None:
    """An unhealthy 503 is a VerificationError at once (health checks answer 503 when failing)."""
    server.answer(503)
    with pytest.raises(VerificationError, match="HTTP 503"):
        verifier(rec, server.url).verify(Credential(SecretValue(VALUE)))
    assert rec.clock.sleeps == []


def test_verifier_retries_only_connection_failures(rec: Recording, closed_port: int) -> None:
    """A refused connection is tried ``attempts`` times, then raises TransientError."""
    url = f"http://127.0.0.1:{closed_port}/health"
    with pytest.raises(TransientError, match="after 3 attempts"):
        verifier(rec, url).verify(Credential(SecretValue(VALUE)))
    assert rec.clock.sleeps == [1.0, 2.0]
    assert rec.requests == [("http", "http.verify", "transient")] * 3


def test_missing_field_is_permanent_and_sends_nothing(rec: Recording, server: Server) -> None:
    """{new.FIELD} for a field the credential lacks raises PermanentError before any request."""
    probe = verifier(rec, server.url, headers={"X-Key": "{new.AccessKeyId}"})
    with pytest.raises(PermanentError, match="AccessKeyId"):
        probe.verify(Credential(SecretValue(VALUE)))
    assert server.requests == []


def test_credential_unfit_for_a_header_is_refused_quietly(rec: Recording, server: Server) -> None:
    """A credential with a line break is never sent in a header, and the error does not quote it."""
    value = "first-line-secret\r\nX-Injected: yes"
    with pytest.raises(PermanentError, match="cannot carry") as caught:
        verifier(rec, server.url, headers={"X-Key": "{new}"}).verify(Credential(SecretValue(value)))
    assert "line-secret" not in str(caught.value)
    assert server.requests == []


# -- TLS ----------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """An HTTPS server with a certificate from a throwaway CA; yields it and the CA's PEM file."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for server in _serve(context):
        yield server, ca_file


def test_https_with_ca_file(rec: Recording, tls_server: tuple[Server, Path]) -> None:
    """Over HTTPS, a certificate signed by ca_file is accepted by webhook, check and verifier."""
    server, ca_file = tls_server
    target = webhook(rec, server.url, ca_file=str(ca_file))
    assert "TLS verified" in target.check()
    target.write(ROTATION, SecretValue(VALUE))
    verifier(rec, server.url, ca_file=str(ca_file)).verify(Credential(SecretValue(VALUE)))
    assert [s.method for s in server.requests] == ["POST", "GET"]


def test_untrusted_certificate_is_permanent(
    rec: Recording, tls_server: tuple[Server, Path]
) -> None:
    """Without the CA the certificate is refused: PermanentError, no retry, nothing received."""
    server, _ = tls_server
    with pytest.raises(PermanentError, match="certificate"):
        webhook(rec, server.url).write(ROTATION, SecretValue(VALUE))
    with pytest.raises(PermanentError, match="certificate"):
        webhook(rec, server.url).check()
    with pytest.raises(PermanentError, match="certificate"):
        verifier(rec, server.url).verify(Credential(SecretValue(VALUE)))
    assert rec.clock.sleeps == []
    assert server.requests == []


# -- no value anywhere ----------------------------------------------------------


def test_value_never_reaches_an_error_or_a_log_line(
    rec: Recording, server: Server, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Across successes, retries and failures of both adapters, no message or log has the value."""
    caplog.set_level(logging.DEBUG)
    refused = f"http://127.0.0.1:{closed_port}/"
    credential = Credential(SecretValue(VALUE))
    messages: list[str] = []
    server.answer(503, 200, 400, 401)

    def attempt(action: Any) -> None:
        try:
            action()
        except RotatorError as exc:
            messages.append(str(exc))

    loud = webhook(rec, server.url, include_value=True)
    attempt(lambda: loud.write(ROTATION, credential.value))  # 503 then 200
    attempt(lambda: loud.write(ROTATION, credential.value))  # 400
    attempt(
        lambda: loud.restore(ROTATION, written=credential.value, previous=SecretValue(PREVIOUS))
    )  # 401
    attempt(lambda: webhook(rec, refused, include_value=True).write(ROTATION, credential.value))
    bearer = {"Authorization": "Bearer {new}"}
    server.answer(500)
    attempt(lambda: verifier(rec, server.url, headers=bearer).verify(credential))
    attempt(lambda: verifier(rec, refused, headers=bearer).verify(credential))
    assert len(messages) == 5
    assert caplog.records  # the retries were logged
    for text in [*messages, caplog.text]:
        assert VALUE not in text
        assert PREVIOUS not in text
        assert KEY not in text


# -- config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"url": "http://payments.internal/reload"}, "https"),
        ({"url": "ftp://payments.internal/reload"}, "https"),
        ({"url": "https://user:pw@payments.internal/"}, "user or password"),
        ({"url": "https://payments.internal:99999/"}, "port"),
        ({"url": "https://payments.internal/#x"}, "fragment"),
        ({"secret_env": "not a name"}, "environment variable name"),
        ({"headers": {"X-Rotator-Signature": "x"}}, "set by rotator"),
        ({"headers": {"Content-Type": "text/plain"}}, "set by rotator"),
        ({"headers": {"Authorization": "Bearer {new}"}}, "static"),
        ({"headers": {"X-A": "a\nb"}}, "line break"),
        ({"headers": {"Bad Name": "a"}}, "header name"),
        ({"attempts": 0}, "greater than or equal to 1"),
        ({"timeout": "0s"}, "longer than zero"),
        ({"ca_file": "ca.pem"}, "absolute"),
        ({"value": True}, "value"),
    ],
)
def test_webhook_config_refuses_bad_fields(fields: dict[str, Any], reason: str) -> None:
    """Each invalid webhook policy is refused with a reason naming the problem."""
    base: dict[str, Any] = {"url": "https://payments.internal/reload", "secret_env": KEY_ENV}
    with pytest.raises(ValidationError, match=reason):
        WebhookConfig(**{**base, **fields})


@pytest.mark.parametrize("url", ["http://localhost:8080/x", "http://127.0.0.1/x", "http://[::1]/x"])
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    """http:// is accepted for localhost, 127.0.0.1 and ::1."""
    assert WebhookConfig(url=url, secret_env=KEY_ENV).url == url


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"url": "https://api.internal/health?key={new}"}, "may not carry the credential"),
        ({"headers": {"Authorization": "Bearer {new.}"}}, "is not {new}"),
        ({"headers": {"Authorization": "Bearer {newest}"}}, "is not {new}"),
        ({"headers": {"Host": "x"}}, "set by rotator"),
        ({"expect_status": 99}, "not an HTTP status"),
        ({"expect_status": []}, "at least one"),
        ({"method": "DELETE"}, "method"),
    ],
)
def test_verifier_config_refuses_bad_fields(fields: dict[str, Any], reason: str) -> None:
    """Each invalid verifier policy is refused with a reason naming the problem."""
    base: dict[str, Any] = {"url": "https://api.internal/health"}
    with pytest.raises(ValidationError, match=reason):
        HttpVerifierConfig(**{**base, **fields})


def test_config_defaults() -> None:
    """Defaults: webhook 4 attempts, 10 s, no value; verifier GET expecting 200, 3 attempts."""
    hook = WebhookConfig(url="https://h/reload", secret_env=KEY_ENV)
    assert (hook.attempts, hook.timeout.total_seconds(), hook.include_value) == (4, 10, False)
    probe = HttpVerifierConfig(url="https://h/health")
    assert (probe.method, probe.statuses(), probe.attempts) == ("GET", (200,), 3)


# -- the Target and Verifier contracts ----------------------------------------


@dataclass
class Consumer:
    """A consumer behind HTTP: it applies each signed webhook delivery and checks bearer tokens.

    While ``down`` it drops every connection unanswered (no answer is no
    verdict: the caller retries).
    """

    url: str = ""
    carried: SecretValue | None = None
    token: str | None = None
    down: bool = False

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """Drop every connection within the block."""
        self.down = True
        try:
            yield
        finally:
            self.down = False


def _consumer_handler(consumer: Consumer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if consumer.down:
                self.close_connection = True
                return
            if not signature_ok(Seen("POST", self.path, dict(self.headers.items()), body)):
                self._reply(401)
                return
            value = json.loads(body).get("value")
            consumer.carried = None if value is None else SecretValue(value)
            self._reply(204)

        def do_GET(self) -> None:
            if consumer.down:
                self.close_connection = True
                return
            wanted = consumer.token is not None and (
                self.headers.get("Authorization") == f"Bearer {consumer.token}"
            )
            self._reply(200 if wanted else 401)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    """A consumer on 127.0.0.1 taking webhook deliveries and checking tokens."""
    found = Consumer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _consumer_handler(found))
    found.url = f"http://127.0.0.1:{httpd.server_address[1]}/rotated"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield found
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class TestWebhookContract(TargetContract):
    """The Target contract over a webhook carrying the value to a consumer that applies it."""

    consumer: Consumer

    @pytest.fixture
    def target(self, rec: Recording, consumer: Consumer) -> Target[Any]:
        self.consumer = consumer
        return webhook(rec, consumer.url, include_value=True, attempts=2)

    def carried(self, target: Target[Any]) -> SecretValue | None:
        return self.consumer.carried

    def unavailable(self, target: Target[Any]) -> AbstractContextManager[None]:
        return self.consumer.unreachable()


class TestHttpVerifierContract(VerifierContract):
    """The Verifier contract over an HTTP check sending the credential as a bearer token."""

    consumer: Consumer

    @pytest.fixture
    def verifier(self, rec: Recording, consumer: Consumer) -> Verifier[Any]:
        self.consumer = consumer
        headers = {"Authorization": "Bearer {new}"}
        return verifier(rec, consumer.url, headers=headers, attempts=2)

    def accepted(self, verifier: Verifier[Any]) -> Credential:
        value = fresh_value("accepted")
        self.consumer.token = value.text()
        return Credential(value)

    def refused(self, verifier: Verifier[Any]) -> Credential:
        self.consumer.token = fresh_value("accepted").text()
        return Credential(fresh_value("refused"))

    def unavailable(self, verifier: Verifier[Any]) -> AbstractContextManager[None]:
        return self.consumer.unreachable()
