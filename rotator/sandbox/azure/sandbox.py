"""The Azure part of ``rotator sandbox``: the Key Vault emulator on loopback, seeded.

:class:`AzureSandbox` starts :class:`rotator.sandbox.azure.KeyVaultEmulator`
in this process (HTTPS with a CA made at start-up, plus a managed-identity
token endpoint) and seeds:

- secret ``demo-api-token`` (a random value), and ``demo-shared-token`` (the
  replica of the AWS demo token);
- API Management service ``demo-apim`` (resource group ``rg-demo``) with
  subscription ``demo-partner``, whose primary key is stored in secret
  ``demo-apim-key``: the first rotation regenerates the secondary, the next
  the primary, and so on. The emulator's gateway (``/apim/demo-apim/echo``)
  accepts the subscription's current keys, so the demo's ``http`` verifier
  proves each new key before it is promoted.

Deletes and recoveries complete at once here (the emulator's default is the
few seconds Key Vault takes): the demo runs on the wall clock, and every
promote deletes its companion secret, so each rotation would otherwise wait
on the store's polls. The tests run the realistic timing on a moved clock.

The environment it returns makes the adapters log in with the real
``ManagedIdentityCredential`` against the emulator's token endpoint (for Key
Vault and for Azure Resource Manager alike) and trust its CA. The vault URL,
the management URL (the same emulator), the Azure subscription id, the
gateway URL and the CA file reach the demo policy as ``${DEMO_AZURE_...}``
and ``${DEMO_APIM_GATEWAY_URL}``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from rotator.sandbox.azure import KeyVaultEmulator

SECRET = "demo-api-token"  # noqa: S105 (a secret's name)
SHARED_SECRET = "demo-shared-token"  # noqa: S105 (a secret's name)
APIM_SECRET = "demo-apim-key"  # noqa: S105 (a secret's name)
#: Where the demo's API Management subscription lives (the packaged demo.yaml names them too).
AZURE_SUBSCRIPTION = "5d1c0a7e-3b2f-4e69-8c1d-0f9e8d7c6b5a"
RESOURCE_GROUP = "rg-demo"
APIM_SERVICE = "demo-apim"
APIM_SID = "demo-partner"


class AzureSandbox:
    """Starts, seeds and stops a Key Vault emulator (with its API Management) for the demo."""

    def __init__(self) -> None:
        self._vault: KeyVaultEmulator | None = None

    def start(self, workdir: Path) -> dict[str, str]:
        """Start the emulator; return the environment that points the adapters at it."""
        # No delete/recover delay: see the module docstring.
        self._vault = KeyVaultEmulator(delete_delay=0, recover_delay=0)
        self._vault.start()
        return {
            "AZURE_CA_BUNDLE": str(self._vault.ca_path),
            # For what a shell runs beside rotator (the Azure CLI, requests-based scripts).
            "REQUESTS_CA_BUNDLE": str(self._vault.ca_path),
            "IDENTITY_ENDPOINT": self._vault.identity_endpoint,
            "IDENTITY_HEADER": self._vault.identity_header,
            "ROTATOR_AZURE_CREDENTIAL": "managed",
            # The emulator answers on 127.0.0.1, not under vault.azure.net.
            "ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE": "false",
            "AZURE_KEYVAULT_URL": self._vault.vault_url,
        }

    def seed(self, env: dict[str, str]) -> None:
        """Create the demo secrets and the API Management subscription."""
        from azure.keyvault.secrets import SecretClient

        assert self._vault is not None
        client = SecretClient(
            vault_url=self._vault.vault_url,
            credential=self._vault.credential(),
            verify_challenge_resource=False,
            connection_verify=str(self._vault.ca_path),
        )
        client.set_secret(SECRET, secrets.token_urlsafe(24))
        # The replica of the AWS demo token (the packaged demo.yaml: demo/shared-token).
        client.set_secret(SHARED_SECRET, secrets.token_urlsafe(24))
        # Consumers start on the primary key; rotations alternate from there.
        primary, _secondary = self._vault.apim.add_subscription(
            APIM_SERVICE,
            APIM_SID,
            azure_subscription=AZURE_SUBSCRIPTION,
            resource_group=RESOURCE_GROUP,
            display_name="Demo partner",
            scope="/products/starter",
        )
        client.set_secret(APIM_SECRET, primary)

    def policy_substitutions(self) -> dict[str, str]:
        """Return the emulator's addresses and ids for the demo policy."""
        assert self._vault is not None
        return {
            "DEMO_AZURE_VAULT_URL": self._vault.vault_url,
            "DEMO_AZURE_MANAGEMENT_URL": self._vault.url,
            "DEMO_AZURE_SUBSCRIPTION_ID": AZURE_SUBSCRIPTION,
            "DEMO_AZURE_CA_FILE": str(self._vault.ca_path),
            "DEMO_APIM_GATEWAY_URL": self._vault.apim.gateway_url(APIM_SERVICE),
        }

    def stop(self) -> None:
        """Stop the emulator."""
        if self._vault is not None:
            self._vault.stop()
            self._vault = None
