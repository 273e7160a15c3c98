"""The roles an outside system can play, and how adapters are found.

Every adapter implements one role as a subclass of :class:`Store`,
:class:`Issuer`, :class:`Target` or :class:`Verifier`. An adapter declares
its policy fields as a pydantic model in ``Config``; the policy loader
validates a policy's ``store:``, ``issuer:``, ``targets:`` and ``verify:``
blocks against it before any provider is called.

Adapters are registered in the ``rotator.providers`` entry-point group, under
``store.<provider>``, ``issuer.<kind>``, ``target.<kind>``,
``verifier.<kind>`` or ``notifier.<kind>``; rotator's own adapters are registered the same way, so a
third-party package adds one without touching the engine. (Every store is
also usable as a target, through :class:`StoreReplica`.) Adapter modules
import their SDK lazily (inside methods), so that loading the registry costs
nothing.

Contract for every method: it is idempotent (calling it twice has the effect
of calling it once), it raises only :class:`rotator.errors.RotatorError`
subclasses (``TransientError`` when trying again later may help,
``PermanentError`` or a subclass otherwise), and no message it raises or logs
contains a secret value.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from rotator.adapters.secret import SecretValue

ENTRY_POINT_GROUP = "rotator.providers"
SANDBOX_GROUP = "rotator.sandboxes"


class ProviderConfig(BaseModel):
    """Base of every adapter's policy fields: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=ProviderConfig)


#: Told of every call an adapter makes to its provider's API:
#: ``(provider, operation, outcome)``, outcome being one of :data:`OUTCOMES`.
RequestObserver = Callable[[str, str, str], None]

#: The outcomes a :data:`RequestObserver` is told (a bounded label set).
OUTCOMES = ("ok", "throttled", "transient", "permanent")


def _ignore_request(_provider: str, _operation: str, _outcome: str) -> None:
    """Drop a request observation (the default when nobody counts)."""


@dataclass
class Runtime:
    """What the engine lends an adapter: the clock, a sleeper, a cache and a request counter.

    ``cache`` lives as long as the engine; adapters keep their SDK clients in
    it (one per region and service) so they are built once and reused. The
    engine runs secrets on several threads at once, so adapters guard what
    they add to it. (The policy name reaches an adapter through its
    constructor.) ``on_request`` is told of every API call an adapter makes,
    with an operation name from a fixed set (never an id or a path), so the
    service can export ``rotator_provider_requests_total``.
    """

    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    cache: dict[str, Any] = field(default_factory=dict)
    on_request: RequestObserver = _ignore_request


@dataclass(frozen=True)
class Version:
    """One version of a secret in a store."""

    version_id: str
    value: SecretValue
    created_at: datetime | None = None


@dataclass(frozen=True)
class Credential:
    """A credential an issuer minted: its value and its non-secret identifier.

    ``ref`` is what the issuer needs to find the credential again (an IAM
    access key id, an API Gateway key id); ``None`` where there is nothing to
    find (a random value lives only in the store).
    """

    value: SecretValue
    ref: str | None = None


@dataclass(frozen=True)
class Permission:
    """One permission an adapter needs at its outside system, and the step that fails without it.

    ``system`` says how to read the rest: ``aws`` (IAM ``actions`` on an ARN
    ``resource``), ``vault`` (policy capabilities on a path), ``azure`` (data
    actions on a vault URL), ``kubernetes`` (verbs on a resource written
    ``[contexts/CTX/]namespaces/NS/RESOURCE[.GROUP][/NAME]``). A permission
    without actions is a requirement the output states as a note.
    ``conditions`` (``aws`` only) narrow a grant whose resource IAM cannot
    name exactly: every one must hold.
    """

    system: str
    actions: tuple[str, ...]
    resource: str
    #: What breaks without it, as an operator reads it: ``store: write the pending version``.
    step: str
    #: IAM conditions, each ``(operator, key, values)``:
    #: ``("StringEquals", "aws:ResourceTag/rotator:secret", ("app/api",))``.
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


