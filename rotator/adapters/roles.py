"""The roles an outside system can play: the abstract classes every adapter implements.

Every adapter implements one role as a subclass of :class:`Store`,
:class:`Issuer`, :class:`Target`, :class:`Verifier` or :class:`Notifier`. An
adapter declares its policy fields as a pydantic model in ``Config``; the
policy loader validates a policy's ``store:``, ``issuer:``, ``targets:`` and
``verify:`` blocks against it before any provider is called. Adapters are
found through entry points (:mod:`rotator.adapters.discovery`); every store
is also usable as a target, through :mod:`rotator.adapters.replica`. Adapter modules
import their SDK lazily (inside methods), so that loading the registry costs
nothing.

Contract for every method: it is idempotent (calling it twice has the effect
of calling it once), it raises only :class:`rotator.errors.RotatorError`
subclasses, and no message it raises or logs contains a secret value. Each
method's ``Raises:`` section says which and when; the words mean the same in
every role:

- ``TransientError``: trying again later may help (throttling, a 5xx, a
  timeout, a refused connection); the engine retries with backoff.
- ``PermissionDeniedError``: the identity rotator runs as may not do this.
- ``NotFoundError``: what the adapter is configured on (the secret, the
  user, the project, the mount) does not exist. An absent *version* or
  *credential* is not an error where the method says "no-op if absent".
- ``PermanentError``: any other refusal; retrying will not help. A subclass
  (``ConflictError``, ``LimitExceededError``, ``VerificationError``) names
  the cause where the method lists it.
- ``ConfigError``: the environment the adapter reads while building its
  client is malformed (``ROTATOR_RATE_LIMITS``, an AWS region); possible
  wherever the outside system is called, and never retried.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, ClassVar, Generic

from rotator.adapters.secret import SecretValue
from rotator.adapters.values import (
    OUTCOMES,
    Alert,
    AlertEvent,
    ConfigT,
    Credential,
    NothingToCheck,
    Permission,
    ProviderConfig,
    RequestObserver,
    Runtime,
    Setting,
    Severity,
    Version,
)

# The values live in rotator.adapters.values; adapters and modules written
# before the split import them from here, so they stay importable here.
__all__ = [
    "OUTCOMES",
    "Adapter",
    "Alert",
    "AlertEvent",
    "ConfigT",
    "Credential",
    "Issuer",
    "Notifier",
    "Permission",
    "ProviderConfig",
    "RequestObserver",
    "Runtime",
    "Setting",
    "Severity",
    "Store",
    "Target",
    "Verifier",
    "Version",
]


class Adapter(ABC, Generic[ConfigT]):
    """What every adapter holds: its validated policy fields, the runtime, the secret's name."""

    Config: ClassVar[type[ProviderConfig]]
    #: Distributions the adapter imports lazily, and the extra that installs them.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    #: The rate limits its calls are paced under, by the name ``ROTATOR_RATE_LIMITS``
    #: sets them with, and their default calls per second: ``rates(QUOTAS)`` of
    #: the ``Quota`` values the provider declares (see
    #: :mod:`rotator.adapters.ratelimit`). rotator refuses to start when that
    #: variable names a quota no installed adapter declares.
    quotas: ClassVar[Mapping[str, float]] = {}
    #: The environment variables it reads itself (not its SDK's), each checked
    #: when rotator starts, before any provider is called.
    settings: ClassVar[tuple[Setting, ...]] = ()
    #: The fields of a starter policy for this adapter (``rotator init``): each
    #: one a value that validates, to be changed, and never a credential (an
    #: adapter reads those from environment variables, which the example names).
    example: ClassVar[Mapping[str, object]] = {}
    #: Where its policy fields are explained: a path in rotator's repository
    #: (``docs/providers/vault.md``) or a URL; ``rotator init`` names it above
    #: the adapter's block. Empty: nowhere to point to.
    docs: ClassVar[str] = ""

    def __init__(self, config: ConfigT, runtime: Runtime, secret: str) -> None:
        self.config = config
        self.runtime = runtime
        self.secret = secret

    def permissions(self) -> list[Permission]:
        """Return the least permissions this adapter needs for every step it takes.

        Nothing is changed, and nothing is called but what names a resource
        (AWS asks STS, once, for the account id an ARN needs). The default,
        an empty list, means the adapter needs no permission at an outside
        system (a random value) or cannot say.

        Raises:
            ConfigError: a resource cannot be named without what the policy
                and the environment lack (an AWS region, an account id STS
                would not tell).
        """
        return []


