"""The ``manual`` issuer: a key only a person can change (a partner's dashboard, a hardware token).

rotator cannot mint such a credential. When it falls due, the owner is
reminded (alert ``rotation-due``), and ``rotator rotate NAME
--value-from-stdin`` takes the new value the person obtained; from there it
goes through store, propagation, verification and grace like any other. At
the grace deadline rotator cannot revoke the old key either: it records the
end of the grace, and the instructions say where to revoke it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from rotator.adapters import Credential, Issuer, ProviderConfig
from rotator.errors import PermanentError


class ManualConfig(ProviderConfig):
    """Policy fields of the ``manual`` issuer."""

    #: Where and how a person changes the key (a URL, a runbook); put in reminders.
    instructions: str | None = Field(default=None, min_length=1, max_length=2000)


class ManualIssuer(Issuer[ManualConfig]):
    """Takes a value supplied by a person; mints nothing, revokes nothing."""

    kind = "manual"
    Config = ManualConfig
    example: ClassVar[Mapping[str, object]] = {
        "instructions": "https://partner.example.com/settings/api-keys (ask the owner for access)"
    }
    docs = "docs/policies.md#issuers-issuerkind"
    accepts_value = True
    reminder_only = True

    def mint(self, rotation_id: str) -> Credential:
        """Refuse: only a person can make this credential; say how to hand it over."""
        raise PermanentError(
            f"{self.secret} is rotated by hand: get the new value "
            f"({self.config.instructions or 'see the policy owner'}) and run "
            f"`rotator rotate {self.secret} --value-from-stdin`"
        )