class Adapter(ABC, Generic[ConfigT]):
    """What every adapter holds: its validated policy fields, the runtime, the secret's name."""

    Config: ClassVar[type[ProviderConfig]]
    #: Distributions the adapter imports lazily, and the extra that installs them.
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""

    def __init__(self, config: ConfigT, runtime: Runtime, secret: str) -> None:
        self.config = config
        self.runtime = runtime
        self.secret = secret

    def permissions(self) -> list[Permission]:
        """Return the least permissions this adapter needs for every step it takes.

        Nothing is called (no provider is asked). The default, an empty
        list, means the adapter needs no permission at an outside system
        (a random value) or cannot say.
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
        """Return a short non-secret address, such as ``aws-secretsmanager:prod/db``."""

    @abstractmethod
    def current(self) -> Version | None:
        """Return the current version, or ``None`` if the secret has no value yet.

        Raises ``NotFoundError`` if the secret itself does not exist.
        """

    @abstractmethod
    def last_changed(self) -> datetime | None:
        """Return when the current value last changed, as the store records it."""

    @abstractmethod
    def put_pending(self, rotation_id: str, value: SecretValue) -> str:
        """Write ``value`` as the pending version keyed by ``rotation_id``; return its id.

        Consumers must not see it. Calling again with the same id and value
        changes nothing.
        """

    @abstractmethod
    def pending(self, rotation_id: str) -> SecretValue | None:
        """Return the value written by ``put_pending`` for this rotation, if any."""

    @abstractmethod
    def promote(self, rotation_id: str, *, expires_on: datetime | None = None) -> str | None:
        """Make the rotation's pending version current; return the id it replaced.

        ``expires_on`` is when the engine will have replaced this credential
        at the latest (its next due time plus the grace); a store that can
        stamp an expiry on a version (Azure Key Vault) uses it, others ignore
        it. Replaying after success changes nothing. Raises ``ConflictError``
        if no pending version exists for the rotation.
        """

    @abstractmethod
    def discard(self, rotation_id: str) -> None:
        """Remove the rotation's pending version (roll back); no-op if absent."""

    @abstractmethod
    def retire(self, version_id: str) -> None:
        """Stop labelling an old version as usable (no label on a dead credential)."""

    def replaced_version(self, rotation_id: str) -> str | None:
        """Return the id of the version this rotation's promote replaced, if the store can tell.

        What a replica of this store retires at revoke (the engine keeps the
        store's own in the journal). ``None`` when the promote replaced
        nothing, no longer tells (a later rotation promoted, or the version
        was retired), or the store does not record it (the default).

        Raises:
            PermissionDeniedError: rotator may not read the store's metadata.
            TransientError: the store did not answer; retry later.
        """
        return None

    def check(self) -> str:
        """Prove, changing nothing, that rotator may write this store; say what was checked.

        Stores whose provider can answer without a write (Vault's
        capabilities of a token on a path) override this; the default says
        it cannot be told. Raises ``PermissionDeniedError`` when it can be
        told and the answer is no.
        """
        return "cannot be checked without writing; the first rotation will tell"


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
        """Return the identifier of the credential held in ``value`` (None if none)."""
        return None

    def inventory(self) -> list[str]:
        """Return the refs that exist at the issuer now, for this credential's slot.

        The engine records them before minting, so that after a crash
        ``recover`` can tell what the interrupted mint created.
        """
        return []

    def prepare(self, keep: Collection[str]) -> list[str]:
        """Make room to mint one more credential; return the refs deleted.

        ``keep`` holds refs that must survive (the current credential, any
        still in grace). Raises ``LimitExceededError`` if room cannot be made
        without touching a credential rotator does not manage.
        """
        return []

    @abstractmethod
    def mint(self, rotation_id: str) -> Credential:
        """Create a new credential, tagged or named with ``rotation_id`` where possible."""

    def recover(
        self, rotation_id: str, known: Collection[str], pending: SecretValue | None
    ) -> Credential | None:
        """Find what an interrupted mint left behind, adopt it or delete it.

        ``known`` holds the refs that existed before the mint began. If
        ``pending`` (the store's pending value for this rotation) holds a
        credential that exists, it is adopted and returned. An issuer whose
        values can be read back (an API Gateway key) may adopt what it finds
        even when ``pending`` is None; the engine then writes it to the
        store. Every other credential minted for this rotation is deleted, so
        nothing is orphaned. Returns ``None`` when nothing is left to adopt.
        """
        if pending is None:
            return None
        return Credential(pending, self.ref_of(pending))

    def verify(self, credential: Credential) -> None:
        """Prove the new credential works; raise ``VerificationError`` if not."""

    def last_used(self, ref: str) -> datetime | None:
        """Return when the credential was last used, if the issuer reports it."""
        return None

    def revoke(self, ref: str) -> None:
        """Stop the credential from working (deactivate, disable, destroy)."""

    def delete(self, ref: str) -> None:
        """Remove a revoked credential for good; no-op if already gone."""


