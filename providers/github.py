"""Target ``github-actions``: placeholder, being written."""

from __future__ import annotations

from rotator.errors import PermanentError
from rotator.interfaces import ProviderConfig, Target
from rotator.secret import SecretValue


class _Placeholder(ProviderConfig):
    """Fields not written yet."""


class GitHubActionsTarget(Target[_Placeholder]):
    """Placeholder."""

    kind = "github-actions"
    Config = _Placeholder

    def describe(self) -> str:
        """Return the kind."""
        return self.kind

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Not written yet."""
        raise PermanentError("not written yet")

    def restore(
        self, rotation_id: str, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Not written yet."""
