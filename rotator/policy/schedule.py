"""When a secret is due: its schedule, interval arithmetic, windows and jitter.

It does no I/O and never reads the clock: every function takes the times it
needs, so that ``plan`` and ``run --once`` compute exactly the same due dates.
Cron and window arithmetic live in :mod:`rotator.policy.cron`.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rotator.adapters.durations import Duration, format_duration
from rotator.policy.cron import (
    Window,
    cron_min_interval,
    cron_wall_interval,
    next_fire,
    parse_window,
    validate_cron,
    validate_timezone,
)


class Schedule(BaseModel):
    """When a secret is rotated: ``every`` or ``cron``, in a time zone, in a window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # timezone comes first so that the cron check can use it
    timezone: str = "UTC"
    every: Duration | None = None
    cron: str | None = None
    window: str | None = None
    jitter: Duration = timedelta(0)
    #: The oldest a credential may get while its rotation waits for a window
    #: (default: twice the interval); past it, rotate outside the window.
    max_age: Duration | None = None

    _window: Window | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Refuse a time zone zoneinfo does not know."""
        validate_timezone(value)
        return value

    @field_validator("every")
    @classmethod
    def _positive_interval(cls, value: timedelta | None) -> timedelta | None:
        """Refuse an interval of zero."""
        if value is not None and value <= timedelta(0):
            raise ValueError("'every' must be longer than 0s")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Check the cron expression and keep it with single spaces."""
        if value is None:
            return None
        text = " ".join(value.split())
        validate_cron(text, info.data.get("timezone", "UTC"))
        return text

    @field_validator("window")
    @classmethod
    def _valid_window(cls, value: str | None) -> str | None:
        """Check the window and keep it with single spaces."""
        return None if value is None else parse_window(value).text

    @model_validator(mode="after")
    def _one_of_every_or_cron(self) -> Schedule:
        """Require exactly one of ``every`` and ``cron``."""
        if self.every is not None and self.cron is not None:
            raise ValueError("set either 'every' or 'cron', not both")
        if self.every is None and self.cron is None:
            raise ValueError("missing 'every' or 'cron': set exactly one of them")
        # Checked against the real shortest gap (a week across a daylight-saving
        # change lasts 167h), worded as a person reads the schedule.
        if self.max_age is not None and self.max_age < min_interval(self):
            raise ValueError(
                f"max_age {format_duration(self.max_age)} must be at least the rotation "
                f"interval {describe_interval(self)}"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        """Keep the parsed window so that due dates do not parse it again."""
        self._window = None if self.window is None else parse_window(self.window)

    @property
    def parsed_window(self) -> Window | None:
        """Return the window as a :class:`~rotator.policy.cron.Window`, or None if unset."""
        return self._window

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """Return the schedule's time zone."""
        return validate_timezone(self.timezone)


def max_age(schedule: Schedule) -> timedelta:
    """Return the oldest a credential may get: ``max_age``, or twice the stated interval.

    Twice :func:`stated_interval`, as the documentation says and the overdue alert
    shows it: 14d for a weekly cron in any zone, not twice a week shortened
    by a daylight-saving change.
    """
    return schedule.max_age or 2 * stated_interval(schedule)


def stated_interval(schedule: Schedule) -> timedelta:
    """Return the interval the schedule states, as a person reads it.

    For ``every`` that is its value; for ``cron`` the smallest gap between
    consecutive fires on the wall clock (7d for a weekly one, whatever the
    zone). The real gap can be an hour shorter across a daylight-saving
    change: the checks that must hold for every gap use :func:`min_interval`.
    """
    if schedule.every is not None:
        return schedule.every
    if schedule.cron is None:
        raise ValueError("schedule has neither 'every' nor 'cron'")
    return cron_wall_interval(_shared_minute(schedule.cron))


def min_interval(schedule: Schedule) -> timedelta:
    """Return the shortest real time between two rotations the schedule can ask for.

    For ``every`` that is its value; for ``cron`` the smallest gap between
    consecutive fires over the next 50 fires from a fixed reference date, in
    the schedule's zone (daylight-saving changes included).
    """
    if schedule.every is not None:
        return schedule.every
    if schedule.cron is None:
        raise ValueError("schedule has neither 'every' nor 'cron'")
    return cron_min_interval(_shared_minute(schedule.cron), schedule.timezone)


def describe_interval(schedule: Schedule) -> str:
    """Say how often a schedule rotates, for a message: ``7d``, and for cron what it is.

    A cron schedule names its expression and zone, and, when a
    daylight-saving change shortens the real gap, that gap too: the checks
    use it, and a message must not hide why.
    """
    stated = stated_interval(schedule)
    if schedule.cron is None:
        return format_duration(stated)
    zone = "" if schedule.timezone == "UTC" else f" in {schedule.timezone}"
    shortest = min_interval(schedule)
    change = (
        ""
        if shortest == stated
        else f"; {format_duration(shortest)} across a daylight-saving change"
    )
    return f"{format_duration(stated)} (the shortest gap of cron '{schedule.cron}'{zone}{change})"


def _shared_minute(expr: str) -> str:
    """Return ``expr`` with a fixed minute set to 0, which leaves the gaps between fires alone.

    One fixed minute shifts every fire alike (time zones change offset on
    the hour), so "17 3 * * *" and "42 3 * * *" share one computation however
    many secrets spread out.
    """
    fields = expr.split()
    if fields[0].isdigit():
        fields[0] = "0"
    return " ".join(fields)


@dataclass(frozen=True)
class Due:
    """When a secret is next due, whether it is due now, and why."""

    due_at: datetime
    """Aware, in UTC."""
    is_due: bool
    reason: str


def jitter_offset(name: str, base: datetime, jitter: timedelta) -> timedelta:
    """Return the deterministic delay in ``[0, jitter)`` for a secret due at ``base``.

    A hash of the name and the due time, not a random draw, so that every
    process (``plan``, ``run --once``, each replica) computes the same delay.
    """
    seconds = int(jitter.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    seed = f"{name}|{base.astimezone(UTC).isoformat()}".encode()
    digest = hashlib.sha256(seed).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def catch_up(name: str, due: datetime, now: datetime, jitter: timedelta) -> datetime:
    """Spread secrets that fell due while nothing ran over their jitter, instead of a wave.

    A secret whose due time passed more than one jitter window ago was
    missed (the service was stopped, no CronJob ran). Rather than rotating
    every such secret at the first pass back, each is due at a deterministic
    point of the current jitter-sized slot of the clock (slots start at the
    Unix epoch), so every process computes the same time, the time does not
    move while the slot lasts, and no secret waits more than one jitter
    window. Without jitter, or when not missed, ``due`` is returned as is.
    """
    width = int(jitter.total_seconds())
    if width <= 0 or now - due < jitter:
        return due
    stamp = int(now.timestamp())
    slot = datetime.fromtimestamp(stamp - stamp % width, UTC)
    return max(due, slot + jitter_offset(name, slot, jitter))


def _utc_text(moment: datetime) -> str:
    """Format an aware time as ``2026-10-01 03:00 UTC`` for a reason."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _require_aware(moment: datetime, what: str) -> None:
    """Refuse a naive datetime, which would silently be read in the local zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def next_due(schedule: Schedule, name: str, last_rotation: datetime | None, now: datetime) -> Due:
    """Compute when the secret ``name`` is next due and whether it is due at ``now``.

    ``every`` counts from the last successful rotation; ``cron`` is due at its
    first fire strictly after it; a secret never rotated is due at once. The
    deterministic jitter is added, then the due time is moved into the window.
    """
    _require_aware(now, "now")
    zone = validate_timezone(schedule.timezone)
    if last_rotation is None:
        due, reason = now, "never rotated"
    else:
        _require_aware(last_rotation, "last_rotation")
        base: datetime
        if schedule.every is not None:
            base = last_rotation + schedule.every
            reason = (
                f"every {format_duration(schedule.every)} since last rotation "
                f"{_utc_text(last_rotation)}"
            )
        elif schedule.cron is not None:
            base = next_fire(schedule.cron, schedule.timezone, last_rotation)
            where = "" if schedule.timezone == "UTC" else f" ({schedule.timezone})"
            reason = (
                f"cron {schedule.cron}{where}, first fire after last rotation "
                f"{_utc_text(last_rotation)}"
            )
        else:
            raise ValueError("schedule has neither 'every' nor 'cron'")
        offset = jitter_offset(name, base, schedule.jitter)
        due = base + offset
        if offset:
            reason += f", jitter +{format_duration(offset)}"
        caught_up = catch_up(name, due, now, schedule.jitter)
        if caught_up != due:
            due = caught_up
            reason += (
                f"; missed while nothing ran, caught up at {_utc_text(due)} "
                f"(spread over the {format_duration(schedule.jitter)} jitter)"
            )

    window = schedule.parsed_window
    if window is None:
        return Due(due.astimezone(UTC), now >= due, reason)

    def inside(moment: datetime) -> bool:
        """Tell whether an instant falls inside the window, on the policy's wall clock."""
        return window.contains(moment.astimezone(zone))

    moved = False
    wanted = due
    if not inside(due):
        due, moved = window.next_opening(due, zone), True
    if now >= due and not inside(now):
        due, moved = window.next_opening(now, zone), True
    is_due = now >= due and inside(now)
    if moved:
        reason += f"; {'inside' if is_due else 'waiting for'} window {window}"
    if last_rotation is not None and moved:
        # cert-manager's rule: a window never lets a credential outlive its
        # maximum age (``max_age``, by default twice the interval); past
        # that, rotate anyway and say so.
        limit = last_rotation + max_age(schedule)
        if due > max(limit, wanted):
            due = max(limit, wanted)
            is_due = now >= due
            reason += (
                f"; no window opens before the maximum age ({_utc_text(limit)}): "
                "rotating outside the window"
            )
    return Due(due.astimezone(UTC), is_due, reason)
