"""Issuer ``azure-apim-subscription``: placeholder, being written."""

from __future__ import annotations

from rotator.errors import PermanentError
from rotator.interfaces import Credential, Issuer, ProviderConfig


class _Placeholder(ProviderConfig):
    """Fields not written yet."""


class ApimSubscriptionIssuer(Issuer[_Placeholder]):
    """Placeholder."""

    kind = "azure-apim-subscription"
    Config = _Placeholder

    def mint(self, rotation_id: str) -> Credential:
        """Not written yet."""
        raise PermanentError("not written yet")
