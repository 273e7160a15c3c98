"""The validated policy: one secret's rotation rules.

A :class:`Policy` is immutable and valid by construction: schedules parse,
adapters exist and accept their fields, and the grace is shorter than the
rotation interval. :mod:`rotator.policy.loader` builds policies from YAML files and
reports every problem with its file and line; this module only knows the rules.

A policy's ``store:`` and ``issuer:`` blocks name an adapter (``provider`` /
``kind``) and carry that adapter's fields. Validation pops the name and
validates the remaining fields against the adapter's ``Config`` model, taken
from the registry in the validation context (``context={"registry": ...}``)
or from the installed adapters; the result is ``policy.store.config``, an
instance of that ``Config``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from rotator.adapters.discovery import Registry, missing_requirement, registry
from rotator.adapters.durations import Duration, format_duration
from rotator.adapters.values import AlertEvent, ProviderConfig
from rotator.policy.schedule import Schedule, describe_interval, min_interval

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._/-]{0,127}")
"""What a secret's name may look like (matched against the whole name)."""

NOTIFIER_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"""What a notifier's name may look like (matched against the whole name)."""

#: The events a notifier gets unless it lists its own: all but successes.
DEFAULT_ALERT_EVENTS: tuple[AlertEvent, ...] = tuple(
    e for e in AlertEvent if e is not AlertEvent.ROTATION_SUCCEEDED
)

_FROZEN = ConfigDict(extra="forbid", frozen=True)


def _registry_of(info: ValidationInfo) -> Registry:
    """Return the registry in the validation context, or the installed adapters."""
    context = info.context
    if isinstance(context, dict) and isinstance(context.get("registry"), Registry):
        found: Registry = context["registry"]
        return found
    return registry()


def _refuse(title: str, key: str, error: PydanticCustomError | str, value: Any) -> ValidationError:
    """Build a validation error located at ``key`` inside the block being validated."""
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=error, loc=(key,), input=value)]
    )


def _adapter_block(
    data: Any,
    info: ValidationInfo,
    *,
    title: str,
    key: str,
    what: str,
    default: str | None,
    role: str | None = None,
) -> Any:
    """Split ``{key: name, **fields}`` into the adapter name and its validated ``Config``.

    ``role`` names the registry's table (``stores``, ``issuers``, ``targets``,
    ``verifiers``); by default stores for ``provider`` and issuers for ``kind``.
    """
    if not isinstance(data, dict) or isinstance(data.get("config"), ProviderConfig):
        return data
    reg = _registry_of(info)
    table = role or ("stores" if key == "provider" else "issuers")
    adapters: dict[str, Any] = getattr(reg, table)
    fields = dict(data)
    name = fields.pop(key, default)
    if name is None:
        raise _refuse(title, key, "missing", data)
    if not isinstance(name, str):
        raise _refuse(title, key, "string_type", name)
    adapter = adapters.get(name)
    if adapter is None:
        _refuse_skipped(reg, table, name, title=title, key=key, what=what)
        close = difflib.get_close_matches(name, adapters, n=1)
        raise _refuse(
            title,
            key,
            PydanticCustomError(
                "unknown_adapter",
                "unknown {what} '{name}';{hint} known: {known}",
                {
                    "what": what,
                    "name": name,
                    "hint": f" did you mean '{close[0]}'?" if close else "",
                    "known": ", ".join(sorted(adapters)) or "none installed",
                },
            ),
            name,
        )
    missing = missing_requirement(adapter)
    if missing is not None:
        raise _refuse(
            title,
            key,
            PydanticCustomError(
                "adapter_not_installed",
                "{what} '{name}' {missing}",
                {"what": what, "name": name, "missing": missing},
            ),
            name,
        )
    config = adapter.Config.model_validate(fields, context=info.context)
    return {key: name, "config": config}


def _refuse_skipped(
    reg: Registry, table: str, name: str, *, title: str, key: str, what: str
) -> None:
    """Refuse an adapter name whose entry point was skipped, saying why; else return."""
    skipped = reg.skipped_as(table.removesuffix("s"), name)
    if skipped is None:
        return
    raise _refuse(
        title,
        key,
        PydanticCustomError(
            "adapter_skipped",
            "{what} '{name}' could not be loaded: {skipped}",
            {"what": what, "name": name, "skipped": str(skipped)},
        ),
        name,
    )


class StoreSpec(BaseModel):
    """Which store adapter keeps the secret, and its validated fields."""

    model_config = _FROZEN

    provider: str
    config: ProviderConfig

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate ``{provider: name, **fields}`` against that store's ``Config``."""
        return _adapter_block(
            data, info, title=cls.__name__, key="provider", what="provider", default=None
        )