class Target(Adapter[ConfigT]):
    """Somewhere consumers read the credential: written before promote, restored on rollback.

    Order: the engine writes every target after the new value is stored as
    pending and before it is verified and promoted; if anything fails before
    promote, it restores every target, last first. Methods raise
    ``TransientError`` (trying again may help: a timeout, a 5xx, a refused
    connection), ``PermissionDeniedError``, ``NotFoundError`` or another
    ``PermanentError`` (it will not work as configured). No message carries
    the value.
    """

    kind: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short non-secret address, such as ``file:/run/secrets/app.env``."""

    @abstractmethod
    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Make the target carry ``value`` for consumers; idempotent and atomic.

        Writing the same rotation's value twice changes nothing a consumer
        can see. A consumer never sees a partial or empty value.
        """

    @abstractmethod
    def restore(
        self, rotation_id: str, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Undo this rotation's ``write``: put ``previous`` back, or remove what was added.

        ``written`` is the value ``write`` was given (None if lost in a
        crash); ``previous`` is the value consumers had before (None if there
        was none: then what ``write`` added is removed). Safe to call when
        ``write`` never ran, and twice.
        """

    def retire(self, rotation_id: str) -> None:
        """Stop the value this rotation's ``write`` replaced from being readable here.

        Called at revoke, when the old credential's grace has ended, as the
        store's old version is retired. Idempotent; a target with no older
        value to retire, or no way to tell which it is, does nothing (the
        default). Raises the errors above: ``TransientError`` (the revoke is
        tried again), ``PermissionDeniedError``, ``NotFoundError`` or
        another ``PermanentError``.
        """

    def check(self) -> str:
        """Prove, changing nothing, that the target is reachable and writable in principle.

        Returns what was checked, in a few words; raises the errors above.
        """
        return "nothing to check"


class Verifier(Adapter[ConfigT]):
    """Proves a credential works where it is used (a consumer's health check, a login).

    ``verify`` raises ``VerificationError`` when the credential is refused,
    ``TransientError`` when the check itself could not run (retried), or
    another ``PermanentError``. No message carries the value.
    """

    kind: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short non-secret description, such as ``http:https://api/health``."""

    @abstractmethod
    def verify(self, credential: Credential) -> None:
        """Prove ``credential`` works; raise ``VerificationError`` saying why if it does not."""


class AlertEvent(StrEnum):
    """What an alert is about; notifiers subscribe to these by value."""

    #: A rotation rolled back, or a step failed after its retries.
    ROTATION_FAILED = "rotation-failed"
    #: Scheduled attempts stopped after failures in a row; a person must act.
    NEEDS_ATTENTION = "needs-attention"
    #: The old credential was still used at its grace deadline.
    OLD_STILL_IN_USE = "old-still-in-use"
    #: A revoked or deactivated credential showed use after its revocation.
    REVOKED_CREDENTIAL_USED = "revoked-credential-used"
    #: The current credential is older than its policy allows.
    OVERDUE = "overdue"
    #: A reminder-only credential is due: its owner must change it by hand.
    ROTATION_DUE = "rotation-due"
    #: A rotation succeeded (sent only to notifiers that ask for it).
    ROTATION_SUCCEEDED = "rotation-succeeded"
    #: An emergency rotation started (a leak, ``--emergency``).
    EMERGENCY = "emergency-rotation"
    #: A leak report named a credential's public identifier only (no secret part).
    IDENTIFIER_LEAKED = "identifier-leaked"
    #: ``audit verify`` found an edited, deleted, inserted or reordered record.
    AUDIT_CHAIN_BROKEN = "audit-chain-broken"
    #: A secret's journal rows are not as rotator wrote them; it is not acted on.
    JOURNAL_TAMPERED = "journal-tampered"


class Severity(StrEnum):
    """How urgent an alert is."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Alert:
    """One thing a person should hear about; never carries a secret value.

    ``key`` is stable for the same condition (the same failed rotation, the
    same overdue credential), so receivers can deduplicate as rotator does.
    """

    event: AlertEvent
    severity: Severity
    secret: str | None
    summary: str
    at: datetime
    key: str
    rotation_id: str | None = None
    owner: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping (what webhook and exec notifiers send)."""
        return {
            "event": self.event.value,
            "severity": self.severity.value,
            "secret": self.secret,
            "summary": self.summary,
            "at": self.at.isoformat(),
            "key": self.key,
            "rotation_id": self.rotation_id,
            "owner": self.owner,
            "details": dict(self.details),
        }


class Notifier(Adapter[ConfigT]):
    """Tells people about an alert: a webhook, a Slack channel, a command.

    Built once per declared notifier (``secret`` is the notifier's name).
    ``send`` raises ``TransientError`` when trying again may help (a
    timeout, a 5xx, a 429) and ``PermanentError`` otherwise; the engine
    retries with backoff and records an alert as sent only once delivered.
    No message it raises carries a secret or the notifier's own URL token.
    """

    kind: ClassVar[str]

    @abstractmethod
    def describe(self) -> str:
        """Return a short description without credentials, such as ``slack:hooks.slack.com``."""

    @abstractmethod
    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once; raise as described above if it was not delivered."""


class StoreReplica(Target[ProviderConfig]):
    """Any store used as a target: the value replicated to another vault or cloud.

    ``write`` stores the value as pending and promotes it at once (the
    replica's consumers read its current version); ``restore`` discards a
    pending version never promoted, or writes ``previous`` back as a new
    current version when the replica already carries ``written``;
    ``retire`` retires the version ``write`` replaced, as the store's own
    old version is at revoke (a store that cannot tell which keeps it).
    """

    kind = "store"
    Config = ProviderConfig

    def __init__(self, store: Store[Any]) -> None:
        super().__init__(store.config, store.runtime, store.secret)
        self.store = store

    def describe(self) -> str:
        """Return the replica store's address."""
        return self.store.describe()

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Store ``value`` in the replica under the rotation id and make it current."""
        self.store.put_pending(rotation_id, value)
        self.store.promote(rotation_id)

    def restore(
        self, rotation_id: str, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Put ``previous`` back as the replica's current value if ``written`` had replaced it."""
        if self.store.pending(rotation_id) is not None:
            self.store.discard(rotation_id)
        current = self.store.current()
        if current is None or written is None or current.value != written:
            return
        if previous is None:
            # A replica has no "no value" state; the new value stays until
            # the next rotation (it is revoked at the issuer all the same).
            return
        undo = f"{rotation_id}-undo"
        self.store.put_pending(undo, previous)
        self.store.promote(undo)

    def retire(self, rotation_id: str) -> None:
        """Retire the replica's version this rotation replaced, as the store retires its own."""
        replaced = self.store.replaced_version(rotation_id)
        if replaced is not None:
            self.store.retire(replaced)

    def permissions(self) -> list[Permission]:
        """Return the replica store's permissions (it is written as the store is)."""
        return self.store.permissions()

    def check(self) -> str:
        """Read the replica's current version (proves it exists and can be read)."""
        current = self.store.current()
        return "readable" + ("" if current is not None else " (no value yet)")


@functools.cache
def missing_requirement(adapter: type[Adapter[Any]]) -> str | None:
    """Say how to install what an adapter needs, or ``None`` if it is all installed.

    Checked in the installed distributions' metadata, without importing
    anything, so validating a policy never loads an SDK; cached per adapter,
    since reading metadata once per policy cost half the load time of
    100,000 policies.
    """
    missing = []
    for name in adapter.requires:
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    if not missing:
        return None
    extra = f"pip install 'rotator-keys[{adapter.extra}]'" if adapter.extra else "install it"
    return f"needs {', '.join(missing)}, which is not installed: {extra}"


@dataclass(frozen=True)
class Registry:
    """The adapters installed, by role and name."""

    stores: dict[str, type[Store[Any]]]
    issuers: dict[str, type[Issuer[Any]]]
    targets: dict[str, type[Target[Any]]] = field(default_factory=dict)
    verifiers: dict[str, type[Verifier[Any]]] = field(default_factory=dict)
    notifiers: dict[str, type[Notifier[Any]]] = field(default_factory=dict)

    def store(self, name: str) -> type[Store[Any]]:
        """Return the store adapter called ``name``; KeyError if unknown."""
        return self.stores[name]

    def issuer(self, name: str) -> type[Issuer[Any]]:
        """Return the issuer adapter called ``name``; KeyError if unknown."""
        return self.issuers[name]


@functools.cache
def registry() -> Registry:
    """Load every adapter registered in the ``rotator.providers`` entry-point group."""
    found: dict[str, dict[str, Any]] = {
        "store": {},
        "issuer": {},
        "target": {},
        "verifier": {},
        "notifier": {},
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        role, _, name = ep.name.partition(".")
        if role in found:
            found[role][name] = ep.load()
    return Registry(
        found["store"], found["issuer"], found["target"], found["verifier"], found["notifier"]
    )
