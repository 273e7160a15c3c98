"""End-to-end fixtures: one moto_server per session, reset before each test, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from rotator.sandbox.aws.sandbox import AwsSandbox
from tests import harness
from tests.providers.vault.backends import REAL_VAULT, Backend, unique_prefix, vault_for

REGION = "us-east-1"
#: What coverage.py puts in the environment to measure the subprocesses too.
COVERAGE_VARIABLES = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


@contextmanager
def unmeasured() -> Iterator[None]:
    """Start subprocesses inside without coverage (under ``make test`` it measures them all).

    moto_server runs no line of rotator, yet under the tracer it answers
    slowly enough that a quota meant to throttle rotator is never reached.
    """
    saved = {name: os.environ.pop(name) for name in COVERAGE_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto_server subprocess on a free loopback port; the environment that points at it."""
    sandbox = AwsSandbox()
    with unmeasured():
        env = sandbox.start(tmp_path_factory.mktemp("moto"))
    yield env
    sandbox.stop()


@pytest.fixture
def aws(moto_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A freshly reset moto_server, with this process's boto3 pointed at it."""
    request = urllib.request.Request(
        moto_env["AWS_ENDPOINT_URL"] + "/moto-api/reset", method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    for key, value in moto_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return dict(moto_env)


def client(service: str, **kw: Any) -> Any:
    """A boto3 client against the moto_server of the current test."""
    return boto3.client(service, region_name=REGION, **kw)


@dataclass
class Completed:
    """What one rotator subprocess did."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Rotator:
    """Runs the rotator CLI as a subprocess with a given policy file and journal.

    ``python -m rotator``, or, when a call pins the clock or arms a fault
    point, the test harness (``python -m tests.harness``, see
    ``tests/harness.py``): the installed program honours neither.
    ``now`` is the instant every call pins unless it names its own.
    """

    env: dict[str, str]
    config: Path
    state: str
    workdir: Path
    now: datetime | str | None = None

    def command(
        self, *args: str, now: datetime | str | None = None, fault: str | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """Return the command line and environment running the CLI with ``args``."""
        env = {
            **os.environ,
            **self.env,
            "ROTATOR_CONFIG": str(self.config),
            "ROTATOR_STATE": self.state,
        }
        now = self.now if now is None else now
        if now is None and not fault:
            plain = {k: v for k, v in env.items() if k not in (harness.NOW, harness.FAULT)}
            return [sys.executable, "-m", "rotator", *args], plain
        return harness.command(*args), harness.environment(env, now=now, fault=fault)

    def __call__(
        self,
        *args: str,
        now: datetime | None = None,
        fault: str | None = None,
        log_level: str = "info",
    ) -> Completed:
        command, env = self.command(
            *args, "--log-format", "json", "--log-level", log_level, now=now, fault=fault
        )
        proc = subprocess.run(
            command,
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Completed(proc.returncode, proc.stdout, proc.stderr)


def spawn(
    cli: Rotator, log: Path, *args: str, fault: str = "", capture: bool = False
) -> subprocess.Popen[bytes]:
    """Start the CLI with ``ARGS`` as ``cli`` runs it, logging JSON to ``log``.

    Its stdout is piped if ``capture``. With ``cli.now`` set or a ``fault``
    armed, it runs through the harness (``tests/harness.py``).
    """
    command, env = cli.command(*args, "--log-format", "json", fault=fault)
    sink = log.open("a")
    return subprocess.Popen(
        command,
        env=env,
        cwd=cli.workdir,
        stdout=subprocess.PIPE if capture else sink,
        stderr=sink,
    )


def eventually(check: Callable[[], bool], seconds: float, every: float = 0.05) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass (no fixed sleep)."""
    tick = threading.Event()
    for _ in range(int(seconds / every)):
        if check():
            return True
        tick.wait(every)
    return check()


@pytest.fixture
def rotator_cli(aws: dict[str, str], tmp_path: Path) -> Rotator:
    """The CLI against moto_server, with policies in tmp_path/policies.yaml."""
    # A copy: a test may change its CLI's environment; the session's moto_env stays as it is.
    return Rotator(
        dict(aws), tmp_path / "policies.yaml", f"sqlite:///{tmp_path / 'rotator.db'}", tmp_path
    )


@pytest.fixture(params=["emulator", REAL_VAULT])
def vault_server(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A Vault for the CLI: a fresh emulator, then a real server, each on the wall clock.

    The real server is the session's OpenBao, or the Vault ``VAULT_ADDR`` and
    ``VAULT_TOKEN`` name. A test mounts what it uses at paths of its own
    (``Backend.enable_kv``, ``Backend.enable_approle``); all of it, and every
    token made meanwhile on a server the tests own, goes at the end.
    """
    with vault_for(request, unique_prefix("e2e")) as backend:
        yield backend


@pytest.fixture
def vault_server_cli(vault_server: Backend, rotator_cli: Rotator) -> Rotator:
    """The CLI with the VAULT_* settings of ``vault_server`` and its admin token (and moto)."""
    rotator_cli.env = {**rotator_cli.env, **vault_server.environ(vault_server.root_token)}
    return rotator_cli


@pytest.fixture
def keyvault() -> Iterator[Any]:
    """A fresh Azure Key Vault emulator (HTTPS, its own CA) on a free loopback port.

    Its deletes and recoveries complete at once: the rotator processes run on the wall clock
    and would wait seconds on every promote (the store tests run the service's timing).
    """
    from rotator.sandbox.azure import KeyVaultEmulator

    with KeyVaultEmulator(delete_delay=0, recover_delay=0) as emulator:
        yield emulator


@pytest.fixture
def azure_cli(keyvault: Any, rotator_cli: Rotator) -> Rotator:
    """The CLI logging in to the emulator with the real ManagedIdentityCredential."""
    rotator_cli.env = {
        **rotator_cli.env,
        "AZURE_CA_BUNDLE": str(keyvault.ca_path),
        "IDENTITY_ENDPOINT": keyvault.identity_endpoint,
        "IDENTITY_HEADER": keyvault.identity_header,
        "ROTATOR_AZURE_CREDENTIAL": "managed",
        "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE": "false",
    }
    return rotator_cli


def secret_client(keyvault: Any) -> Any:
    """A real SecretClient against the emulator."""
    from azure.keyvault.secrets import SecretClient

    return SecretClient(
        vault_url=keyvault.vault_url,
        credential=keyvault.credential(),
        verify_challenge_resource=False,
        connection_verify=str(keyvault.ca_path),
    )
