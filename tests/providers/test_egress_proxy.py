"""Every HTTP-speaking adapter reaches its host through an egress proxy, as the SDKs do.

Each adapter (the GitHub and GitLab targets, the webhook target, the HTTP
verifier, the webhook and Slack notifiers) sends a real request over TLS to a
real server on loopback, through :class:`tests.connect_proxy.EgressProxy`,
which records every CONNECT it tunnels. The cases: ``HTTPS_PROXY`` set,
``NO_PROXY`` naming the host, the policy's ``proxy`` field (a URL, and
``none`` beside an environment pointing at a dead proxy), and a proxy URL
carrying a user and password, which must appear in no log line and no error.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers.gitlab import GitLabCiConfig, GitLabCiTarget
from providers.http import HttpVerifier, HttpVerifierConfig, WebhookConfig, WebhookTarget
from providers.notifiers import SlackConfig, SlackNotifier, WebhookNotifier, WebhookNotifierConfig
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Alert, AlertEvent, Credential, Runtime, Severity
from rotator.errors import PermanentError, RotatorError
from rotator.output import redact
from rotator.sandbox.github.server import serve as serve_github
from rotator.sandbox.gitlab.server import serve as serve_gitlab
from tests.connect_proxy import EgressProxy
from tests.providers.helpers import StepClock

trustme = pytest.importorskip("trustme")
pytest.importorskip("nacl")

from providers.github import GitHubActionsConfig, GitHubActionsTarget  # noqa: E402

ROTATION = "0f3c2a9d8e7b4c1a9f0e1d2c3b4a5f60"
VALUE = "canary-Proxy7xY2vK9pLm4Rt8"
GITHUB_TOKEN = "github_pat_11proxyTOKEN0123456789abcdef"
GITLAB_TOKEN = "glpat-proxyTOKEN0123456789ab"
KEY_ENV = "ROTATOR_TEST_PROXY_HMAC"
URL_ENV = "ROTATOR_TEST_PROXY_SLACK_URL"
SLACK_TOKEN = "slackProxyCanary9f8e7d6c5b4a"
PROXY_USER = "svc-rotator"
PROXY_PASSWORD = "Pr0xy-pa55word-c4nary-91"
#: Every variable that could send a request elsewhere, cleared before each test.
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
ALERT = Alert(
    event=AlertEvent.ROTATION_FAILED,
    severity=Severity.CRITICAL,
    secret="payments-db",
    summary="Rotation of payments-db rolled back",
    at=StepClock().now,
    key="rotation-failed:payments-db:0f3c",
)


@dataclass
class Receiver:
    """An HTTPS server on loopback answering 200 to anything; records each method and path."""

    base: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)


def _receiver_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            receiver.seen.append((self.command, self.path))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


@dataclass
class World:
    """The TLS servers every adapter talks to, the CA that signed them, and the proxy."""

    ca_file: Path
    proxy: EgressProxy
    github: Any
    gitlab: Any
    receiver: Receiver
    runtime: Runtime


@pytest.fixture(autouse=True)
def no_proxy_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start each test with no proxy variable from the machine running the tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "github.write=0,gitlab=0")
    monkeypatch.setenv(KEY_ENV, "proxy-test-hmac-key-0a1b2c")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """Start GitHub, GitLab and a receiver over TLS (one throwaway CA) and an egress proxy."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    clock = StepClock()
    runtime = Runtime(clock=clock, sleep=clock.sleep, cache={})
    receiver = Receiver()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(receiver))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    receiver.base = f"https://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    github_servers = serve_github(clock, context, tokens=(GITHUB_TOKEN,))
    gitlab_servers = serve_gitlab(clock, context, tokens={GITLAB_TOKEN: "maintainer"})
    github = next(github_servers)
    github.add_repository("acme/payments")
    gitlab = next(gitlab_servers)
    gitlab.add_project("payments/api")
    monkeypatch.setenv(URL_ENV, f"{receiver.base}/services/T0PROXY/B0PROXY/{SLACK_TOKEN}")
    try:
        with EgressProxy() as proxy:
            yield World(ca_file, proxy, github, gitlab, receiver, runtime)
    finally:
        for servers in (github_servers, gitlab_servers):
            for _ in servers:
                pass
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