class Store(Adapter[ConfigT]):
    """Where the live credential is kept, versioned.

    A store keeps at least three kinds of version: *current* (what consumers
    read), *pending* (written under the rotation id, invisible to consumers
    until promoted) and *previous* (the old credential during its grace).
    """

    provider: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short non-secret address, such as ``aws-secretsmanager:prod/db``.

        Raises nothing: built from the policy fields, without calling the store.
        """

    @abstractmethod
    def current(self) -> Version | None:
        """Return the current version, or ``None`` if the secret has no value yet.

        Raises:
            NotFoundError: the secret itself does not exist (a store whose
                secrets exist only with a value returns ``None`` instead).
            PermissionDeniedError: rotator may not read the secret.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal, or a value rotator cannot
                read (binary, or not the JSON object a ``field`` needs).
        """

    @abstractmethod
    def last_changed(self) -> datetime | None:
        """Return when the current value last changed, as the store records it.

        Raises:
            NotFoundError: the secret itself does not exist.
            PermissionDeniedError: rotator may not read the secret's metadata.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        """Write ``value`` as the pending version keyed by ``rotation_id``; return its id.

        Consumers must not see it. Calling again with the same id and value
        changes nothing.

        Raises:
            ConflictError: a version keyed by ``rotation_id`` holds another value.
            NotFoundError: the secret (or what holds it) does not exist.
            PermissionDeniedError: rotator may not write the secret.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal (a rotation id the store
                cannot key a version with, a current value ``field`` cannot
                be merged into).
        """

    @abstractmethod
    def pending(self, rotation_id: str) -> SecretValue | None:
        """Return the value written by ``put_pending`` for this rotation, if any.

        No such version (never written, or discarded) is ``None``, not an error.

        Raises:
            NotFoundError: the secret itself does not exist.
            PermissionDeniedError: rotator may not read the secret.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal, or a value rotator cannot read.
        """

    @abstractmethod
    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        """Make the rotation's pending version current; return the id it replaced.

        ``expires_on`` is when the engine will have replaced this credential
        at the latest (its next due time plus the grace); a store that can
        stamp an expiry on a version (Azure Key Vault) uses it, others ignore
        it. Replaying after success changes nothing.

        Raises:
            ConflictError: no pending version exists for the rotation (and it
                is not current already).
            NotFoundError: the secret itself does not exist.
            PermissionDeniedError: rotator may not move the secret's versions.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def discard(self, rotation_id: str) -> None:
        """Remove the rotation's pending version (roll back); no-op if absent.

        Raises:
            NotFoundError: the secret itself does not exist.
            PermissionDeniedError: rotator may not remove the version.
            TransientError: the store did not answer (or has not finished
                removing it); retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def retire(self, version_id: str) -> None:
        """Stop labelling an old version as usable (no label on a dead credential).

        No-op if the version carries no such label (or is gone).

        Raises:
            NotFoundError: the secret itself does not exist.
            PermissionDeniedError: rotator may not relabel the version.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal.
        """

    def quota_scope(self) -> str:
        """Return where this store's calls are counted against its provider's quota.

        An AWS Region (Secrets Manager's write quota is per account and
        Region), a vault's address: stores of one provider but different
        scopes rotate in parallel, each at its own quota's pace (``run``'s
        per-provider concurrency applies per scope). The default, ``""``:
        one scope for the whole provider. Built from the policy fields and
        the environment, without calling the store.

        Raises nothing: a scope that cannot be told is ``""``.
        """
        return ""

    def replaced_version(self, rotation_id: str) -> str | None:
        """Return the id of the version this rotation's promote replaced, if the store can tell.

        What a replica of this store retires at revoke (the engine keeps the
        store's own in the journal). ``None`` when the promote replaced
        nothing, no longer tells (a later rotation promoted, or the version
        was retired), or the store does not record it (the default).

        Raises:
            NotFoundError: the secret itself does not exist.
            PermissionDeniedError: rotator may not read the store's metadata.
            TransientError: the store did not answer; retry later.
        """
        return None

    def check(self) -> str:
        """Prove, changing nothing, that rotator may write this store; say what was checked.

        Stores whose provider can answer without a write (Vault's
        capabilities of a token on a path) override this; the default says
        it cannot be told (:class:`NothingToCheck`). An override that tried
        and could not tell returns :class:`Unchecked` with the reason.

        Raises:
            PermissionDeniedError: it can be told, and the answer is no.
            NotFoundError: the secret (or what holds it) does not exist.
            TransientError: the store did not answer; retry later.
            PermanentError: any other refusal.
        """
        return NothingToCheck("cannot be checked without writing; the first rotation will tell")


class Issuer(Adapter[ConfigT]):
    """Mints and revokes the real credential at the system that honours it."""

    kind: ClassVar[str]
    #: True if ``last_used`` returns real data and ``when_old_still_used`` applies.
    reports_last_use: ClassVar[bool] = False
    #: True if ``revoke`` only disables and ``delete`` removes for good.
    two_stage_revoke: ClassVar[bool] = False
    #: True if a person may supply the new value (``rotate --value-from-stdin``):
    #: the engine then uses it instead of calling ``mint``.
    accepts_value: ClassVar[bool] = False
    #: True if the issuer cannot mint at all (a key only a person can change):
    #: when due, the owner is reminded instead of a rotation being started.
    reminder_only: ClassVar[bool] = False

    def ref_of(self, value: SecretValue) -> str | None:
        """Return the identifier of the credential held in ``value`` (None if none).

        Most issuers read it from the value; one that must ask its system
        (API Gateway) may raise.

        Raises:
            NotFoundError: what the credential belongs to does not exist.
            PermissionDeniedError: rotator may not look the credential up.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal.
        """
        return None

    def targets(self) -> list[Target[Any]]:
        """Return the targets through which a minted credential becomes live, before the policy's.

        An issuer whose credential is a value until the system is told of it
        (a database password) mints the value only; the engine writes these
        targets first, once the store holds the value as pending, so a crash
        never leaves the system holding a credential no store version holds,
        and restores them on rollback as it restores every target. The
        default, none: the credential is live when minted.

        Raises nothing: built from the policy fields, without calling anything.
        """
        return []

    def inventory(self) -> list[str]:
        """Return the refs that exist at the issuer now, for this credential's slot.

        The engine records them before minting, so that after a crash
        ``recover`` can tell what the interrupted mint created.

        Raises:
            NotFoundError: what the credentials belong to (a user, a role,
                a subscription) does not exist.
            PermissionDeniedError: rotator may not list them.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal.
        """
        return []

    def prepare(self, keep: Collection[str]) -> list[str]:
        """Make room to mint one more credential; return the refs deleted.

        ``keep`` holds refs that must survive (the current credential, any
        still in grace).

        Raises:
            LimitExceededError: room cannot be made without touching a
                credential in ``keep`` or one rotator does not manage.
            NotFoundError: what the credentials belong to does not exist.
            PermissionDeniedError: rotator may not list or delete them.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal.
        """
        return []

    def blocks(self, keep: Collection[str]) -> str | None:
        """Say why :meth:`prepare` could not make room now, changing nothing (None: it could).

        Asked by ``rotator check``, so that a rotation bound to fail at its
        first step is found before it runs. The default, None, means the
        issuer has no slot limit, or cannot tell without writing.

        Raises:
            NotFoundError: what the credentials belong to does not exist.
            PermissionDeniedError: rotator may not list them.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal.
        """
        return None

    @abstractmethod
    def mint(self, rotation_id: str) -> Credential:
        """Create a new credential, tagged or named with ``rotation_id`` where possible.

        Raises:
            LimitExceededError: the issuer's own limit is reached (two IAM
                access keys per user).
            NotFoundError: what the credential is minted for does not exist.
            PermissionDeniedError: rotator may not create it.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal (an issuer that cannot mint
                at all, such as ``manual``, raises it always).
        """

    def recover(
        self, rotation_id: str, *, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Find what an interrupted mint left behind, adopt it or delete it.

        ``known`` holds the refs that existed before the mint began. If
        ``pending`` (the store's pending value for this rotation) holds a
        credential that exists, it is adopted and returned. An issuer whose
        values can be read back (an API Gateway key) may adopt what it finds
        even when ``pending`` is None; the engine then writes it to the
        store. Every other credential minted for this rotation is deleted, so
        nothing is orphaned. Returns ``None`` when nothing is left to adopt.
        (Keyword-only: ``known`` and a rotation id are both strings to a
        careless caller, since a ``str`` is a ``Collection[str]``.)

        Raises:
            NotFoundError: what the credentials belong to does not exist.
            PermissionDeniedError: rotator may not list or delete them.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal (``ConflictError`` where
                ``known`` names credentials of something else).
        """
        if pending is None:
            return None
        return Credential(pending, self.ref_of(pending))

    def verify(self, credential: Credential) -> None:
        """Prove the new credential works at the issuer; the default proves nothing.

        Raises:
            VerificationError: the credential is refused, disabled, or not
                the one minted.
            NotFoundError: what the credential belongs to does not exist.
            PermissionDeniedError: rotator may not look the credential up.
            TransientError: the check itself could not run; retry later.
            PermanentError: any other refusal.
        """

    def last_used(self, ref: str) -> datetime | None:
        """Return when the credential was last used, if the issuer reports it.

        Raises:
            NotFoundError: the credential, or what it belongs to, does not
                exist (a deleted credential's last use cannot be told).
            PermissionDeniedError: rotator may not read its last use.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal.
        """
        return None

    def revoke(self, ref: str) -> None:
        """Stop the credential from working (deactivate, disable, destroy); no-op if gone.

        Raises:
            NotFoundError: what the credential belongs to (not the
                credential itself) does not exist.
            PermissionDeniedError: rotator may not revoke it.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal (``ConflictError`` where
                ``ref`` names a credential of something else).
        """

    def delete(self, ref: str) -> None:
        """Remove a revoked credential for good; no-op if already gone.

        Raises:
            PermissionDeniedError: rotator may not delete it.
            TransientError: the issuer did not answer; retry later.
            PermanentError: any other refusal.
        """


