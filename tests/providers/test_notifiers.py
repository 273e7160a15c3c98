"""The ``webhook``, ``slack`` and ``exec`` notifiers, against a local server and real commands."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers.notifiers import (
    ExecNotifier,
    ExecNotifierConfig,
    SlackConfig,
    SlackNotifier,
    WebhookNotifier,
    WebhookNotifierConfig,
)
from rotator.adapters.discovery import registry
from rotator.adapters.values import Alert, AlertEvent, Runtime, Severity
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    RotatorError,
    TransientError,
)
from rotator.output import redact
from tests.providers.helpers import StepClock

KEY_ENV = "ROTATOR_TEST_ALERT_KEY"
KEY = "alert-hmac-key-5e6f7a8b9c0d"
URL_ENV = "ROTATOR_TEST_SLACK_URL"
#: The secret part of a Slack incoming-webhook URL.
TOKEN = "slackTokenCanary9f8e7d6c5b4a"
SLACK_PATH = f"/services/T0CANARY/B0CANARY/{TOKEN}"
AT = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)

ALERT = Alert(
    event=AlertEvent.ROTATION_FAILED,
    severity=Severity.CRITICAL,
    secret="payments-db",
    summary="Rotation of payments-db rolled back: the verifier answered HTTP 401",
    at=AT,
    key="rotation-failed:payments-db:0123456789abcdef",
    rotation_id="0123456789abcdef0123456789abcdef",
    owner="team-payments",
    details={"step": "verify", "verifier": "http:https://payments.internal/health"},
)
#: An alert about no secret, with nothing optional.
BARE = Alert(
    event=AlertEvent.AUDIT_CHAIN_BROKEN,
    severity=Severity.WARNING,
    secret=None,
    summary="audit verify found record 41 edited",
    at=AT,
    key="audit-chain-broken:41",
)


# -- a local receiver -----------------------------------------------------------


@dataclass
class Seen:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP server that records requests and answers from a script."""

    base: str
    requests: list[Seen] = field(default_factory=list)
    #: (status, body, extra headers) to answer, in order; 200 "ok" once it runs out.
    answers: deque[tuple[int, bytes, dict[str, str]]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The receiver's own clock, as its ``Date`` headers say (None: the real time).
    date: datetime | None = None

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        """Queue one answer (headers as keywords, ``Retry_After="5"``)."""
        extra = {k.replace("_", "-"): v for k, v in headers.items()}
        self.answers.append((status, body, extra))

    def only(self) -> Seen:
        """Return the single request received (fails if there were more or none)."""
        [seen] = self.requests
        return seen


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with receiver.lock:
                receiver.requests.append(
                    Seen(self.command, self.path, dict(self.headers.items()), body)
                )
                status, text, extra = (
                    receiver.answers.popleft() if receiver.answers else (200, b"ok", {})
                )
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            if status in (301, 302):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def date_time_string(self, timestamp: float | None = None) -> str:
            """Stamp ``Date`` with the receiver's clock, when the test set one."""
            if receiver.date is None:
                return super().date_time_string(timestamp)
            return format_datetime(receiver.date, usegmt=True)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


def _serve(context: ssl.SSLContext | None) -> Iterator[Receiver]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    scheme = "https" if context else "http"
    receiver = Receiver(f"{scheme}://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A plain HTTP receiver on 127.0.0.1."""
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


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in its backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
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
    """Return a runtime on a step clock that records every sleep and request outcome."""
    clock = StepClock(now=AT)
    seen: list[tuple[str, str, str]] = []
    runtime = Runtime(
        clock=clock,
        sleep=clock.sleep,
        cache={},
        on_request=lambda p, o, r: seen.append((p, o, r)),
    )
    return Recording(runtime, clock, seen)


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the HMAC key in the environment (the Slack URL is set per test)."""
    monkeypatch.setenv(KEY_ENV, KEY)


def webhook(rec: Recording, url: str, **fields: Any) -> WebhookNotifier:
    """Return a webhook notifier posting to ``url``, signed with the test key unless told."""
    fields.setdefault("secret_env", KEY_ENV)
    return WebhookNotifier(WebhookNotifierConfig(url=url, **fields), rec.runtime, "pager")


def slack(
    rec: Recording, monkeypatch: pytest.MonkeyPatch, url: str, **fields: Any
) -> SlackNotifier:
    """Return a Slack notifier whose webhook URL (``url``) is in the environment."""
    monkeypatch.setenv(URL_ENV, url)
    return SlackNotifier(SlackConfig(url_env=URL_ENV, **fields), rec.runtime, "ops")


def signature_ok(seen: Seen) -> bool:
    """Verify a delivery as a receiver would: HMAC-SHA256 over "<timestamp>.<body>"."""
    stamp = seen.headers["X-Rotator-Timestamp"]
    expected = hmac.new(KEY.encode(), f"{stamp}.".encode() + seen.body, hashlib.sha256)
    return hmac.compare_digest(
        seen.headers["X-Rotator-Signature"], f"sha256={expected.hexdigest()}"
    )


def raised(action: Callable[[], None]) -> RotatorError:
    """Run ``action`` and return the RotatorError it raised (fail if it raised none)."""
    with pytest.raises(RotatorError) as caught:
        action()
    return caught.value


# -- webhook ------------------------------------------------------------------------


def test_webhook_posts_the_alert_signed_with_its_key(rec: Recording, receiver: Receiver) -> None:
    """The body is exactly the alert's JSON, signed with the key, with the alert key in headers."""
    webhook(rec, f"{receiver.base}/rotator?team=platform").send(ALERT)
    seen = receiver.only()
    assert (seen.method, seen.path) == ("POST", "/rotator?team=platform")
    assert json.loads(seen.body) == {
        "event": "rotation-failed",
        "severity": "critical",
        "secret": "payments-db",
        "summary": "Rotation of payments-db rolled back: the verifier answered HTTP 401",
        "at": "2026-01-01T09:30:00+00:00",
        "key": "rotation-failed:payments-db:0123456789abcdef",
        "rotation_id": "0123456789abcdef0123456789abcdef",
        "owner": "team-payments",
        "labels": {},
        "details": {"step": "verify", "verifier": "http:https://payments.internal/health"},
    }
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Rotator-Alert-Key"] == ALERT.key
    assert seen.headers["Idempotency-Key"] == f'"{ALERT.key}"'
    assert seen.headers["X-Rotator-Event"] == "rotation-failed"
    assert seen.headers["X-Rotator-Timestamp"] == str(int(AT.timestamp()))
    assert signature_ok(seen)
    assert rec.requests == [("webhook", "alert.post", "ok")]


def test_a_changed_body_fails_the_signature(rec: Recording, receiver: Receiver) -> None:
    """The signature binds the body: a receiver's check rejects a changed severity."""
    webhook(rec, f"{receiver.base}/a").send(ALERT)
    seen = receiver.only()
    seen.body = seen.body.replace(b'"critical"', b'"info"')
    assert not signature_ok(seen)


def test_webhook_without_secret_env_sends_unsigned(rec: Recording, receiver: Receiver) -> None:
    """With no secret_env the same JSON goes out without signature headers."""
    webhook(rec, f"{receiver.base}/a", secret_env=None).send(BARE)
    seen = receiver.only()
    assert json.loads(seen.body) == BARE.as_dict()
    assert json.loads(seen.body)["secret"] is None
    assert "X-Rotator-Signature" not in seen.headers
    assert "X-Rotator-Timestamp" not in seen.headers
    assert seen.headers["X-Rotator-Alert-Key"] == "audit-chain-broken:41"


def test_webhook_sends_static_headers(rec: Recording, receiver: Receiver) -> None:
    """Headers from the policy go with each alert."""
    webhook(rec, f"{receiver.base}/a", headers={"X-Team": "platform"}).send(ALERT)
    assert receiver.only().headers["X-Team"] == "platform"


def test_an_alert_key_unfit_for_a_header_is_sent_as_its_hash(
    rec: Recording, receiver: Receiver
) -> None:
    """A key with a line break or non-ASCII reaches the headers as its SHA-256, stable per key."""
    odd = Alert(
        event=AlertEvent.OVERDUE,
        severity=Severity.WARNING,
        secret="db",
        summary="overdue",
        at=AT,
        key="db:é\r\nX-Evil: 1",
    )
    notifier = webhook(rec, f"{receiver.base}/a")
    notifier.send(odd)
    notifier.send(odd)
    first, second = receiver.requests
    digest = hashlib.sha256(odd.key.encode()).hexdigest()
    assert first.headers["X-Rotator-Alert-Key"] == f"sha256:{digest}"
    assert second.headers["X-Rotator-Alert-Key"] == first.headers["X-Rotator-Alert-Key"]
    assert "X-Evil" not in first.headers
    assert json.loads(first.body)["key"] == odd.key


@pytest.mark.parametrize(
    ("status", "error", "outcome", "words"),
    [
        (400, PermanentError, "permanent", "HTTP 400"),
        (401, PermissionDeniedError, "permanent", "same HMAC key"),
        (403, PermissionDeniedError, "permanent", "HTTP 403"),
        (404, NotFoundError, "permanent", "HTTP 404"),
        (410, NotFoundError, "permanent", "HTTP 410"),
        (302, PermanentError, "permanent", "redirect"),
        (501, PermanentError, "permanent", "HTTP 501"),
        (408, TransientError, "transient", "HTTP 408"),
        (500, TransientError, "transient", "HTTP 500"),
        (503, TransientError, "transient", "HTTP 503"),
        (429, TransientError, "throttled", "HTTP 429"),
    ],
)
def test_webhook_answers_map_to_errors_after_one_attempt(
    rec: Recording,
    receiver: Receiver,
    status: int,
    error: type[RotatorError],
    outcome: str,
    words: str,
) -> None:
    """Each status class raises its error after exactly one request, with no wait of its own."""
    receiver.answer(status, b"the receiver's own words")
    caught = raised(lambda: webhook(rec, f"{receiver.base}/a").send(ALERT))
    assert type(caught) is error
    assert words in str(caught)
    assert "own words" not in str(caught)
    assert len(receiver.requests) == 1
    assert rec.clock.sleeps == []
    assert rec.requests == [("webhook", "alert.post", outcome)]
    if isinstance(caught, TransientError):
        assert caught.delay is None


def test_webhook_200_is_delivered(rec: Recording, receiver: Receiver) -> None:
    """Any 2xx is a delivery: send returns and the attempt counts as ok."""
    receiver.answer(202)
    webhook(rec, f"{receiver.base}/a").send(ALERT)
    assert rec.requests == [("webhook", "alert.post", "ok")]


def test_unsigned_webhook_refusal_suggests_signing(rec: Recording, receiver: Receiver) -> None:
    """A 401 to an unsigned notifier says the receiver may expect a signature."""
    receiver.answer(401)
    with pytest.raises(PermissionDeniedError, match="set secret_env"):
        webhook(rec, f"{receiver.base}/a", secret_env=None).send(ALERT)


def test_retry_after_becomes_the_delay(rec: Recording, receiver: Receiver) -> None:
    """Retry-After in seconds or as an HTTP date becomes TransientError.delay; nothing sleeps."""
    receiver.date = AT
    receiver.answer(429, Retry_After="7")
    receiver.answer(503, Retry_After=format_datetime(AT + timedelta(seconds=20), usegmt=True))
    notifier = webhook(rec, f"{receiver.base}/a")
    first = raised(lambda: notifier.send(ALERT))
    second = raised(lambda: notifier.send(ALERT))
    assert isinstance(first, TransientError) and first.delay == 7.0
    assert isinstance(second, TransientError) and second.delay == 20.0
    assert rec.clock.sleeps == []


def test_an_http_date_retry_after_is_counted_from_the_receivers_date(
    rec: Recording, receiver: Receiver
) -> None:
    """A receiver whose clock is an hour behind ours still gets the 20 s it asked for."""
    behind = AT - timedelta(hours=1)
    receiver.date = behind
    receiver.answer(503, Retry_After=format_datetime(behind + timedelta(seconds=20), usegmt=True))
    caught = raised(lambda: webhook(rec, f"{receiver.base}/a").send(ALERT))
    assert isinstance(caught, TransientError) and caught.delay == 20.0


@pytest.mark.parametrize(
    ("asked", "delay"),
    [("-5", None), ("inf", None), ("nan", None), ("soon", None), ("99999999", 86400.0)],
)
def test_an_unreadable_or_huge_retry_after_is_ignored_or_capped(
    rec: Recording, receiver: Receiver, asked: str, delay: float | None
) -> None:
    """Garbage in Retry-After leaves the wait to the engine; a huge wait is cut to a day."""
    receiver.answer(503, Retry_After=asked)
    caught = raised(lambda: webhook(rec, f"{receiver.base}/a").send(ALERT))
    assert isinstance(caught, TransientError) and caught.delay == delay


def test_refused_connection_is_transient(rec: Recording, closed_port: int) -> None:
    """Nothing listening: TransientError naming the failure, counted as transient."""
    with pytest.raises(TransientError, match="no answer") as caught:
        webhook(rec, f"http://127.0.0.1:{closed_port}/a").send(ALERT)
    assert caught.value.delay is None
    assert rec.requests == [("webhook", "alert.post", "transient")]


def test_timeout_is_transient(rec: Recording, silent_port: int) -> None:
    """A receiver that never answers raises TransientError once the timeout passes."""
    started = time.monotonic()
    with pytest.raises(TransientError, match="TimeoutError"):
        webhook(rec, f"http://127.0.0.1:{silent_port}/a", timeout=0.2).send(ALERT)
    assert time.monotonic() - started < 5
    assert rec.requests == [("webhook", "alert.post", "transient")]


def test_missing_key_variable_is_permanent_and_sends_nothing(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret_env that is not set raises PermanentError naming it; nothing is posted."""
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(PermanentError, match=KEY_ENV):
        webhook(rec, f"{receiver.base}/a").send(ALERT)
    assert receiver.requests == []


def test_webhook_describe_leaves_the_query_out(rec: Recording) -> None:
    """describe gives the URL without its query."""
    notifier = webhook(rec, "https://alerts.example.com/rotator?token=abc")
    assert notifier.describe() == "webhook:https://alerts.example.com/rotator"


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    """An HTTPS receiver with a certificate from a throwaway CA; yields it and the CA file."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for receiver in _serve(context):
        yield receiver, ca_file


def test_https_with_ca_file_and_an_untrusted_certificate(
    rec: Recording, tls_receiver: tuple[Receiver, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTPS both HTTP notifiers trust ca_file; without it the certificate is refused."""
    receiver, ca_file = tls_receiver
    webhook(rec, f"{receiver.base}/a", ca_file=str(ca_file)).send(ALERT)
    slack(rec, monkeypatch, receiver.base + SLACK_PATH, ca_file=str(ca_file)).send(ALERT)
    assert len(receiver.requests) == 2
    with pytest.raises(PermanentError, match="certificate"):
        webhook(rec, f"{receiver.base}/a").send(ALERT)
    assert len(receiver.requests) == 2


# -- slack --------------------------------------------------------------------------


def test_slack_posts_an_incoming_webhook_message(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message has a fallback text and blocks: header, summary, fields, details, context."""
    slack(rec, monkeypatch, receiver.base + SLACK_PATH).send(ALERT)
    seen = receiver.only()
    assert (seen.method, seen.path) == ("POST", SLACK_PATH)
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "text": ":rotating_light: rotation-failed · payments-db: Rotation of payments-db "
        "rolled back: the verifier answered HTTP 401",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":rotating_light: Rotation failed: payments-db",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Rotation of payments-db rolled back: the verifier answered HTTP 401",
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Secret*\npayments-db"},
                    {"type": "mrkdwn", "text": "*Event*\nrotation-failed"},
                    {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                    {"type": "mrkdwn", "text": "*Owner*\nteam-payments"},
                    {"type": "mrkdwn", "text": "*Rotation*\n0123456789abcdef0123456789abcdef"},
                    {"type": "mrkdwn", "text": "*Time*\n2026-01-01 09:30:00 UTC"},
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Details\n• step: verify\n"
                    "• verifier: http:https://payments.internal/health",
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "rotator · alert key rotation-failed:payments-db:0123456789abcdef",
                    }
                ],
            },
        ],
    }
    assert rec.requests == [("slack", "alert.post", "ok")]


def test_slack_message_of_a_bare_alert_leaves_absent_fields_out(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without secret, owner, rotation or details, those fields and the details block are absent."""
    slack(rec, monkeypatch, receiver.base + SLACK_PATH).send(BARE)
    message = json.loads(receiver.only().body)
    assert message["text"] == ":warning: audit-chain-broken: audit verify found record 41 edited"
    assert message["blocks"][0]["text"]["text"] == ":warning: Audit chain broken"
    assert [f["text"].split("\n")[0] for f in message["blocks"][2]["fields"]] == [
        "*Event*",
        "*Severity*",
        "*Time*",
    ]
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "context"]


def test_slack_text_cannot_mention_or_overflow(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """<!channel> in a summary is escaped, and long texts are clipped to Slack's limits."""
    summary = "<!channel> failed & <https://evil.example|click> " + "x" * 5000
    loud = Alert(
        event=AlertEvent.OVERDUE,
        severity=Severity.INFO,
        secret="s" * 200,
        summary=summary,
        at=AT,
        key="k",
    )
    slack(rec, monkeypatch, receiver.base + SLACK_PATH).send(loud)
    message = json.loads(receiver.only().body)
    header, section = message["blocks"][0]["text"]["text"], message["blocks"][1]["text"]["text"]
    assert "<!channel>" not in receiver.only().body.decode()
    assert section.startswith("&lt;!channel&gt; failed &amp; &lt;https://evil.example|click&gt; ")
    assert len(header) == 150 and header.endswith("…")
    assert len(section) == 3000 and section.endswith("…")
    assert len(message["text"]) <= 3000
    assert all(len(f["text"]) <= 2000 for f in message["blocks"][2]["fields"])


@pytest.mark.parametrize(
    ("status", "code", "error", "words"),
    [
        (400, "invalid_payload", PermanentError, "a bug in rotator"),
        (403, "invalid_token", PermissionDeniedError, f"put its URL in {URL_ENV}"),
        (403, "action_prohibited", PermissionDeniedError, "admin restriction"),
        (404, "no_service", NotFoundError, "does not exist any more"),
        (404, "channel_not_found", NotFoundError, "channel does not exist"),
        (410, "channel_is_archived", NotFoundError, "archived"),
        (400, "some_new_code", PermanentError, "(some_new_code)"),
        (500, "rollup_error", TransientError, "failed on its side"),
    ],
)
def test_slack_codes_become_clear_errors(
    rec: Recording,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    code: str,
    error: type[RotatorError],
    words: str,
) -> None:
    """Slack's plain-text codes raise the status class's error, naming the code and the fix."""
    receiver.answer(status, code.encode())
    caught = raised(lambda: slack(rec, monkeypatch, receiver.base + SLACK_PATH).send(ALERT))
    assert type(caught) is error
    assert f"HTTP {status} ({code})" in str(caught)
    assert words in str(caught)
    assert len(receiver.requests) == 1


def test_slack_429_is_transient_with_its_delay(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack's rate limit raises TransientError with Retry-After as the delay, counted throttled."""
    receiver.answer(429, b"rate_limited", Retry_After="30")
    caught = raised(lambda: slack(rec, monkeypatch, receiver.base + SLACK_PATH).send(ALERT))
    assert isinstance(caught, TransientError) and caught.delay == 30.0
    assert rec.requests == [("slack", "alert.post", "throttled")]


def test_slack_bodies_that_are_not_codes_are_not_repeated(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body that is anything but a short code (an echo of the URL, HTML) stays out of errors."""
    receiver.answer(400, f"Bad request to {SLACK_PATH}".encode())
    receiver.answer(502, b"<html>upstream of " + TOKEN.encode() + b"</html>")
    receiver.answer(403, b'{"ok": false, "error": "invalid_token"}')
    notifier = slack(rec, monkeypatch, receiver.base + SLACK_PATH)
    first, second, third = (raised(lambda: notifier.send(ALERT)) for _ in range(3))
    assert str(first).endswith("answered HTTP 400")
    assert "HTTP 502; try again later" in str(second)
    assert "HTTP 403 (invalid_token)" in str(third)  # a JSON body's error code is kept
    for caught in (first, second, third):
        assert TOKEN not in str(caught)
        assert "services" not in str(caught)


def test_slack_url_variable_unset_or_unusable_is_permanent(
    rec: Recording, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset url_env is named, an unusable URL refused without being quoted; nothing is sent."""
    monkeypatch.delenv(URL_ENV, raising=False)
    unset = SlackNotifier(SlackConfig(url_env=URL_ENV), rec.runtime, "ops")
    with pytest.raises(PermanentError, match=f"{URL_ENV} .*is not set"):
        unset.send(ALERT)
    for bad in (
        f"http://hooks.slack.com{SLACK_PATH}",
        f"ftp://x{SLACK_PATH}",
        f"https://u:p@x{SLACK_PATH}",
    ):
        caught = raised(lambda bad=bad: slack(rec, monkeypatch, bad).send(ALERT))
        assert type(caught) is PermanentError
        assert URL_ENV in str(caught) and "https://" in str(caught)
        assert TOKEN not in str(caught)
    assert receiver.requests == []
    assert rec.requests == []


def test_slack_describe_names_the_host_only(
    rec: Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    """describe is slack:<host>, never the path; an unset variable is said, not raised."""
    notifier = slack(rec, monkeypatch, f"https://hooks.slack.com{SLACK_PATH}")
    assert notifier.describe() == "slack:hooks.slack.com"
    monkeypatch.setenv(URL_ENV, f"https://chat.internal:8443/hooks/{TOKEN}")
    assert notifier.describe() == "slack:chat.internal:8443"
    monkeypatch.delenv(URL_ENV)
    assert notifier.describe() == f"slack:${URL_ENV} (not set)"


def test_slack_refused_and_silent_receivers_are_transient(
    rec: Recording, monkeypatch: pytest.MonkeyPatch, closed_port: int, silent_port: int
) -> None:
    """A refused connection and a timeout both raise TransientError naming the host only."""
    refused = slack(rec, monkeypatch, f"http://127.0.0.1:{closed_port}{SLACK_PATH}")
    with pytest.raises(TransientError, match=f"127.0.0.1:{closed_port}: no answer"):
        refused.send(ALERT)
    silent = slack(rec, monkeypatch, f"http://127.0.0.1:{silent_port}{SLACK_PATH}", timeout=0.2)
    with pytest.raises(TransientError, match="TimeoutError"):
        silent.send(ALERT)
    assert rec.requests == [("slack", "alert.post", "transient")] * 2


# -- nothing secret anywhere ----------------------------------------------------------


def test_token_and_key_never_reach_errors_descriptions_or_logs(
    rec: Recording,
    receiver: Receiver,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Across successes and every failure, the Slack token and the HMAC key appear nowhere."""
    caplog.set_level(logging.DEBUG)
    # The HTTP library's own loggers too: httpx logs every URL it requests at INFO.
    for library in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=library)
    texts: list[str] = []

    def attempt(action: Callable[[], None]) -> None:
        try:
            action()
        except RotatorError as exc:
            texts.append(str(exc))
            texts.append(repr(exc.args))

    receiver.answer(200, b"ok")
    receiver.answer(403, b"invalid_token")
    receiver.answer(404, b"no_service")
    receiver.answer(500, TOKEN.encode())
    receiver.answer(429, SLACK_PATH.encode(), Retry_After="1")
    notifier = slack(rec, monkeypatch, receiver.base + SLACK_PATH)
    for _ in range(5):
        attempt(lambda: notifier.send(ALERT))
    texts.append(notifier.describe())
    down = slack(rec, monkeypatch, f"http://127.0.0.1:{closed_port}{SLACK_PATH}")
    attempt(lambda: down.send(ALERT))
    texts.append(down.describe())
    attempt(lambda: slack(rec, monkeypatch, f"http://example.com{SLACK_PATH}").send(ALERT))

    signed = webhook(rec, f"{receiver.base}/a")
    receiver.answer(401, KEY.encode())
    attempt(lambda: signed.send(ALERT))
    attempt(lambda: signed.send(ALERT))
    texts.append(signed.describe())

    assert len(texts) == 2 * 7 + 3  # seven errors (message and args), three descriptions
    assert caplog.records  # deliveries were logged at DEBUG
    captured = capsys.readouterr()
    for text in [*texts, caplog.text, captured.out, captured.err]:
        assert TOKEN not in text
        assert "T0CANARY/B0CANARY" not in text
        assert KEY not in text
    # Both are registered for scrubbing, should any other path ever log them.
    assert TOKEN not in redact.scrub(f"posting to {receiver.base}{SLACK_PATH}")
    assert KEY not in redact.scrub(f"key={KEY}")


# -- exec ---------------------------------------------------------------------------

# Records stdin, argv and environment into $RECORD, prints what it got (a careless
# command), then exits $EXIT.
RECORDER = f"""#!{sys.executable}
import json, os, sys
data = sys.stdin.read()
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps({{"stdin": data, "argv": sys.argv, "env": dict(os.environ)}}) + "\\n")
print("paging with", data)
print("failed with", data, file=sys.stderr)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    """Write the recording command, executable, and return its path."""
    script = tmp_path / "page-oncall"
    script.write_text(RECORDER)
    script.chmod(0o755)
    return script


def command(rec: Recording, tmp_path: Path, script: Path, **fields: Any) -> ExecNotifier:
    """Return an exec notifier running ``script --team platform``, recording into tmp_path."""
    env = {"RECORD": str(tmp_path / "record.jsonl"), **fields.pop("env", {})}
    config = ExecNotifierConfig(command=[str(script), "--team", "platform"], env=env, **fields)
    return ExecNotifier(config, rec.runtime, "audit-hook")


def records(tmp_path: Path) -> list[dict[str, Any]]:
    """Return every run the recording command recorded, in order."""
    path = tmp_path / "record.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exec_gets_the_alert_json_on_stdin_only(
    rec: Recording, tmp_path: Path, recorder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdin is the alert's JSON line; argv and environment hold no summary and no JSON."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rotators-own-credential")
    monkeypatch.setenv("PAGER_REGION", "eu")
    notifier = command(rec, tmp_path, recorder, pass_env=["PAGER_REGION"])
    notifier.send(ALERT)
    [record] = records(tmp_path)
    assert record["stdin"].endswith("\n")
    assert json.loads(record["stdin"]) == ALERT.as_dict()
    assert record["argv"][1:] == ["--team", "platform"]
    env = record["env"]
    assert env["ROTATOR_ALERT_EVENT"] == "rotation-failed"
    assert env["ROTATOR_ALERT_SEVERITY"] == "critical"
    assert env["ROTATOR_SECRET"] == "payments-db"
    assert env["ROTATOR_ALERT_KEY"] == ALERT.key
    assert env["ROTATOR_NOTIFIER"] == "audit-hook"
    assert env["PAGER_REGION"] == "eu"
    assert "AWS_SECRET_ACCESS_KEY" not in env  # rotator's own credentials stay home
    for text in [*record["argv"], *env.values()]:
        assert "rolled back" not in text
        assert "{" not in text
    assert rec.requests == [("exec", "alert.run", "ok")]


def test_exec_secret_is_empty_for_an_alert_about_no_secret(
    rec: Recording, tmp_path: Path, recorder: Path
) -> None:
    """ROTATOR_SECRET is set but empty when the alert names no secret."""
    command(rec, tmp_path, recorder).send(BARE)
    [record] = records(tmp_path)
    assert record["env"]["ROTATOR_SECRET"] == ""
    assert json.loads(record["stdin"])["secret"] is None


def test_exec_exit_statuses(
    rec: Recording, tmp_path: Path, recorder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """75 is TransientError, 3 is PermanentError; neither repeats what the command printed."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransientError, match="EX_TEMPFAIL"):
        command(rec, tmp_path, recorder, env={"EXIT": "75"}).send(ALERT)
    with pytest.raises(
        PermanentError, match="page-oncall \\(alert\\) exited with status 3"
    ) as caught:
        command(rec, tmp_path, recorder, env={"EXIT": "3"}).send(ALERT)
    assert type(caught.value) is PermanentError
    assert "rolled back" not in str(caught.value)
    assert "rolled back" not in caplog.text
    assert len(records(tmp_path)) == 2
    assert rec.requests == [("exec", "alert.run", "transient"), ("exec", "alert.run", "permanent")]


def test_exec_timeout_kills_the_command_and_its_children(rec: Recording, tmp_path: Path) -> None:
    """A command outliving its timeout is killed with what it started: TransientError."""
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "slow.sh"
    script.write_text(f'#!/bin/sh\nsleep 30 &\necho $! > "{pid_file}"\nwait\n')
    script.chmod(0o755)
    notifier = ExecNotifier(
        ExecNotifierConfig(command=[str(script)], timeout=0.3), rec.runtime, "x"
    )
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"did not finish within 0\.3s"):
        notifier.send(ALERT)
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    pause = threading.Event()
    while not _dead(child) and time.monotonic() < deadline:
        pause.wait(0.02)
    assert _dead(child)
    assert rec.requests == [("exec", "alert.run", "transient")]


def _dead(pid: int) -> bool:
    """Tell whether ``pid`` is gone or a zombie (killed, not yet reaped by its new parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_exec_missing_or_not_executable_command(rec: Recording, tmp_path: Path) -> None:
    """A missing command raises NotFoundError; one not executable, PermissionDeniedError."""
    absent = ExecNotifier(ExecNotifierConfig(command=[str(tmp_path / "absent")]), rec.runtime, "x")
    with pytest.raises(NotFoundError, match="absent"):
        absent.send(ALERT)
    on_path = ExecNotifier(ExecNotifierConfig(command=["rotator-no-such-pager"]), rec.runtime, "x")
    with pytest.raises(NotFoundError, match="rotator-no-such-pager"):
        on_path.send(ALERT)
    script = tmp_path / "page.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    locked = ExecNotifier(ExecNotifierConfig(command=[str(script)]), rec.runtime, "x")
    with pytest.raises(PermissionDeniedError, match="not executable"):
        locked.send(ALERT)
    assert [r[2] for r in rec.requests] == ["permanent"] * 3


def test_exec_describe_leaves_arguments_out(rec: Recording, tmp_path: Path, recorder: Path) -> None:
    """describe names the program only."""
    assert command(rec, tmp_path, recorder).describe() == f"exec:{recorder}"


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"url": "http://alerts.example.com/rotator"}, "https"),
        ({"url": "https://user:pw@alerts.example.com/"}, "user or password"),
        ({"secret_env": "not a name"}, "environment variable name"),
        ({"headers": {"Idempotency-Key": "x"}}, "set by rotator"),
        ({"headers": {"X-Rotator-Signature": "x"}}, "set by rotator"),
        ({"headers": {"X-A": "a\nb"}}, "line break"),
        ({"timeout": "0s"}, "longer than zero"),
        ({"ca_file": "ca.pem"}, "absolute"),
        ({"attempts": 3}, "attempts"),
    ],
)
def test_webhook_config_refuses_bad_fields(fields: dict[str, Any], reason: str) -> None:
    """Each invalid webhook notifier is refused with a reason naming the problem."""
    base: dict[str, Any] = {"url": "https://alerts.example.com/rotator"}
    with pytest.raises(ValidationError, match=reason):
        WebhookNotifierConfig(**{**base, **fields})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"url": "https://hooks.slack.com/services/T/B/x"}, "url_env"),
        ({"url_env": "SLACK-URL"}, "not an environment variable name"),
        ({"url_env": "SLACK_URL", "channel": "#ops"}, "channel"),
        ({"url_env": "SLACK_URL", "timeout": "10m"}, "at most 5m"),
        ({}, "url_env"),
    ],
)
def test_slack_config_refuses_bad_fields(fields: dict[str, Any], reason: str) -> None:
    """A URL in the policy, a bad variable name or an unknown field is refused, saying why."""
    with pytest.raises(ValidationError, match=reason):
        SlackConfig(**fields)


