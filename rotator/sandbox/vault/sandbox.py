"""The Vault part of ``rotator sandbox``: the Vault emulator on loopback, seeded.

:class:`VaultSandbox` starts :class:`rotator.sandbox.vault.VaultEmulator`
in this process (a server thread on a free 127.0.0.1 port) and seeds it with
what the demo policies rotate:

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
from pathlib import Path
from typing import Any

from rotator.sandbox.vault import VaultEmulator

APP_PATH = "demo/app"
SHARED_PATH = "demo/shared-token"
APPROLE_PATH = "demo/approle"
ROLE = "demo-app"
#: The least privilege a demo-app login gets: read its own secrets.
APP_POLICY = 'path "secret/data/demo/*" { capabilities = ["read"] }\n'


class VaultSandbox:
    """Starts, seeds and stops a Vault emulator for the demo."""

    def __init__(self) -> None:
        self._vault: VaultEmulator | None = None

    def start(self, workdir: Path) -> dict[str, str]:
        """Start the emulator; return ``VAULT_ADDR`` and ``VAULT_TOKEN`` pointing at it."""
        self._vault = VaultEmulator()
        self._vault.start()
        return {"VAULT_ADDR": self._vault.url, "VAULT_TOKEN": self._vault.root_token}

    def seed(self, env: dict[str, str]) -> None:
        """Write the demo KV secret, the AppRole role and its first secret-id."""
        import hvac

        client: Any = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
        kv = client.secrets.kv.v2
        kv.create_or_update_secret(
            path=APP_PATH, secret={"username": "app", "password": secrets.token_urlsafe(18)}
        )
        # The replica of the AWS demo token (schedules/demo.yaml: demo/shared-token).
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
        """Stop the emulator."""
        if self._vault is not None:
            self._vault.stop()
            self._vault = None