class Target(Adapter[ConfigT]):
    """Somewhere consumers read the credential: written before promote, restored on rollback.

    Order: the engine writes every target after the new value is stored as
    pending and before it is verified and promoted; if anything fails before
    promote, it restores every target, last first. No message carries the
    value.
    """

    kind: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short non-secret address, such as ``file:/run/secrets/app.env``.

        Raises nothing: built from the policy fields, without calling the target.
        """

    @abstractmethod
    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Make the target carry ``value`` for consumers; idempotent and atomic.

        Writing the same rotation's value twice changes nothing a consumer
        can see. A consumer never sees a partial or empty value.

        Raises:
            NotFoundError: where the value goes (a project, a namespace, a
                directory, a hook's command) does not exist.
            PermissionDeniedError: rotator may not write there.
            TransientError: the target did not answer (a timeout, a 5xx, a
                refused connection); retry later.
            PermanentError: any other refusal; it will not work as
                configured (``ConflictError`` where someone else changed
                what rotator expected).
        """

    @abstractmethod
    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Undo this rotation's ``write``: put ``previous`` back, or remove what was added.

        ``written`` is the value ``write`` was given (None if lost in a
        crash); ``previous`` is the value consumers had before (None if there
        was none: then what ``write`` added is removed). Safe to call when
        ``write`` never ran, and twice. Keyword-only: the two values have one
        type, and swapping them would put the new credential back.

        Raises:
            NotFoundError: where the value goes does not exist.
            PermissionDeniedError: rotator may not write or remove there.
            TransientError: the target did not answer; retry later.
            PermanentError: any other refusal.
        """

    def retire(self, rotation_id: str) -> None:
        """Stop the value this rotation's ``write`` replaced from being readable here.

        Called at revoke, when the old credential's grace has ended, as the
        store's old version is retired. Idempotent; a target with no older
        value to retire, or no way to tell which it is, does nothing (the
        default).

        Raises:
            NotFoundError: where the value goes does not exist.
            PermissionDeniedError: rotator may not retire it.
            TransientError: the target did not answer; the revoke is tried again.
            PermanentError: any other refusal.
        """

    def check(self) -> str:
        """Prove, changing nothing, that the target is reachable and writable in principle.

        Returns what was checked, in a few words (:class:`NothingToCheck`
        where nothing can be checked without writing, :class:`Unchecked`
        where it tried and could not tell).

        Raises:
            NotFoundError: where the value goes does not exist.
            PermissionDeniedError: rotator may not write there.
            TransientError: the target did not answer; retry later.
            PermanentError: any other refusal.
        """
        return NothingToCheck("nothing to check")


class Verifier(Adapter[ConfigT]):
    """Proves a credential works where it is used (a consumer's health check, a login).

    No message carries the value.
    """

    kind: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short non-secret description, such as ``http:https://api/health``.

        Raises nothing: built from the policy fields, without calling anything.
        """

    @abstractmethod
    def verify(self, credential: Credential) -> None:
        """Prove ``credential`` works; say why if it does not.

        Raises:
            VerificationError: the credential was tried and refused.
            TransientError: the check itself could not run (a timeout, a
                5xx, a refused connection); retried.
            NotFoundError: what the check calls does not exist (a hook's
                command).
            PermissionDeniedError: rotator may not run the check.
            PermanentError: any other failure of the check.
        """


class Notifier(Adapter[ConfigT]):
    """Tells people about an alert: a webhook, a Slack channel, a command.

    Built once per declared notifier (``secret`` is the notifier's name).
    The engine retries with backoff and records an alert as sent only once
    delivered. No message it raises carries a secret or the notifier's own
    URL token.
    """

    kind: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short description without credentials, such as ``slack:hooks.slack.com``.

        Raises nothing: built from the policy fields, without calling anything.
        """

    @abstractmethod
    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once.

        Raises:
            TransientError: not delivered, and trying again may help (a
                timeout, a 5xx, a 429).
            NotFoundError: the receiver (a webhook URL, a hook's command)
                does not exist.
            PermissionDeniedError: the receiver refused rotator's credential.
            PermanentError: any other refusal; not delivered.
        """