#: One adapter's request: given the world and the policy fields to add, send it.
Exercise = Callable[[World, dict[str, Any]], None]


def _github(world: World, fields: dict[str, Any]) -> None:
    config = GitHubActionsConfig(
        repository="acme/payments",
        name="db_password",
        api_url=world.github.url,
        ca_file=str(world.ca_file),
        **fields,
    )
    GitHubActionsTarget(config, world.runtime, "payments-db").write(ROTATION, SecretValue(VALUE))
    found = world.github.secret(world.github.scope(repository="acme/payments"), "DB_PASSWORD")
    assert found is not None and found.value == VALUE


def _gitlab(world: World, fields: dict[str, Any]) -> None:
    config = GitLabCiConfig(
        project="payments/api",
        key="DB_PASSWORD",
        url=world.gitlab.url,
        ca_file=str(world.ca_file),
        **fields,
    )
    GitLabCiTarget(config, world.runtime, "payments-db").write(ROTATION, SecretValue(VALUE))
    found = world.gitlab.variable(world.gitlab.projects[0], "DB_PASSWORD")
    assert found is not None and found.value == VALUE


def _webhook_target(world: World, fields: dict[str, Any]) -> None:
    config = WebhookConfig(
        url=f"{world.receiver.base}/reload",
        secret_env=KEY_ENV,
        ca_file=str(world.ca_file),
        **fields,
    )
    WebhookTarget(config, world.runtime, "payments-db").write(ROTATION, SecretValue(VALUE))
    assert ("POST", "/reload") in world.receiver.seen


def _verifier(world: World, fields: dict[str, Any]) -> None:
    config = HttpVerifierConfig(
        url=f"{world.receiver.base}/health",
        headers={"Authorization": "Bearer {new}"},
        ca_file=str(world.ca_file),
        **fields,
    )
    credential = Credential(SecretValue(VALUE))
    HttpVerifier(config, world.runtime, "payments-db").verify(credential)
    assert ("GET", "/health") in world.receiver.seen


def _webhook_notifier(world: World, fields: dict[str, Any]) -> None:
    config = WebhookNotifierConfig(
        url=f"{world.receiver.base}/alerts",
        secret_env=KEY_ENV,
        ca_file=str(world.ca_file),
        **fields,
    )
    WebhookNotifier(config, world.runtime, "pager").send(ALERT)
    assert ("POST", "/alerts") in world.receiver.seen


def _slack(world: World, fields: dict[str, Any]) -> None:
    config = SlackConfig(url_env=URL_ENV, ca_file=str(world.ca_file), **fields)
    SlackNotifier(config, world.runtime, "ops").send(ALERT)
    assert any(path.startswith("/services/T0PROXY/") for _, path in world.receiver.seen)


ADAPTERS: dict[str, Exercise] = {
    "github": _github,
    "gitlab": _gitlab,
    "webhook-target": _webhook_target,
    "http-verifier": _verifier,
    "webhook-notifier": _webhook_notifier,
    "slack-notifier": _slack,
}


def _host(world: World, name: str) -> str:
    """Return the ``host:port`` the adapter ``name`` connects to."""
    server = {"github": world.github.url, "gitlab": world.gitlab.url}.get(name, world.receiver.base)
    return server.split("://", 1)[1].rstrip("/")


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    """The name of one HTTP-speaking adapter (each test runs for all of them)."""
    name: str = request.param
    return name