class IssuerSpec(BaseModel):
    """Which issuer adapter mints the credential, and its validated fields."""

    model_config = _FROZEN

    kind: str = "random"
    config: ProviderConfig

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate ``{kind: name, **fields}`` against that issuer's ``Config``."""
        return _adapter_block(
            data, info, title=cls.__name__, key="kind", what="issuer kind", default="random"
        )


class TargetSpec(BaseModel):
    """Where consumers read the credential: a target ``kind``, or a store ``provider`` (replica)."""

    model_config = _FROZEN

    kind: str | None = None
    provider: str | None = None
    config: ProviderConfig

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate ``{kind: name, **fields}`` or ``{provider: name, **fields}``."""
        if not isinstance(data, dict) or isinstance(data.get("config"), ProviderConfig):
            return data
        if "provider" in data and "kind" in data:
            raise _refuse(
                cls.__name__,
                "kind",
                PydanticCustomError(
                    "target_choice",
                    "set either 'kind' (a target) or 'provider' (a store as replica), not both",
                ),
                data["kind"],
            )
        if "provider" in data:
            return _adapter_block(
                data, info, title=cls.__name__, key="provider", what="provider", default=None
            )
        return _adapter_block(
            data,
            info,
            title=cls.__name__,
            key="kind",
            what="target kind",
            default=None,
            role="targets",
        )

    @property
    def name(self) -> str:
        """Return the adapter this target uses (a target kind or a store provider)."""
        return self.kind or self.provider or ""


class VerifierSpec(BaseModel):
    """A check the new credential must pass before promote, and its validated fields."""

    model_config = _FROZEN

    kind: str
    config: ProviderConfig

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate ``{kind: name, **fields}`` against that verifier's ``Config``."""
        return _adapter_block(
            data,
            info,
            title=cls.__name__,
            key="kind",
            what="verifier kind",
            default=None,
            role="verifiers",
        )


class SecretMatch(BaseModel):
    """Which secrets' alerts a notifier gets without their policies naming it (``match:``)."""

    model_config = _FROZEN

    #: Every one of these labels, with this value.
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None

    @model_validator(mode="after")
    def _narrows(self) -> SecretMatch:
        """Refuse an empty match (it would match every secret: say so with ``alerts:``)."""
        if not self.labels and self.owner is None:
            raise ValueError("match must name labels or an owner")
        return self

    def selects(self, policy: Policy) -> bool:
        """Tell whether ``policy``'s secret is one of those matched."""
        return has_labels_and_owner(policy, self.labels, self.owner)


def has_labels_and_owner(policy: Policy, labels: Mapping[str, str], owner: str | None) -> bool:
    """Tell whether ``policy`` has every one of ``labels`` and, unless None, is ``owner``'s.

    One rule for ``match:`` routing and for ``--label``/``--owner`` selection.
    """
    if owner is not None and policy.owner != owner:
        return False
    return all(policy.labels.get(k) == v for k, v in labels.items())


class NotifierSpec(BaseModel):
    """A notifier declared under ``notifiers:``: its kind, the events it gets, its fields."""

    model_config = _FROZEN

    kind: str
    #: The alert events sent to it (default: every event but ``rotation-succeeded``).
    events: tuple[AlertEvent, ...] = DEFAULT_ALERT_EVENTS
    #: The secrets whose alerts it gets beside those that name it in ``alerts:``.
    match: SecretMatch | None = None
    config: ProviderConfig

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate ``{kind: name, events: [...], **fields}`` against that notifier's ``Config``."""
        if not isinstance(data, dict) or isinstance(data.get("config"), ProviderConfig):
            return data
        fields = dict(data)
        events = fields.pop("events", None)
        match = fields.pop("match", None)
        split = _adapter_block(
            fields,
            info,
            title=cls.__name__,
            key="kind",
            what="notifier kind",
            default=None,
            role="notifiers",
        )
        extra = {"events": events, "match": match}
        return {**split, **{k: v for k, v in extra.items() if v is not None}}

    @field_validator("events")
    @classmethod
    def _some_events(cls, value: tuple[AlertEvent, ...]) -> tuple[AlertEvent, ...]:
        """Refuse an empty list (a notifier that gets nothing is a mistake)."""
        if not value:
            raise ValueError(
                "events must name at least one of: " + ", ".join(e.value for e in AlertEvent)
            )
        return tuple(dict.fromkeys(value))


#: What a leak report holding only a credential's public identifier (an AWS
#: access key id, without its secret key) makes ``rotator leaks ingest`` do.
#: ``alert``: alert only; ``rotate`` (the default): alert, and start a normal
#: rotation whose grace keeps the old credential working; ``emergency``:
#: rotate with no grace, as when the secret part leaked.
IDENTIFIER_ONLY_RESPONSES = ("alert", "rotate", "emergency")


