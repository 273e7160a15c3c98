"""The daemon's HTTP endpoint over real sockets: /metrics, /healthz, /readyz."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from rotator.errors import ConfigError
from rotator.service.health import HealthServer
from rotator.service.metrics import Metrics
from tests.conftest import FakeClock


class Probes:
    """Liveness and readiness answers the test flips by hand."""

    def __init__(self) -> None:
        self.alive_answer = True
        self.ready_answer: tuple[bool, str] = (True, "")
        self.fail: Exception | None = None

    def alive(self) -> bool:
        if self.fail is not None:
            raise self.fail
        return self.alive_answer

    def ready(self) -> tuple[bool, str]:
        if self.fail is not None:
            raise self.fail
        return self.ready_answer


@pytest.fixture
def metrics(clock: FakeClock) -> Metrics:
    """Metrics on the fake clock."""
    return Metrics(clock)


@pytest.fixture
def probes() -> Probes:
    """Probes that start alive and ready."""
    return Probes()


@pytest.fixture
def server(metrics: Metrics, probes: Probes) -> Iterator[HealthServer]:
    """A started health server on a free port."""
    with HealthServer(metrics, port=0, alive=probes.alive, ready=probes.ready) as srv:
        yield srv


def _request(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    """Send one request; return status, headers and body whatever the status."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_start_on_port_zero_reports_the_actual_port(server: HealthServer) -> None:
    """Port 0 picks a free port, and port and url report the one bound."""
    assert server.port != 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_metrics_serves_prometheus_text(server: HealthServer, metrics: Metrics) -> None:
    """GET /metrics answers 200 with prometheus-client's content type and the metrics."""
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 1.0)

    status, headers, body = _request(server.url + "/metrics")

    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert (
        b'rotator_rotations_total{outcome="succeeded",provider="aws-secretsmanager",'
        b'secret="db-password"} 1.0' in body
    )


def test_healthz_follows_the_liveness_callable(server: HealthServer, probes: Probes) -> None:
    """GET /healthz is 200 "ok" while alive, and 503 with a reason once not."""
    assert _request(server.url + "/healthz")[::2] == (200, b"ok\n")

    probes.alive_answer = False
    status, _, body = _request(server.url + "/healthz")

    assert status == 503
    assert body == b"not alive: the scheduler loop has not ticked recently\n"


def test_readyz_gives_the_reason_then_turns_ready(server: HealthServer, probes: Probes) -> None:
    """GET /readyz is 503 with the callable's reason, then 200 "ready" once it says so."""
    probes.ready_answer = (False, "journal unreachable: connection refused")
    status, _, body = _request(server.url + "/readyz")
    assert status == 503
    assert body == b"not ready: journal unreachable: connection refused\n"

    probes.ready_answer = (True, "")
    assert _request(server.url + "/readyz")[::2] == (200, b"ready\n")


def test_a_probe_that_raises_answers_503(server: HealthServer, probes: Probes) -> None:
    """A callable that raises makes its probe answer 503 naming the error, not drop the request."""
    probes.fail = ConnectionError("journal down")

    for path, prefix in (("/healthz", b"not alive: "), ("/readyz", b"not ready: ")):
        status, _, body = _request(server.url + path)
        assert status == 503
        assert body.startswith(prefix)
        assert b"ConnectionError: journal down" in body


def test_head_answers_headers_without_a_body(server: HealthServer) -> None:
    """HEAD /healthz answers the GET's status and length with an empty body."""
    status, headers, body = _request(server.url + "/healthz", method="HEAD")

    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == "3"


def test_unknown_paths_are_404(server: HealthServer) -> None:
    """Anything but the three routes answers 404."""
    for path in ("/", "/metricsx", "/healthz/extra", "/admin"):
        assert _request(server.url + path)[0] == 404


def test_other_methods_are_405(server: HealthServer) -> None:
    """Methods other than GET and HEAD answer 405 with an Allow header, on any path."""
    for method, path in (("POST", "/metrics"), ("DELETE", "/healthz"), ("BREW", "/readyz")):
        status, headers, _ = _request(server.url + path, method=method)
        assert status == 405
        assert headers["Allow"] == "GET, HEAD"


def test_requests_are_not_logged_to_stderr(
    server: HealthServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """The stdlib's access log line never reaches stderr."""
    _request(server.url + "/healthz")
    _request(server.url + "/nowhere")

    assert "GET /healthz" not in capfd.readouterr().err


def test_stop_frees_the_port(metrics: Metrics, probes: Probes) -> None:
    """After stop() nothing answers on the port, and a new server can bind it again."""
    first = HealthServer(metrics, port=0, alive=probes.alive, ready=probes.ready)
    first.start()
    port = first.port
    assert _request(first.url + "/healthz")[0] == 200
    first.stop()
    first.stop()

    with pytest.raises(urllib.error.URLError):
        _request(first.url + "/healthz")
    with HealthServer(metrics, port=port, alive=probes.alive, ready=probes.ready) as second:
        assert _request(second.url + "/healthz")[0] == 200


def test_a_port_in_use_is_a_config_error(metrics: Metrics, probes: Probes) -> None:
    """Starting on a port another socket listens on raises ConfigError naming host and port."""
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        srv = HealthServer(metrics, port=port, alive=probes.alive, ready=probes.ready)
        with pytest.raises(ConfigError, match=rf"cannot listen on 127\.0\.0\.1:{port}: "):
            srv.start()


def test_an_impossible_port_is_a_config_error(metrics: Metrics, probes: Probes) -> None:
    """A port outside 0-65535 is refused when the server is built."""
    with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:70000"):
        HealthServer(metrics, port=70000, alive=probes.alive, ready=probes.ready)