def test_https_proxy_carries_every_request(
    world: World, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTPS_PROXY set, each request is tunnelled by the proxy to the adapter's host."""
    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url)
    ADAPTERS[adapter](world, {})
    tunnels = world.proxy.tunnels()
    assert tunnels, "the proxy saw no request: HTTPS_PROXY was ignored"
    assert set(tunnels) == {_host(world, adapter)}


def test_lower_case_https_proxy_is_honoured_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https_proxy (as curl and urllib read it) counts like HTTPS_PROXY."""
    monkeypatch.setenv("https_proxy", world.proxy.url)
    _webhook_target(world, {})
    assert world.proxy.tunnels() == [_host(world, "webhook-target")]


def test_no_proxy_naming_the_host_goes_direct(
    world: World, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the host sends the request straight to it, past the proxy."""
    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url)
    monkeypatch.setenv("NO_PROXY", "internal.example,127.0.0.1")
    ADAPTERS[adapter](world, {})
    assert world.proxy.visits == []


def test_the_policys_proxy_is_used_without_any_environment(world: World, adapter: str) -> None:
    """``proxy: http://HOST:PORT`` in the policy sends the adapter's requests through it."""
    ADAPTERS[adapter](world, {"proxy": world.proxy.url})
    assert set(world.proxy.tunnels()) == {_host(world, adapter)}


def test_the_policys_proxy_wins_over_no_proxy(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit proxy in the policy is used even for a host NO_PROXY names."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _github(world, {"proxy": world.proxy.url})
    assert world.proxy.tunnels()


def test_proxy_none_connects_directly_whatever_the_environment(
    world: World, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``proxy: none`` ignores HTTPS_PROXY (here a port nothing listens on)."""
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{dead.getsockname()[1]}")
        ADAPTERS[adapter](world, {"proxy": "none"})
    assert world.proxy.visits == []


def test_a_dead_proxy_is_a_transient_failure_naming_no_password(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that refuses connections fails the request for now, saying nothing of its login."""
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}")
        with pytest.raises(RotatorError) as caught:
            _webhook_notifier(world, {})
    assert not isinstance(caught.value, PermanentError)
    assert "ConnectionRefusedError" in str(caught.value)
    assert PROXY_PASSWORD not in str(caught.value)


def _said(caplog: pytest.LogCaptureFixture, error: BaseException | None) -> str:
    """Return every captured log line (message, arguments and exception) and the error's text."""
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(repr(record.exc_info[1]))
    if error is not None:
        lines += [str(error), repr(error.args), repr(error.__cause__), repr(error.__context__)]
    return "\n".join(lines)


@pytest.fixture
def every_log_line(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every record at DEBUG, httpx's and httpcore's included."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_proxy_credentials_work_and_appear_in_no_log_or_error(
    world: World,
    adapter: str,
    monkeypatch: pytest.MonkeyPatch,
    every_log_line: pytest.LogCaptureFixture,
) -> None:
    """A proxy needing a login is passed it from HTTPS_PROXY; the password is never said.

    Right credentials: the requests go through (authorized). Wrong ones: the
    proxy answers 407 and the request fails for good, naming the proxy's
    answer, not the URL it was given.
    """
    redact.forget_all()
    world.proxy.credentials = (PROXY_USER, PROXY_PASSWORD)
    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url_with(PROXY_USER, PROXY_PASSWORD))
    ADAPTERS[adapter](world, {})
    assert world.proxy.visits and all(v.authorized for v in world.proxy.visits)

    wrong = "Wr0ng-pa55word-c4nary-17"
    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url_with(PROXY_USER, wrong))
    with pytest.raises(RotatorError) as caught:
        ADAPTERS[adapter](world, {})
    assert "407" in str(caught.value)
    assert not world.proxy.visits[-1].authorized
    said = _said(every_log_line, caught.value)
    for secret in (PROXY_PASSWORD, wrong):
        assert secret not in said
    # The scrubber knows the proxy's password, should a library ever print it.
    assert PROXY_PASSWORD not in redact.scrub(f"proxy at http://{PROXY_USER}:{PROXY_PASSWORD}@x")


