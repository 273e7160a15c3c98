"""The values adapters and the engine exchange: configuration, runtime, credentials, alerts.

Nothing here calls an outside system. :class:`ProviderConfig` is the base of
every adapter's policy fields; :class:`Runtime` is what the engine lends an
adapter; :class:`Version`, :class:`Credential` and :class:`Permission` are
what the roles (:mod:`rotator.adapters.roles`) return; :class:`Alert` is
what a notifier is given to send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from rotator import __version__
from rotator.adapters.ratelimit import Pacing
from rotator.adapters.secret import SecretValue
from rotator.clock import Clock, Sleep
from rotator.errors import ConfigError

#: What an adapter sends as (or appends to) its HTTP User-Agent: rotator and its version.
USER_AGENT = f"rotator/{__version__}"


class ProviderConfig(BaseModel):
    """Base of every adapter's policy fields: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def secrets_read(self) -> Mapping[str, str]:
        """Return the other secrets this adapter reads (``Runtime.read_current``), by field.

        Keyed by the field that names each (``admin.secret``). The policy set
        is judged with them: each must name a secret some policy declares,
        and never the adapter's own. The default: none.
        """
        return {}


ConfigT = TypeVar("ConfigT", bound=ProviderConfig)


class StoreRef(ProviderConfig):
    """A store block inside an adapter's fields: where a credential the adapter uses is kept.

    Written as a policy's ``store:`` is (``{provider: NAME, **fields}``) and
    validated against that store's ``Config`` when the policy loads; read
    at run time through ``Runtime.read_store``. An admin password kept by
    hand in a secrets manager, for one.
    """

    provider: str
    config: ProviderConfig

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate ``{provider: name, **fields}`` against that store's ``Config``."""
        if not isinstance(data, dict) or isinstance(data.get("config"), ProviderConfig):
            return data
        from rotator.adapters.discovery import Registry, registry

        context = info.context
        found = context.get("registry") if isinstance(context, dict) else None
        stores = (found if isinstance(found, Registry) else registry()).stores
        fields = dict(data)
        name = fields.pop("provider", None)
        if not isinstance(name, str) or name not in stores:
            known = ", ".join(sorted(stores)) or "none installed"
            raise ValueError(f"provider must name a store: {name!r} is not one of {known}")
        return {
            "provider": name,
            "config": stores[name].Config.model_validate(fields, context=context),
        }

    def describe(self) -> str:
        """Return ``provider`` and the block's fields, as a short non-secret text."""
        fields = ", ".join(f"{k}={v}" for k, v in self.config.model_dump(mode="json").items() if v)
        return f"{self.provider}({fields})"


#: Told of every call an adapter makes to its provider's API:
#: ``(provider, operation, outcome)``, outcome being one of :data:`OUTCOMES`.
RequestObserver = Callable[[str, str, str], None]

#: The outcomes a :data:`RequestObserver` is told (a bounded label set).
OUTCOMES = ("ok", "throttled", "transient", "permanent")


def _ignore_request(_provider: str, _operation: str, _outcome: str) -> None:
    """Drop a request observation (the default when nobody counts)."""


#: Reads the current value of a secret rotator manages, by its policy name
#: (``None`` if its store holds no value yet).
SecretReader = Callable[[str], SecretValue | None]


def _no_secrets(name: str) -> SecretValue | None:
    """Refuse to read another secret: nothing lent this runtime a way to."""
    raise ConfigError(f"secret {name!r} cannot be read here: no policy set is loaded")


#: Reads the current value a store block names (``None`` if it holds none yet).
StoreReader = Callable[[StoreRef], SecretValue | None]


def _no_stores(ref: StoreRef) -> SecretValue | None:
    """Refuse to read a store: nothing lent this runtime a way to."""
    raise ConfigError(f"store {ref.describe()} cannot be read here: no adapters are loaded")


@dataclass
class Runtime:
    """What the engine lends an adapter: the clock, a sleeper, a cache and a request counter.

    ``cache`` lives as long as the engine; adapters keep their SDK clients in
    it (one per region and service) so they are built once and reused. The
    engine runs secrets on several threads at once, so adapters guard what
    they add to it. (The policy name reaches an adapter through its
    constructor.) ``read_current`` reads a secret's current value by its
    policy name, for adapters whose policy names one (``secrets_read``) or
    that must know their own live value. ``on_request`` is told of every API call an adapter makes,
    with an operation name from a fixed set (never an id or a path), so the
    service can export ``rotator_provider_requests_total``.
    """

    clock: Clock
    sleep: Sleep
    cache: dict[str, Any] = field(default_factory=dict)
    on_request: RequestObserver = _ignore_request
    #: The current value of a secret rotator manages, read from its policy's
    #: store: how an adapter reads its own credential (a database admin's
    #: password kept as another secret) and its own secret's live value.
    read_current: SecretReader = _no_secrets
    #: The current value a store block in the adapter's fields names (:class:`StoreRef`).
    read_store: StoreReader = _no_stores
    #: The rate limits of the provider quotas adapters call under, shared with the
    #: other runs on the journal (see :mod:`rotator.adapters.ratelimit`).
    pacing: Pacing = field(default_factory=Pacing)


class Unchecked(str):
    """What a ``check()`` returns when it tried and could not tell (the text says why).

    ``rotator check`` reports it as ``unknown`` and exits 1: a preflight that
    could not look is no proof (a Vault that refuses ``sys/capabilities-self``).
    """

    __slots__ = ()


class NothingToCheck(str):
    """What a ``check()`` returns when its system offers no way to check without acting.

    ``rotator check`` reports it as ``skipped``, not ``ok``: the first
    rotation will tell.
    """

    __slots__ = ()


@dataclass(frozen=True)
class Setting:
    """An environment variable rotator or an adapter reads, checked before any provider call.

    ``check`` raises ``ValueError`` saying what is wrong with a value (it is
    shown after ``NAME=value:``); ``None`` takes any value. ``secret``
    settings are never shown, not even when wrong.
    """

    name: str
    #: One line for ``rotator --help`` and the docs: what it sets, and its default.
    help: str
    check: Callable[[str], object] | None = None
    secret: bool = False


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
    name exactly: every one must hold. ``resource`` and ``step`` are
    keyword-only: both are text, as ``system`` is, and a swap would print a
    wrong policy without a word.
    """

    system: str
    actions: tuple[str, ...]
    _: KW_ONLY
    resource: str
    #: What breaks without it, as an operator reads it: ``store: write the pending version``.
    step: str
    #: IAM conditions, each ``(operator, key, values)``:
    #: ``("StringEquals", "aws:ResourceTag/rotator:secret", ("app/api",))``.
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


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


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One thing a person should hear about; never carries a secret value.

    ``key`` is stable for the same condition (the same failed rotation, the
    same overdue credential), so receivers can deduplicate as rotator does.
    Built with keywords only: five of its fields are text.
    """

    event: AlertEvent
    severity: Severity
    secret: str | None
    summary: str
    at: datetime
    key: str
    rotation_id: str | None = None
    owner: str | None = None
    #: The secret's labels, as its policy gives them (a receiver may route on them).
    labels: Mapping[str, str] = field(default_factory=dict)
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
            "labels": dict(self.labels),
            "details": dict(self.details),
        }