def test_slack_url_in_the_policy_is_refused_without_quoting_it() -> None:
    """The refusal of a url field explains the URL is a credential and does not repeat it."""
    with pytest.raises(ValidationError) as caught:
        SlackConfig(url=f"https://hooks.slack.com{SLACK_PATH}")  # type: ignore[call-arg]
    message = "; ".join(str(e["msg"]) for e in caught.value.errors())
    assert "credential" in message
    assert TOKEN not in message


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"command": ["./page.sh"]}, "absolute path"),
        ({"command": []}, "at least 1"),
        ({"command": ["/bin/true"], "env": {"ROTATOR_ALERT_EVENT": "x"}}, "set by rotator"),
        ({"command": ["/bin/true"], "pass_env": ["bad name"]}, "not an environment variable"),
        ({"command": ["/bin/true"], "shell": True}, "shell"),
        ({"command": ["/bin/true"], "timeout": "2h"}, "1h"),
    ],
)
def test_exec_config_refuses_bad_fields(fields: dict[str, Any], reason: str) -> None:
    """Each invalid exec notifier is refused with a reason naming the problem."""
    with pytest.raises(ValidationError, match=reason):
        ExecNotifierConfig(**fields)


@pytest.mark.parametrize("url", ["http://localhost:8080/a", "http://127.0.0.1/a", "http://[::1]/a"])
def test_plain_http_is_allowed_to_loopback(url: str) -> None:
    """The webhook notifier accepts http:// to localhost, 127.0.0.1 and ::1."""
    assert WebhookNotifierConfig(url=url).url == url


def test_config_defaults() -> None:
    """Defaults: unsigned 10 s webhook, 10 s Slack, 30 s exec."""
    hook = WebhookNotifierConfig(url="https://alerts.example.com/rotator")
    assert (hook.secret_env, hook.headers, hook.timeout.total_seconds()) == (None, {}, 10)
    assert SlackConfig(url_env="SLACK_URL").timeout.total_seconds() == 10
    assert ExecNotifierConfig(command=["/bin/true"]).timeout.total_seconds() == 30


def test_the_registry_holds_the_three_notifiers() -> None:
    """The entry points notifier.webhook, .slack and .exec load these classes."""
    assert registry().notifiers == {
        "webhook": WebhookNotifier,
        "slack": SlackNotifier,
        "exec": ExecNotifier,
    }