def test_a_proxy_variable_that_is_no_url_fails_naming_the_variable_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY holding no usable URL is a permanent error naming it, never its value."""
    monkeypatch.setenv("HTTPS_PROXY", f"ftp://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:21")
    with pytest.raises(PermanentError, match="HTTPS_PROXY is not") as caught:
        _webhook_target(world, {})
    assert PROXY_PASSWORD not in str(caught.value)
    assert world.proxy.visits == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:3128", "user or password"),
        ("socks5://proxy.internal:1080", "must be http://"),
        ("http://proxy.internal:3128/path", "no path"),
        ("http://proxy.internal:99999", "not a URL"),
    ],
)
def test_a_policy_proxy_must_be_a_bare_http_url(value: str, reason: str) -> None:
    """A policy's proxy is http(s)://HOST:PORT or none; a password is refused, never repeated."""
    with pytest.raises(ValidationError) as caught:
        WebhookConfig(url="https://hooks.example.com/x", secret_env=KEY_ENV, proxy=value)
    assert reason in str(caught.value)
    assert PROXY_PASSWORD not in str(caught.value).replace(f"input_value='{value}'", "")


def test_route_reads_the_environment_as_urllib_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """No scheme means http://; NO_PROXY matches domains and subdomains; * matches all."""
    from providers.transport.http import route

    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", ".corp.example, vault.internal")
    assert route("https://api.github.com/x", None).proxy == "http://proxy.internal:3128"
    assert route("https://api.github.com/x", None).shown() == (
        "through the proxy proxy.internal:3128 (from HTTPS_PROXY)"
    )
    assert route("https://git.corp.example/x", None).proxy is None
    assert route("https://vault.internal:8200/x", None).proxy is None
    assert route("https://api.github.com/x", "none").proxy is None
    monkeypatch.setenv("NO_PROXY", "*")
    assert route("https://api.github.com/x", None).proxy is None
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:8080")
    assert route("https://api.github.com/x", None).source == "ALL_PROXY"


def _webhook(world: World, **fields: Any) -> WebhookTarget:
    config = WebhookConfig(
        url=f"{world.receiver.base}/reload",
        secret_env=KEY_ENV,
        ca_file=str(world.ca_file),
        **fields,
    )
    return WebhookTarget(config, world.runtime, "payments-db")


def test_check_opens_the_tunnel_and_sends_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, every_log_line: pytest.LogCaptureFixture
) -> None:
    """The webhook's check goes through the proxy (with its login), and TLS, but no request."""
    world.proxy.credentials = (PROXY_USER, PROXY_PASSWORD)
    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url_with(PROXY_USER, PROXY_PASSWORD))
    said = _webhook(world).check()
    assert world.proxy.tunnels() == [_host(world, "webhook-target")]
    assert world.proxy.visits[0].authorized
    assert world.receiver.seen == []
    assert "TLS verified" in said and "through the proxy 127.0.0.1:" in said
    assert PROXY_PASSWORD not in said

    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url_with(PROXY_USER, "Wr0ng-pa55word-c4nary-17"))
    with pytest.raises(PermanentError, match="407") as caught:
        _webhook(world).check()
    assert "Wr0ng" not in _said(every_log_line, caught.value)
    assert PROXY_PASSWORD not in _said(every_log_line, caught.value)


def test_check_follows_no_proxy_and_proxy_none(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check connects directly when NO_PROXY names the host, or the policy says none."""
    monkeypatch.setenv("HTTPS_PROXY", world.proxy.url)
    assert "through the proxy" not in _webhook(world, proxy="none").check()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert "through the proxy" not in _webhook(world).check()
    assert world.proxy.visits == []
    assert "through the proxy" in _webhook(world, proxy=world.proxy.url).check()
    assert world.proxy.tunnels()
