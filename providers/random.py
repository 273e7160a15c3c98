"""The ``random`` issuer: a fresh random string from :mod:`secrets`.

A random value exists only in the store, so there is nothing to revoke at an
issuer: the old version is retired in the store when its grace ends.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from rotator.adapters import Credential, Issuer, ProviderConfig, SecretValue
from rotator.errors import VerificationError

ALPHABETS: dict[str, str] = {
    "alphanumeric": string.ascii_letters + string.digits,
    "ascii-printable": "".join(chr(c) for c in range(33, 127)),
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
}


class RandomConfig(ProviderConfig):
    """Policy fields of the ``random`` issuer."""

    length: int = Field(default=32, ge=16, le=4096)
    alphabet: Literal["alphanumeric", "ascii-printable", "hex", "base64url"] = "alphanumeric"
    exclude: str = ""

    @model_validator(mode="after")
    def _enough_characters(self) -> RandomConfig:
        left = set(ALPHABETS[self.alphabet]) - set(self.exclude)
        if len(left) < 10:
            raise ValueError(
                f"exclude leaves {len(left)} characters of {self.alphabet}; at least 10 are needed"
            )
        return self

    def characters(self) -> str:
        """Return the alphabet less the excluded characters, in a stable order."""
        return "".join(c for c in ALPHABETS[self.alphabet] if c not in self.exclude)


class RandomIssuer(Issuer[RandomConfig]):
    """Mints a random string of the configured length and alphabet."""

    kind = "random"
    Config = RandomConfig
    example: ClassVar[Mapping[str, object]] = {"length": 32, "alphabet": "alphanumeric"}
    docs = "docs/policies.md#issuers-issuerkind"

    def mint(self, rotation_id: str) -> Credential:
        """Draw ``length`` characters from the alphabet with a CSPRNG."""
        chars = self.config.characters()
        value = "".join(secrets.choice(chars) for _ in range(self.config.length))
        return Credential(SecretValue(value))

    def verify(self, credential: Credential) -> None:
        """Check the value has the configured length and only allowed characters."""
        value = credential.value.reveal()
        if not isinstance(value, str):
            raise VerificationError("random value is not a string", provider=self.kind)
        if len(value) != self.config.length:
            raise VerificationError(
                f"random value has {len(value)} characters, expected {self.config.length}",
                provider=self.kind,
            )
        if set(value) - set(self.config.characters()):
            raise VerificationError(
                "random value has characters outside the alphabet", provider=self.kind
            )
