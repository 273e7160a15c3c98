"""The Azure part of ``rotator sandbox``: the Key Vault emulator on loopback, seeded.

:class:`AzureSandbox` starts :class:`providers.azure.emulator.KeyVaultEmulator`
in this process (HTTPS with a CA made at start-up, plus a managed-identity
token endpoint) and seeds secret ``demo-api-token``. The environment it
returns makes the adapters log in with the real ``ManagedIdentityCredential``
against the emulator's token endpoint and trust its CA; the vault URL reaches
the demo policy as ``${DEMO_AZURE_VAULT_URL}``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from providers.azure.emulator import KeyVaultEmulator

SECRET = "demo-api-token"  # noqa: S105 (a secret's name)
SHARED_SECRET = "demo-shared-token"  # noqa: S105 (a secret's name)


class AzureSandbox:
    """Starts, seeds and stops a Key Vault emulator for the demo."""

    def __init__(self) -> None:
        self._vault: KeyVaultEmulator | None = None

    def start(self, workdir: Path) -> dict[str, str]:
        """Start the emulator; return the environment that points the adapters at it."""
        self._vault = KeyVaultEmulator()
        self._vault.start()
        return {
            "AZURE_CA_BUNDLE": str(self._vault.ca_path),
            "IDENTITY_ENDPOINT": self._vault.identity_endpoint,
            "IDENTITY_HEADER": self._vault.identity_header,
            "ROTATOR_AZURE_CREDENTIAL": "managed",
            # The emulator answers on 127.0.0.1, not under vault.azure.net.
            "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE": "false",
            "AZURE_KEYVAULT_URL": self._vault.vault_url,
        }

    def seed(self, env: dict[str, str]) -> None:
        """Create the demo secret with a first random value."""
        from azure.keyvault.secrets import SecretClient

        assert self._vault is not None
        client = SecretClient(
            vault_url=self._vault.vault_url,
            credential=self._vault.credential(),
            verify_challenge_resource=False,
            connection_verify=str(self._vault.ca_path),
        )
        client.set_secret(SECRET, secrets.token_urlsafe(24))
        # The replica of the AWS demo token (schedules/demo.yaml: demo/shared-token).
        client.set_secret(SHARED_SECRET, secrets.token_urlsafe(24))

    def policy_substitutions(self) -> dict[str, str]:
        """Return the emulator's vault URL for the demo policy."""
        assert self._vault is not None
        return {"DEMO_AZURE_VAULT_URL": self._vault.vault_url}

    def stop(self) -> None:
        """Stop the emulator."""
        if self._vault is not None:
            self._vault.stop()
            self._vault = None
