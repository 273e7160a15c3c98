"""How the Key Vault emulator speaks Azure: errors in Key Vault's envelope, time, ids, JSON."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

JSONDict = dict[str, Any]

# The Key Vault data-plane resource: the challenge's ``resource`` and the token audience.
VAULT_RESOURCE = "https://vault.azure.net"
# Key Vault's first-party application id, the audience of AAD v2 tokens for the vault.
VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
AUTHORITY_HOST = "https://login.microsoftonline.com"

# Observed texts of the real service (see the package docstring for where each comes from).
_NOT_FOUND_HINT = (
    "If you recently deleted this secret you may be able to recover it using the correct "
    "recovery command. For help resolving this issue, please see "
    "https://go.microsoft.com/fwlink/?linkid=2125182"
)


def epoch(moment: datetime) -> int:
    """An instant as integer Unix seconds (Key Vault's ``IntDate``)."""
    return int(moment.timestamp())


def new_version_id() -> str:
    """A Key Vault object version: 32 lower-case hex digits."""
    return secrets.token_hex(16)


def error_code(status: int) -> str:
    """An error code for a status the service has none for: its reason phrase, CamelCased."""
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


def dumps(body: Any) -> bytes:
    """Compact JSON, as Key Vault writes it."""
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(eq=False)
class KeyVaultError(Exception):
    """A failed request, rendered as ``{"error":{"code","message","innererror"?}}``."""

    status: int
    code: str
    message: str
    inner_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")

    def body(self) -> JSONDict:
        """The error envelope Key Vault sends."""
        error: JSONDict = {"code": self.code, "message": self.message}
        if self.inner_code is not None:
            error["innererror"] = {"code": self.inner_code}
        return {"error": error}


def secret_not_found(name_id: str) -> KeyVaultError:
    """404 for a secret (``name``) or version (``name/version``) that is not in the vault."""
    return KeyVaultError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {name_id} was not found in this key vault. {_NOT_FOUND_HINT}",
    )


def deleted_secret_not_found(name: str) -> KeyVaultError:
    """404 for a name that is not among the deleted secrets."""
    return KeyVaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def secret_disabled() -> KeyVaultError:
    """403 for reading the value of a disabled version."""
    return KeyVaultError(
        403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"
    )


def deleted_but_recoverable(name: str) -> KeyVaultError:
    """409 for setting a name that is deleted but still recoverable."""
    return KeyVaultError(
        409,
        "Conflict",
        f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
        "reused; in this state, the secret can only be recovered or purged.",
        "ObjectIsDeletedButRecoverable",
    )


def being_deleted() -> KeyVaultError:
    """409 for a name whose delete Key Vault has accepted but not finished."""
    # Code, inner code and text as recorded from the real service for a purge sent too soon
    # after a delete (azure-sdk-for-js recordings; "Key is ..." for keys, "Secret is ..." for
    # secrets). That a set or a recover gets the same answer is an assumption.
    return KeyVaultError(
        409, "Conflict", "Secret is currently being deleted.", "ObjectIsBeingDeleted"
    )


def being_recovered() -> KeyVaultError:
    """409 for a name whose recovery Key Vault has accepted but not finished."""
    # The inner code is the real service's (the .NET SDK's changelog names it for a write right
    # after a restore); the text, and that a set, purge or second recover get it, are assumptions
    # made by analogy with ObjectIsBeingDeleted.
    return KeyVaultError(
        409, "Conflict", "Secret is currently being recovered.", "ObjectIsBeingRecovered"
    )


def purge_protected() -> KeyVaultError:
    """403 for a purge in a vault with purge protection."""
    # The real text (seen in Terraform and az output) goes on with " Vault: NAME;location=REGION";
    # the emulator has neither. Whether the real answer has an innererror was not seen: none here.
    return KeyVaultError(
        403,
        "Forbidden",
        'Operation "purge" is not allowed because purge protection is enabled for this vault. '
        "Key Vault service will automatically purge it after the retention period has passed.",
    )


def bad_parameter(message: str) -> KeyVaultError:
    """400 ``BadParameter``, Key Vault's code for malformed input."""
    return KeyVaultError(400, "BadParameter", message)


def unauthorized(message: str) -> KeyVaultError:
    """401 ``Unauthorized``; the HTTP layer adds the ``WWW-Authenticate`` challenge."""
    return KeyVaultError(401, "Unauthorized", message)