class LeakPolicy(BaseModel):
    """How ``rotator leaks ingest`` answers reports about this secret (``leaks:``)."""

    model_config = _FROZEN

    #: A report naming only the public identifier proves nothing leaked that
    #: can be used, and anyone who can feed reports could otherwise cut every
    #: consumer off at once: by default it gets a normal rotation, with grace.
    on_identifier_only: Literal["alert", "rotate", "emergency"] = "rotate"

    @field_validator("on_identifier_only", mode="before")
    @classmethod
    def _known_response(cls, value: Any) -> Any:
        """Refuse an unknown response, suggesting the closest known one."""
        if isinstance(value, str) and value not in IDENTIFIER_ONLY_RESPONSES:
            close = difflib.get_close_matches(value, IDENTIFIER_ONLY_RESPONSES, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"expected one of {', '.join(IDENTIFIER_ONLY_RESPONSES)}, got {value!r}{hint}"
            )
        return value


def _random_issuer() -> IssuerSpec:
    """Return the default issuer: ``random`` with its default fields."""
    return IssuerSpec.model_validate({"kind": "random"})


#: How long one extension lasts at least (an old credential still in use).
MIN_EXTENSION = timedelta(hours=1)


def default_max_grace(grace: timedelta) -> timedelta:
    """Return the default bound on an old credential's life: 3 x grace, at least grace + 1h."""
    return max(3 * grace, grace + MIN_EXTENSION)


class Policy(BaseModel):
    """One secret's rotation rules, validated."""

    model_config = _FROZEN

    name: str
    description: str | None = None
    owner: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    store: StoreSpec
    issuer: IssuerSpec = Field(default_factory=_random_issuer)
    # schedule comes before grace so that the grace check can use it
    schedule: Schedule
    grace: Duration
    when_old_still_used: Literal["extend", "alert", "revoke"] = "extend"
    #: How long after promotion an old credential still in use may live at
    #: most, extensions and holds included (None: ``default_max_grace``).
    max_grace: Duration | None = None
    #: What happens at ``max_grace`` to an old credential still in use.
    when_old_still_used_after_max: Literal["revoke", "alert"] = "revoke"
    #: Where consumers read the credential: all written before promote.
    targets: tuple[TargetSpec, ...] = ()
    #: Checks the new credential must pass before promote.
    verify: tuple[VerifierSpec, ...] = ()
    #: How long to wait between writing the targets and verifying.
    propagation_delay: Duration = timedelta(0)
    #: Names of the notifiers (declared under ``notifiers:``) told of this secret's alerts.
    alerts: tuple[str, ...] = ()
    #: How ``rotator leaks ingest`` answers reports about this secret.
    leaks: LeakPolicy = LeakPolicy()
    source_file: str = ""
    source_line: int = 0

    @model_validator(mode="before")
    @classmethod
    def _default_issuer(cls, data: Any) -> Any:
        """Give a policy without an ``issuer:`` block the random issuer."""
        # filled in here rather than by default_factory so that the registry
        # in the validation context is the one used
        if isinstance(data, dict) and "issuer" not in data:
            return {**data, "issuer": {"kind": "random"}}
        return data

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        """Refuse a name outside ``NAME_PATTERN``, saying what a name may hold."""
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"invalid name {value!r}: use 1 to 128 lowercase letters, digits and . _ / -, "
                "starting with a letter or digit"
            )
        return value

    @field_validator("alerts")
    @classmethod
    def _notifier_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse a malformed notifier name (unknown names are checked across files)."""
        for name in value:
            if not NOTIFIER_NAME_PATTERN.fullmatch(name):
                raise ValueError(
                    f"invalid notifier name {name!r}: use 1 to 64 lowercase letters, digits, "
                    "_ and -, starting with a letter or digit"
                )
        return tuple(dict.fromkeys(value))

    @property
    def grace_limit(self) -> timedelta:
        """Return how long after promotion the old credential may live at most."""
        return self.max_grace if self.max_grace is not None else default_max_grace(self.grace)

    @field_validator("max_grace")
    @classmethod
    def _not_shorter_than_grace(
        cls, value: timedelta | None, info: ValidationInfo
    ) -> timedelta | None:
        """Refuse a max_grace shorter than the grace it bounds."""
        grace = info.data.get("grace")
        if value is not None and isinstance(grace, timedelta) and value < grace:
            raise ValueError(
                f"max_grace {format_duration(value)} must be at least the grace "
                f"{format_duration(grace)}"
            )
        return value

    @field_validator("grace")
    @classmethod
    def _shorter_than_interval(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        """Refuse a grace as long as the shortest rotation interval, or longer."""
        schedule = info.data.get("schedule")
        if not isinstance(schedule, Schedule):
            return value  # the schedule is invalid and reported on its own
        # Against the real shortest gap: a grace as long as a week shortened
        # by a daylight-saving change would still run when the next rotation is due.
        if value >= min_interval(schedule):
            raise ValueError(
                f"grace {format_duration(value)} must be shorter than the rotation interval "
                f"{describe_interval(schedule)}"
            )
        return value
