"""The exception tree of rotator.

Every error rotator raises on purpose derives from :class:`RotatorError`.
Provider adapters translate their SDK's exceptions into this tree at their
boundary (see ``providers.aws.errors``); nothing above an adapter ever sees a
``botocore`` or ``hvac`` exception.

The tree, with the few classes other modules add to it, is drawn once, in
docs/design.md ("The exception tree"); tests/test_design.py checks that the
drawing and these classes agree.

``retryable`` tells the engine whether a step may be tried again. Messages
never contain secret values: adapters build them from identifiers only.
"""

from __future__ import annotations

from dataclasses import dataclass

from rotator.output import redact


class RotatorError(Exception):
    """Root of every error rotator raises on purpose."""

    retryable: bool = False

    def __init__(self, *args: object) -> None:
        # The last net under the adapters' doors: an error's text reaches the
        # journal, the audit trail, alerts and summaries, so a registered
        # value (or rotator's own credential) that slipped into it is masked.
        super().__init__(*(redact.scrub(a) if isinstance(a, str) else a for a in args))


class ConfigError(RotatorError):
    """Invalid configuration or usage; the command exits 2 and changes nothing."""


@dataclass(frozen=True)
class Problem:
    """One located policy problem: ``FILE:LINE:COL: field.path: reason``."""

    file: str
    line: int
    column: int
    path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.reason}"


class PolicyError(ConfigError):
    """One or more policy problems, all reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


class JournalError(RotatorError):
    """The journal cannot be opened, migrated, read or written."""


class JournalUnavailable(JournalError):
    """The database did not answer (restarting, unreachable); trying again later may work."""

    retryable = True


class JournalTampered(JournalError):
    """A journal row or the audit trail's head does not match what rotator wrote.

    Permanent: the row was edited, inserted or deleted outside rotator (or
    the key file is not the one that sealed it). Nothing is done on the
    strength of it; ``rotator audit verify`` names what changed.
    """

    retryable = False

    def __init__(self, message: str, *, secret: str | None = None) -> None:
        super().__init__(message)
        self.secret = secret


class LeaseLost(RotatorError):
    """This run no longer holds the secret's lease; another run owns it now.

    Not retryable: the step was not recorded, and the run that holds the
    lease finishes the rotation from its last recorded step.
    """


class Interrupted(RotatorError):
    """The service is stopping; the rotation stays at its last recorded step.

    Retryable: the next start resumes it. Never a reason to roll back.
    """

    retryable = True


class ProviderError(RotatorError):
    """An outside system refused a request or failed to answer it.

    ``provider`` names the adapter and ``operation`` the API call, so that a
    reader knows where to look without the message carrying any value.
    """

    def __init__(self, message: str, *, provider: str = "", operation: str = "") -> None:
        self.provider = provider
        self.operation = operation
        prefix = ":".join(p for p in (provider, operation) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class TransientError(ProviderError):
    """A failure that may pass: throttling, a 5xx, a timeout, a lost connection."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        operation: str = "",
        delay: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, operation=operation)
        self.delay = delay


class PermanentError(ProviderError):
    """A failure that retrying will not fix."""


class NotFoundError(PermanentError):
    """The secret, user, key or version named does not exist."""


class PermissionDeniedError(PermanentError):
    """The identity rotator runs as may not do this."""


class ConflictError(PermanentError):
    """The outside system is not in the state rotator expected."""


class LimitExceededError(PermanentError):
    """An issuer's own limit (two IAM keys per user, for instance) is reached."""


class VerificationError(PermanentError):
    """The new credential was tried and does not work."""


class StillInUseError(RotatorError):
    """The old credential was used after its successor became current."""
